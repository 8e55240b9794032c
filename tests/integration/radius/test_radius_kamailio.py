"""Kamailio acc_radius as a real RADIUS accounting client: sipp calls through it are charged.

Kamailio (SIP 35064) sends Accounting-Request Start on the 200 OK and Stop on the BYE to
chargeway's accounting port 31813 (fixed: radiusclient.conf needs it). acc_radius sends no
Acct-Session-Time, so the template charges Stop Event-Timestamp - the session's AnswerTime.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.processes import stop_process
from tests.integration.radius.harness import (KAMAILIO, SECRET, balance, cdrs, radius_service, sipp_args,
                                              start_gateway, wait_udp)

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent / "kamailio"
SIP_PORT, UAS_PORT, UAC_PORT = 35064, 35080, 35074
AUTH_PORT, ACCT_PORT = 31812, 31813


def render(work: Path) -> Path:
    run_dir = work / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    (work / "servers").write_text(f"127.0.0.1\t{SECRET}\n")
    shutil.copy(HERE / "dictionary", work / "dictionary")
    conf = (HERE / "radiusclient.conf").read_text()
    for key, value in {"AUTH_PORT": AUTH_PORT, "ACCT_PORT": ACCT_PORT, "SERVERS": work / "servers",
                       "DICTIONARY": work / "dictionary"}.items():
        conf = conf.replace(f"@{key}@", str(value))
    (work / "radiusclient.conf").write_text(conf)
    cfg = (HERE / "kamailio-acc-radius.cfg").read_text()
    for key, value in {"RUN_DIR": run_dir, "RADIUSCLIENT_CONF": work / "radiusclient.conf",
                       "SIP_PORT": SIP_PORT, "UAS_PORT": UAS_PORT}.items():
        cfg = cfg.replace(f"@{key}@", str(value))
    path = work / "kamailio.cfg"
    path.write_text(cfg)
    return path


@pytest.fixture(params=["uas_rr.xml"])
def callee_scenario(request):
    return request.param


@pytest.fixture
async def kamailio_setup(tmp_path, callee_scenario):
    gw = await start_gateway(tmp_path, {"1001": "10"}, auth_address=f"127.0.0.1:{AUTH_PORT}",
                             acct_address=f"127.0.0.1:{ACCT_PORT}")
    work = tmp_path / "kam"
    work.mkdir()
    cfg = render(work)
    log = open(work / "kamailio.log", "wb")
    kam = subprocess.Popen([KAMAILIO, "-f", str(cfg), "-w", str(work), "-P", str(work / "kamailio.pid"),
                            "-DD", "-E", "-m", "64"], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    callee = None
    try:
        assert await asyncio.to_thread(wait_udp, SIP_PORT), (work / "kamailio.log").read_text()[-3000:]
        callee = subprocess.Popen(sipp_args(callee_scenario, local_port=UAS_PORT), cwd=work,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert await asyncio.to_thread(wait_udp, UAS_PORT)
        yield gw, work
    finally:
        stop_process(callee)
        stop_process(kam)
        await gw.stop()


async def wait_cdrs(gw, origin_id: str, timeout: float = 10.0) -> list:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = await cdrs(gw, origin_id)
        if rows or asyncio.get_running_loop().time() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def test_sipp_calls_through_kamailio_acc_radius_are_charged(kamailio_setup):
    gw, work = kamailio_setup
    service = radius_service(gw)
    trace = work / "uac-messages.log"
    caller = await asyncio.create_subprocess_exec(*sipp_args(
        "uac_rr.xml", local_port=UAC_PORT, target=f"127.0.0.1:{SIP_PORT}",
        extra=("-s", "1002", "-m", "5", "-r", "5", "-d", "2000", "-timeout", "30s",
               "-default_behaviors", "all,-abortunexp", "-trace_msg", "-message_file", str(trace))), cwd=work,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(caller.communicate(), 40)
    assert caller.returncode == 0, out.decode(errors="replace")[-2000:]
    # the Call-IDs sipp used are the Acct-Session-Ids Kamailio sent
    call_ids = sorted({line.split(":", 1)[1].strip() for line in trace.read_text(errors="replace").splitlines()
                       if line.lower().startswith("call-id:")})
    assert len(call_ids) == 5
    total = Decimal(0)
    for call_id in call_ids:
        rows = await wait_cdrs(gw, call_id)
        assert len(rows) == 1, (work / "kamailio.log").read_text()[-3000:]
        cdr = rows[0]
        assert cdr.account == "1001" and cdr.destination == "1002"
        assert cdr.origin_host == "127.0.0.1"
        # 2 s held; Event-Timestamp has 1 s resolution, so 2 or 3 s
        assert cdr.usage in (2 * 10**9, 3 * 10**9)
        assert cdr.cost == Decimal(cdr.usage // 10**9) / 100
        total += cdr.cost
    assert balance(gw, "1001") == Decimal("10") - total
    assert gw.sessions.active_sessions() == []
    assert service.acct.stats.bad_authenticator == 0 and service.acct.stats.no_reply == 0


@pytest.mark.parametrize("callee_scenario", ["uas_busy.xml"])
async def test_refused_call_is_a_cdr_only_record(kamailio_setup):
    """acc_radius reports the 486 as Acct-Status-Type Failed: a CDR with no usage, nothing charged."""
    gw, work = kamailio_setup
    trace = work / "uac-busy-messages.log"
    caller = await asyncio.create_subprocess_exec(*sipp_args(
        "uac_expect_486.xml", local_port=UAC_PORT, target=f"127.0.0.1:{SIP_PORT}",
        extra=("-s", "1002", "-m", "1", "-timeout", "30s", "-trace_msg", "-message_file", str(trace))),
        cwd=work, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(caller.communicate(), 40)
    assert caller.returncode == 0, out.decode(errors="replace")[-2000:]
    call_id = next(line.split(":", 1)[1].strip() for line in trace.read_text(errors="replace").splitlines()
                   if line.lower().startswith("call-id:"))
    rows = await wait_cdrs(gw, call_id)
    assert len(rows) == 1, (work / "kamailio.log").read_text()[-3000:]
    assert rows[0].usage == 0 and rows[0].cost == Decimal(0)
    assert rows[0].extra_fields["DisconnectCause"] == "486"                 # Sip-Response-Code
    assert balance(gw, "1001") == Decimal("10")
