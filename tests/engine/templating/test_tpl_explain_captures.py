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
    ("diameter", "diameter/ccr_i_gy_data_godiameter.hex", "DataInit", "initiate"),
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
