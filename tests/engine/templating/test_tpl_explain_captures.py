"""``template explain`` on real captured frames, for every agent that ships an explain loader."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from chargeway.commands.template import template_group

ROOT = Path(__file__).resolve().parents[3]
# Each agent keeps copies of the shared real captures beside its tests (sources in the .meta.json files).
CAPTURES = ROOT / "tests" / "agents"
CASES = [
    ("radius", "radius/captures/accounting_request_start.hex", "VoiceStart", "initiate"),
    ("kamailio", "kamailio/captures/evapi_cgr_auth_request.netstring", "KamAuthorize", "authorize"),
    ("kamailio", "kamailio/captures/evapi_cgr_call_start.netstring", "KamCallStart", "initiate"),
    ("kamailio", "kamailio/captures/evapi_cgr_call_end.netstring", "KamCallEnd", "terminate"),
    ("diameter", "diameter/captures/ccr_t_gy_data_ggsn.hex", "DataTerminate", "terminate"),
]


@pytest.mark.parametrize(("agent", "capture", "processor", "call"),
                         CASES)
def test_explain_real_capture(agent, capture, processor, call):
    result = CliRunner().invoke(template_group, [
        "explain", "--agent", agent, "--message", str(CAPTURES / capture),
        "--template", str(ROOT / "templates" / f"{agent}.yaml")])
    assert result.exit_code == 0, result.output
    assert f"-> {processor}" in result.output
    assert f"sessions.{call}(request, opts)  [dry-run, not called]" in result.output


def test_explain_capture_without_subscriber_names_the_missing_avp() -> None:
    """The go-diameter CCR-I carries no Subscription-Id: explain says what the CCA will be."""
    result = CliRunner().invoke(template_group, [
        "explain", "--agent", "diameter", "--message",
        str(CAPTURES / "diameter/captures/ccr_i_gy_data_godiameter.hex"),
        "--template", str(ROOT / "templates" / "diameter.yaml")])
    assert result.exit_code == 1
    assert "-> DataInit" in result.output
    assert "naming Subscription-Id.Subscription-Id-Data (Diameter 5005 Missing AVP)" in result.output

