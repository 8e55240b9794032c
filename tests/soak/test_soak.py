"""Seeded soak of the charging engine: many concurrent calls on a few shared accounts,
checked against money invariants (see tests/soak/README.md).

CI runs the short seeded variants below (seconds). ``CHARGEWAY_SOAK=full`` adds the long
variants (marked ``slow``); ``CHARGEWAY_SOAK_SEED``/``CHARGEWAY_SOAK_STEPS`` replay one run.
"""

from __future__ import annotations

import os

import pytest

from tests.soak.driver import SoakFailure, SoakSettings, parse_strict, run_soak, settings_for

SHORT_SEEDS = (1, 2, 3)
SHORT_STEPS = 120
FULL_SEEDS = tuple(range(100, 120))
FULL_STEPS = 1500


def _variants() -> list:
    """Short seeded runs always; the replay of one seed or the long runs when asked."""
    if os.environ.get("CHARGEWAY_SOAK_SEED"):
        seed = int(os.environ["CHARGEWAY_SOAK_SEED"])
        steps = int(os.environ.get("CHARGEWAY_SOAK_STEPS", SHORT_STEPS))
        return [pytest.param(seed, steps, id=f"replay-seed{seed}-{steps}")]
    variants = [pytest.param(seed, SHORT_STEPS, id=f"seed{seed}") for seed in SHORT_SEEDS]
    if os.environ.get("CHARGEWAY_SOAK") == "full" or os.environ.get("CHARGEWAY_FULL_FUZZ"):
        steps = int(os.environ.get("CHARGEWAY_SOAK_STEPS", FULL_STEPS))
        variants += [pytest.param(seed, steps, id=f"full-seed{seed}", marks=pytest.mark.slow)
                     for seed in FULL_SEEDS]
    return variants


@pytest.mark.timeout(3600)
@pytest.mark.parametrize(("seed", "steps"), _variants())
async def test_soak_keeps_the_books_exact(tmp_path, seed: int, steps: int) -> None:
    strict = parse_strict(os.environ.get("CHARGEWAY_SOAK_STRICT", ""))
    settings = settings_for(seed, steps, strict=strict, short_steps=SHORT_STEPS)
    soak = await run_soak(tmp_path, settings)
    # The run must have exercised what it claims to (a schedule that never cut a call
    # or never restarted would prove little).
    for op in ("new call", "update", "terminate", "duplicate terminate", "topup", "malformed", "restart"):
        assert soak.ops.get(op, 0) > 0, f"seed {seed}: no {op!r} in {soak.ops}"
    assert soak.engine.agent.disconnects, f"seed {seed}: no call was ever disconnected"


# --- the soak must notice broken books (otherwise a green run proves nothing) ----------------

async def test_soak_notices_a_store_that_forgets_what_it_charged(tmp_path, monkeypatch) -> None:
    """Idempotency keys lost: a retransmitted SMS or repeated CDR charges again."""
    from engine.storage.sqlite import SqliteStorage

    async def forgetful(self, key: str) -> None:
        return None

    monkeypatch.setattr(SqliteStorage, "get_processed", forgetful)
    with pytest.raises(SoakFailure, match="changed the books|money taken|CDRs for"):
        await run_soak(tmp_path, SoakSettings(seed=1, steps=SHORT_STEPS))


async def test_soak_notices_a_lost_ledger_row(tmp_path, monkeypatch) -> None:
    """A ledger that drops a session's debit no longer adds up to the balances."""
    from engine.storage.sqlite import SqliteStorage

    real = SqliteStorage.ledger

    async def lossy(self, tenant: str, account: str, **kw):
        rows = await real(self, tenant, account, **kw)
        return [r for r in rows if not r.ref.startswith("debit:2:")]

    monkeypatch.setattr(SqliteStorage, "ledger", lossy)
    with pytest.raises(SoakFailure, match="audit|money taken|holds"):
        await run_soak(tmp_path, SoakSettings(seed=2, steps=SHORT_STEPS))
