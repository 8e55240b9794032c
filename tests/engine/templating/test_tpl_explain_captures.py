"""``template explain`` on real captured frames, for every agent that ships an explain loader."""

import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargeway.commands.template import template_group

CAPTURES = Path("/work/shared/captures")
ROOT = Path(__file__).resolve().parents[3]
CASES = [
    ("radius", "radius/accounting_request_start.hex", "VoiceStart", "initiate"),
    ("kamailio", "kamailio/evapi_cgr_auth_request.netstring", "KamAuthorize", "authorize"),
    ("kamailio", "kamailio/evapi_cgr_call_start.netstring", "KamCallStart", "initiate"),
    ("kamailio", "kamailio/evapi_cgr_call_end.netstring", "KamCallEnd", "terminate"),
    ("diameter", "diameter/ccr_t_gy_data_ggsn.hex", "DataTerminate", "terminate"),
]


def _available(agent: str, capture: str) -> bool:
    return (importlib.util.find_spec(f"agents.{agent}") is not None
            and (ROOT / "agents" / agent / "explain.py").exists()
            and (ROOT / "templates" / f"{agent}.yaml").exists()
            and (CAPTURES / capture).exists())


@pytest.mark.parametrize(("agent", "capture", "processor", "call"),
                         [c for c in CASES if _available(c[0], c[1])])
def test_explain_real_capture(agent, capture, processor, call):
    result = CliRunner().invoke(template_group, [
        "explain", "--agent", agent, "--message", str(CAPTURES / capture),
        "--template", str(ROOT / "templates" / f"{agent}.yaml")])
    assert result.exit_code == 0, result.output
    assert f"-> {processor}" in result.output
    assert f"sessions.{call}(request, opts)  [dry-run, not called]" in result.output


def explain_capture_without_subscriber_names_the_missing_avp() -> None:
    """The go-diameter CCR-I carries no Subscription-Id: explain says what the CCA will be."""
    result = CliRunner().invoke(template_group, [
        "explain", "--agent", "diameter", "--message",
        str(CAPTURES / "diameter/ccr_i_gy_data_godiameter.hex"),
        "--template", str(ROOT / "templates" / "diameter.yaml")])
    assert result.exit_code == 1
    assert "-> DataInit" in result.output
    assert "naming Subscription-Id.Subscription-Id-Data (Diameter 5005 Missing AVP)" in result.output


if _available("diameter", "diameter/ccr_i_gy_data_godiameter.hex"):
    test_explain_capture_without_subscriber_names_the_missing_avp = (
        explain_capture_without_subscriber_names_the_missing_avp)
