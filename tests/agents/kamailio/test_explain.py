"""`template explain` input: captured evapi messages load as views the template can dry-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.kamailio.explain import load_message
from engine.templating import TemplateRunner, load_template
from engine.units import SECOND

REPO = Path(__file__).resolve().parents[3]
CAPTURES = Path(__file__).parent / "captures"


@pytest.fixture(scope="module")
def runner() -> TemplateRunner:
    return TemplateRunner(load_template(REPO / "templates" / "kamailio.yaml", agent="kamailio"), None)


async def test_netstring_capture_dry_runs_as_initiate(runner: TemplateRunner) -> None:
    view, variables = load_message(CAPTURES / "evapi_cgr_call_start.netstring")
    outcome = await runner.run(view, variables)
    assert outcome.processor_id == "KamCallStart" and outcome.call == "initiate" and outcome.dry_run
    assert outcome.request["h_entry"] == "2395" and outcome.request["Account"] == "1001"


async def test_bare_json_payload_and_req_vars_wrapper(runner: TemplateRunner, tmp_path: Path) -> None:
    view, variables = load_message(CAPTURES / "evapi_cgr_call_end_kamevent_test.json")
    outcome = await runner.run(view, variables)
    assert outcome.call == "terminate" and outcome.request["Usage"] == 3 * SECOND
    assert outcome.request["Route"] == "supplier2" and outcome.request["RequestType"] == "*postpaid"
    wrapped = tmp_path / "m.json"
    wrapped.write_text('{"req": {"event": "CGR_AUTH_REQUEST", "Account": "1001"}, '
                       '"vars": {"OriginHost": "kam1"}}')
    view, variables = load_message(wrapped)
    outcome = await runner.run(view, variables)
    assert outcome.call == "authorize" and outcome.request["OriginHost"] == "kam1"


def test_broken_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.netstring"
    bad.write_bytes(b"12x:{}")
    with pytest.raises(ValueError, match="netstring"):
        load_message(bad)
    bad.write_bytes(b"[1,2]")
    with pytest.raises(ValueError, match="JSON object"):
        load_message(bad)
