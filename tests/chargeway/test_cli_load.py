"""``chargeway load``: a plan is validated and stored whole, or a bad row is named and nothing is stored."""

import asyncio
import shutil
from pathlib import Path

from click.testing import CliRunner

from chargeway.cli import main
from engine.storage import open_storage
from engine.tariffplan import TariffPlan

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "tariffplan"


def stored_plan(data_dir: Path) -> bytes | None:
    async def read() -> bytes | None:
        storage = open_storage(data_dir)
        await storage.open()
        try:
            return await storage.load_tariffplan()
        finally:
            await storage.close()

    return asyncio.run(read())


def test_load_stores_the_sample_plan(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["load", "--tpdir", str(SAMPLE), "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"loaded {SAMPLE}: " in result.output and "4 accounts" in result.output
    plan = TariffPlan.from_bytes(stored_plan(tmp_path))
    assert "cgrates.org:1001" in plan.account_actions


def test_dry_run_validates_without_storing(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["load", "--tpdir", str(SAMPLE), "--dry-run", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"validated {SAMPLE}: " in result.output
    assert not (tmp_path / "chargeway.db").exists()


def test_bad_row_is_named_and_nothing_is_loaded(tmp_path: Path) -> None:
    bad = tmp_path / "tp"
    shutil.copytree(SAMPLE, bad)
    with (bad / "Rates.csv").open("a") as rates:
        rates.write("RT_BROKEN,0,abc,60s,60s,0s\n")
    line = len((bad / "Rates.csv").read_text().splitlines())
    data = tmp_path / "data"
    result = CliRunner().invoke(main, ["load", "--tpdir", str(bad), "--data-dir", str(data)])
    assert result.exit_code == 2
    assert f"Rates.csv:{line}:" in result.output and "Rate" in result.output
    assert stored_plan(data) is None
