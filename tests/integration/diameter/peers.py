"""Real peers for the Diameter integration tests: freeDiameter, tshark, Kamailio ims_charging,
sipp. Each runs as a child process stopped by its own PID (never by name).

Ports (the Diameter owner's range): our server 13868, cdp acceptor 13869, freeDiameter
13870/13871; SIP: Kamailio 25062, caller 25072, callee 25080.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import trustme

HERE = Path(__file__).parent
SERVER_PORT = 13868
CDP_PORT = 13869
FD_PORT = 13870
FD_SEC_PORT = 13871
KAM_SIP = 25062
UAC_SIP = 25072
UAS_SIP = 25080

FREEDIAMETERD = shutil.which("freeDiameterd") or "/usr/bin/freeDiameterd"
TSHARK = shutil.which("tshark") or "/usr/bin/tshark"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"


class Child:
    """A child process with its log file; ``stop`` signals our PID only."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    @classmethod
    async def start(cls, argv: list[str], log: Path, cwd: Path | None = None) -> "Child":
        handle = open(log, "wb")
        proc = await asyncio.create_subprocess_exec(*argv, stdout=handle, stderr=subprocess.STDOUT,
                                                    cwd=str(cwd) if cwd else None,
                                                    preexec_fn=_no_core_dumps)
        handle.close()
        return cls(proc, log)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode


def _no_core_dumps() -> None:
    """Kamailio's cdp segfaults on SIGTERM: never leave a core file behind."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.setpgid(0, 0)


async def wait_for(predicate, timeout: float, interval: float = 0.05) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(interval)
    await asyncio.wait_for(poll(), timeout)


# ---------------------------------------------------------------------------- freeDiameter

def freediameter_conf(work: Path, *, peer_name: str = "localhost", tw: int = 6) -> Path:
    """freeDiameter as a client peer of our server (it checks our CEA Origin-Host == peer_name)."""
    ca = trustme.CA()
    cert = ca.issue_cert("fd.client.test")
    cert_file, key_file, ca_file = work / "fd.cert.pem", work / "fd.key.pem", work / "fd.ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    conf = work / "fd_client.conf"
    conf.write_text(f"""
Identity = "fd.client.test";
Realm = "test";
Port = {FD_PORT};
SecPort = {FD_SEC_PORT};
ListenOn = "127.0.0.1";
No_SCTP;
No_IPv6;
TLS_Cred = "{cert_file}", "{key_file}";
TLS_CA = "{ca_file}";
TcTimer = 5;
TwTimer = {tw};
LoadExtension = "/usr/lib/freeDiameter/dict_nasreq.fdx";
LoadExtension = "/usr/lib/freeDiameter/dict_dcca.fdx";
LoadExtension = "/usr/lib/freeDiameter/dict_dcca_3gpp.fdx";
LoadExtension = "/usr/lib/freeDiameter/dbg_msg_dumps.fdx" : "0x0080";
ConnectPeer = "{peer_name}" {{ ConnectTo = "127.0.0.1"; Port = {SERVER_PORT}; No_TLS; }};
""")
    return conf


def fd_messages(log_text: str) -> list[tuple[str, str]]:
    """(SND|RCV, command name) in order, from freeDiameter's dbg_msg_dumps output."""
    out: list[tuple[str, str]] = []
    direction = ""
    for line in log_text.splitlines():
        if " SND to " in line:
            direction = "SND"
        elif " RCV from " in line:
            direction = "RCV"
        else:
            match = re.search(r"'([A-Za-z-]+-(?:Request|Answer))'", line)
            if match and direction:
                out.append((direction, match.group(1)))
                direction = ""
    return out


# ---------------------------------------------------------------------------- tshark

class Capture:
    """``tshark -i lo -f 'tcp port N' -w file`` around some traffic."""

    def __init__(self, work: Path, port: int = SERVER_PORT) -> None:
        self.pcap = work / "capture.pcap"
        self.port = port
        self.child: Child | None = None

    @property
    def decode_as(self) -> list[str]:
        """Our test port is not Diameter's 3868: tell tshark to dissect it as Diameter."""
        return ["-d", f"tcp.port=={self.port},diameter"]

    async def __aenter__(self) -> "Capture":
        self.child = await Child.start([TSHARK, "-i", "lo", "-f", f"tcp port {self.port}", "-w", str(self.pcap)],
                                       self.pcap.with_suffix(".log"))
        await wait_for(lambda: "Capture started" in self.child.text() or "Capturing on" in self.child.text(), 10)
        await asyncio.sleep(0.3)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.sleep(0.5)        # let the last frames reach the capture
        assert self.child is not None
        await self.child.stop(signal.SIGINT)

    def fields(self, *names: str, display_filter: str = "diameter") -> list[list[str]]:
        argv = [TSHARK, "-r", str(self.pcap), *self.decode_as, "-Y", display_filter, "-T", "fields",
                "-E", "separator=|"]
        for name in names:
            argv += ["-e", name]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
        return [line.split("|") for line in out.splitlines() if line.strip()]

    def expert(self) -> str:
        out = subprocess.run([TSHARK, "-r", str(self.pcap), *self.decode_as, "-q", "-z", "expert"], capture_output=True,
                             text=True, timeout=60, check=True)
        return out.stdout

    def expert_problems(self, from_port: int | None = None) -> list[str]:
        """Error/Warning/Malformed expert items, optionally only in frames we sent."""
        argv = [TSHARK, "-r", str(self.pcap), *self.decode_as, "-Y",
                f"diameter && tcp.srcport=={from_port}" if from_port else "diameter",
                "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message", "-e", "_ws.expert.severity"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
        problems = []
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[1].strip():
                problems.append(line)
        return problems
