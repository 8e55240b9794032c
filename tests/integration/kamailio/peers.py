"""Real Kamailio and sipp processes for the evapi tests and benchmark, stopped by PID.

Kamailio runs from ``config/kamailio/kamailio.cfg`` (the file users drop in)
with only its ``#!substdef`` values rewritten: our port range, a private
rundir under a temp dir, and the sipp callee.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import stop_process, wait_listening

REPO = Path(__file__).resolve().parents[3]
CFG = REPO / "config" / "kamailio" / "kamailio.cfg"
SIPP_DIR = REPO / "tests" / "integration" / "sipp"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"


@dataclass
class Ports:
    """One Kamailio's ports (owner range: evapi 48448-48460, SIP 45060-45099)."""

    sip: int = 45060
    evapi: int = 48448
    jsonrpc: int = 48449
    uas: int = 45080
    uac: int = 45070


def render_cfg(ports: Ports, run_dir: Path, *, callee: str | None = None,
               extra: dict[str, str] | None = None) -> str:
    """The shipped cfg with the substdef values replaced (and nothing else)."""
    values = {
        "SIP_LISTEN": f"udp:127.0.0.1:{ports.sip}",
        "SIP_ALIAS": f"127.0.0.1:{ports.sip}",
        "EVAPI_BIND": f"127.0.0.1:{ports.evapi}",
        "JSONRPC_DGRAM": f"udp:127.0.0.1:{ports.jsonrpc}",
        "RUN_DIR": str(run_dir),
        "CALLEE_URI": callee if callee is not None else f"sip:127.0.0.1:{ports.uas}",
    }
    values.update(extra or {})
    return render(CFG, values)


def render(cfg: Path, values: dict[str, str]) -> str:
    """Rewrite the ``#!substdef "!NAME!value!g"`` lines of ``cfg``; every NAME must exist."""
    text = cfg.read_text()
    for name, value in values.items():
        text, n = re.subn(rf'^#!substdef "!{name}![^!]*!g"$', f'#!substdef "!{name}!{value}!g"',
                          text, flags=re.M)
        assert n == 1, f"{name} not found once in {cfg}"
    return text


def wait_udp(port: int, timeout: float = 20.0) -> bool:
    return wait_listening(port, "udp", timeout)


def wait_tcp_listen(port: int, timeout: float = 20.0) -> bool:
    return wait_listening(port, "tcp", timeout)


stop_proc = stop_process


@dataclass
class Kamailio:
    """A Kamailio started in the foreground from the shipped cfg."""

    work: Path
    ports: Ports = field(default_factory=Ports)
    cfg_text: str = ""
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.work / f"kamailio-{self.starts}.log"

    def start(self) -> None:
        run_dir = self.work / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.work / "kamailio.cfg"
        if not self.cfg_text:
            self.cfg_text = render_cfg(self.ports, run_dir)
        cfg.write_text(self.cfg_text)
        self.starts += 1
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [KAMAILIO, "-f", str(cfg), "-w", str(self.work), "-P", str(self.work / "kamailio.pid"),
             "-DD", "-E", "-m", "512", "-M", "16"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_no_core)
        log.close()
        evapi_up = wait_tcp_listen(self.ports.evapi) if self.ports.evapi else True
        if not (wait_udp(self.ports.sip) and evapi_up):
            self.stop()
            raise RuntimeError(f"kamailio did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_proc(self.proc)
            self.proc = None

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.work.glob("kamailio-*.log")))

    def jsonrpc(self, method: str, *params: object) -> dict:
        """One JSON-RPC call over jsonrpcs' UDP socket (dlg.list, dlg.end_dlg...)."""
        req = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1})
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            sock.sendto(req.encode(), ("127.0.0.1", self.ports.jsonrpc))
            return json.loads(sock.recvfrom(65535)[0])


def _no_core() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@dataclass(eq=False)
class Sipp:
    """A sipp run in the foreground (``run``) or background (``start``/``wait``)."""

    work: Path
    name: str
    args: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    ended_at: float = 0.0

    def start(self) -> "Sipp":
        RUNNING.add(self)
        self.started_at = time.time()
        out = open(self.work / f"sipp-{self.name}.out", "wb")
        self.proc = subprocess.Popen([SIPP, *self.args, "-nostdin"], stdout=out, stderr=subprocess.STDOUT,
                                     cwd=self.work, preexec_fn=_no_core)
        out.close()
        return self

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self.ended_at = time.time()
        return rc

    def stop(self) -> None:
        if self.proc is not None:
            stop_proc(self.proc)
        RUNNING.discard(self)

    def output(self) -> str:
        return (self.work / f"sipp-{self.name}.out").read_text(errors="replace")

    def messages(self) -> str:
        path = self.work / f"sipp-{self.name}-messages.log"
        return path.read_text(errors="replace") if path.exists() else ""


# Every sipp started and not yet stopped: tests stop them all at teardown, even after a failure.
RUNNING: set[Sipp] = set()


def stop_all_sipp() -> None:
    for sipp in list(RUNNING):
        sipp.stop()


def uas(work: Path, ports: Ports, name: str = "uas") -> Sipp:
    """Callee that echoes Record-Route (sipp's built-in uas does not)."""
    return Sipp(work, name, ["-sf", str(SIPP_DIR / "uas_rr.xml"), "-i", "127.0.0.1",
                             "-p", str(ports.uas), "-trace_msg", "-message_file",
                             str(work / f"sipp-{name}-messages.log")])


def uac(work: Path, ports: Ports, scenario: str, *, name: str = "uac", calls: int = 1,
        hold_ms: int = 1000, service: str = "1002", caller: str = "1001",
        extra: list[str] | None = None) -> Sipp:
    return Sipp(work, name, [
        f"127.0.0.1:{ports.sip}", "-sf", str(SIPP_DIR / scenario), "-s", service,
        "-key", "caller", caller, "-i", "127.0.0.1", "-p", str(ports.uac), "-m", str(calls),
        "-d", str(hold_ms), "-default_behaviors", "all,-abortunexp", "-timeout", "60s",
        "-trace_msg", "-message_file", str(work / f"sipp-{name}-messages.log"), *(extra or [])])


@dataclass(frozen=True)
class SipTrace:
    """One SIP message in a sipp ``-trace_msg`` log."""

    at: float          # seconds (local clock of the log; compare only with the same log)
    sent: bool
    first_line: str


def sip_trace(text: str) -> list[SipTrace]:
    """Parse sipp's message log: a dashed header with a timestamp before each message."""
    from datetime import datetime

    out: list[SipTrace] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("-----") or i + 3 >= len(lines):
            continue
        stamp = datetime.strptime(line.strip("- ").strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        sent = "sent" in lines[i + 1]
        first = next((x for x in lines[i + 2:i + 5] if x.strip()), "")
        out.append(SipTrace(stamp, sent, first.strip()))
    return out


def first(trace: list[SipTrace], prefix: str, *, sent: bool | None = None) -> SipTrace:
    for item in trace:
        if item.first_line.startswith(prefix) and (sent is None or item.sent == sent):
            return item
    raise AssertionError(f"no {prefix!r} in the sipp trace: {[t.first_line for t in trace]}")
