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


# ---------------------------------------------------------------------------- Kamailio ims_charging

RO_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Kamailio cdp: our server is the peer "localhost" (our CEA Origin-Host must say so) -->
<DiameterPeer FQDN="kamailio.test" Realm="test" Vendor_Id="10415" Product_Name="CDiameterPeer"
    AcceptUnknownPeers="0" DropUnknownOnDisconnect="1" Tc="5" Workers="2" QueueLength="32"
    ConnectTimeout="3" TransactionTimeout="5" SessionsHashSize="128"
    DefaultAuthSessionTimeout="3600" MaxAuthSessionTimeout="3600">
  <Peer FQDN="localhost" Realm="test" port="{server_port}"/>
  <Acceptor port="{cdp_port}" bind="127.0.0.1"/>
  <Auth id="4" vendor="10415"/>
  <Auth id="4" vendor="0"/>
  <Acct id="4" vendor="10415"/>
  <SupportedVendor vendor="10415"/>
  <DefaultRoute FQDN="localhost" metric="10"/>
</DiameterPeer>
"""

KAMAILIO_RO_CFG = """#!KAMAILIO
# Kamailio as a real Ro client: ims_charging sends CCR-I/U/T to our server.
debug=2
log_stderror=yes
fork=yes
children=2
listen=udp:127.0.0.1:{kam_sip}
rundir="{run_dir}"
auto_aliases=no
alias="127.0.0.1:{kam_sip}"
dns=no
rev_dns=no
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "ims_dialog.so"
loadmodule "cdp.so"
loadmodule "cdp_avp.so"
loadmodule "ims_charging.so"
loadmodule "ctl.so"

modparam("ctl", "binrpc", "unix:{run_dir}/kamailio_ctl")
modparam("rr", "append_fromtag", 1)
modparam("ims_dialog", "dlg_flag", 2)
modparam("ims_dialog", "timeout_avp", "$avp(i:1)")
modparam("ims_dialog", "detect_spirals", 0)
modparam("ims_dialog", "profiles_no_value", "orig ; term")
modparam("ims_dialog", "db_mode", 0)
modparam("cdp", "config_file", "{ro_xml}")
modparam("ims_charging", "origin_host", "kamailio.test")
modparam("ims_charging", "origin_realm", "test")
modparam("ims_charging", "destination_host", "localhost")
modparam("ims_charging", "destination_realm", "test")
modparam("ims_charging", "service_context_id_root", "32260@3gpp.org")
modparam("ims_charging", "interim_update_credits", {interim})
modparam("ims_charging", "timer_buffer", {timer_buffer})

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) t_relay(); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) t_relay(); exit; }}
        sl_send_reply("404", "Not here"); exit;
    }}
    if (!is_method("INVITE")) {{ sl_send_reply("405", "Method Not Allowed"); exit; }}
    record_route();
    setflag(2);
    set_dlg_profile("orig");
    t_newtran();
    $var(cc_ret) = Ro_CCR("CHARGING_CCR_REPLY", "orig", {reserve}, "0", "0");
    if ($var(cc_ret) < 0) {{ t_reply("402", "Payment required"); exit; }}
    exit;
}}

route[CHARGING_CCR_REPLY] {{
    xlog("L_INFO", "CCA: cca_return_code=$avp(s:cca_return_code) result_code=$avp(s:cca_result_code)\\n");
    if ($avp(s:cca_return_code) == 1) {{
        $du = "sip:127.0.0.1:{uas_sip}";
        t_relay();
        exit;
    }}
    t_reply("402", "Payment required");
    exit;
}}
"""


class KamailioRo:
    """Kamailio with cdp + ims_charging pointed at our server; stopped by its PID file."""

    def __init__(self, work: Path, *, reserve: int = 30, interim: int = 30, timer_buffer: int = 5) -> None:
        self.work = work
        self.run_dir = work / "run"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ro_xml = work / "ro.xml"
        ro_xml.write_text(RO_XML.format(server_port=SERVER_PORT, cdp_port=CDP_PORT))
        self.cfg = work / "kamailio-ro.cfg"
        self.cfg.write_text(KAMAILIO_RO_CFG.format(
            kam_sip=KAM_SIP, run_dir=self.run_dir, ro_xml=ro_xml, interim=interim,
            timer_buffer=timer_buffer, reserve=reserve, uas_sip=UAS_SIP))
        self.pid_file = work / "kamailio.pid"
        self.child: Child | None = None

    async def start(self) -> "KamailioRo":
        self.child = await Child.start([KAMAILIO, "-w", str(self.work), "-f", str(self.cfg), "-P", str(self.pid_file),
                                        "-DD", "-E", "-m", "64"], self.work / "kamailio.log", cwd=self.work)
        return self

    def log(self) -> str:
        return self.child.text() if self.child else ""

    async def stop(self) -> None:
        if self.child is None:
            return
        # -DD keeps the main process in the foreground: it is our child and takes its
        # children down on SIGTERM (cdp then segfaults in cleanup: core dumps are off).
        await self.child.stop(signal.SIGTERM, timeout=10)


def sipp_scenario(work: Path, name: str, caller: str) -> Path:
    """Our scenario file with the caller's user part set (the charged account)."""
    text = (HERE / "sipp" / name).read_text().replace("sip:1001@", f"sip:{caller}@")
    out = work / f"{caller}-{name}"
    out.write_text(text)
    return out


async def sipp_uas(work: Path) -> Child:
    return await Child.start([SIPP, "-sf", str(HERE / "sipp" / "uas.xml"), "-i", "127.0.0.1", "-p", str(UAS_SIP),
                              "-nostdin", "-trace_err", "-error_file", str(work / "uas_err.log")],
                             work / "uas.log", cwd=work)


async def sipp_uac(work: Path, scenario: Path, *, callee: str = "1002", hold_ms: int = 0,
                   timeout: float = 60) -> tuple[int, str]:
    argv = [SIPP, f"127.0.0.1:{KAM_SIP}", "-sf", str(scenario), "-s", callee, "-i", "127.0.0.1",
            "-p", str(UAC_SIP), "-m", "1", "-nostdin", "-trace_msg", "-message_file", str(work / "uac_msg.log"),
            "-timeout", f"{int(timeout)}s", "-timeout_error"]
    if hold_ms:
        argv += ["-d", str(hold_ms)]
    child = await Child.start(argv, work / "uac.log", cwd=work)
    try:
        code = await asyncio.wait_for(child.proc.wait(), timeout + 10)
    finally:
        await child.stop()
    messages = (work / "uac_msg.log").read_text(errors="replace") if (work / "uac_msg.log").exists() else ""
    return code, messages
