"""Start the real ``chargeway serve`` process and talk CGRateS JSON to it over sockets.

Each test gets its own data dir and ports from the API range (22012-22099),
picked free at start. The process is stopped by its PID (SIGTERM, or SIGKILL
for the crash test); nothing else is touched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
TP_DIR = Path(__file__).resolve().parent / "tp"
PORT_RANGE = range(22012, 22100)


def free_ports(count: int) -> list[int]:
    """Ports in our range nobody listens on right now (held open until all are found)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    start = (os.getpid() * 7) % len(PORT_RANGE)
    for i in range(len(PORT_RANGE)):
        port = PORT_RANGE[(start + i) % len(PORT_RANGE)]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        held.append(sock)
        ports.append(port)
        if len(ports) == count:
            break
    for sock in held:
        sock.close()
    if len(ports) < count:
        raise RuntimeError("no free ports left in 22012-22099")
    return ports


@dataclass
class ServerProcess:
    """One ``python -m chargeway serve`` child; restartable on the same data dir and ports."""

    tmp: Path
    sessions: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    tcp: int = 0
    http: int = 0
    birpc: int = 0

    def __post_init__(self) -> None:
        self.tcp, self.http, self.birpc = free_ports(3)
        self.data_dir = self.tmp / "data"
        self.config_path = self.tmp / "chargeway.yaml"
        self.log_path = self.tmp / "server.log"

    def write_config(self) -> None:
        config = {
            "general": {"log_level": "info", "uvloop": True},
            "tariffplan": {"folder": str(TP_DIR), "load_on_start": "if_empty"},
            "sessions": {"debit_interval": "30s", "terminate_grace": "2s", **self.sessions},
            "api": {"enabled": True, "tcp": f"127.0.0.1:{self.tcp}", "http": f"127.0.0.1:{self.http}",
                    "birpc": f"127.0.0.1:{self.birpc}", "callback_timeout": "2s"},
            "diameter": {"enabled": False},
            "radius": {"enabled": False},
            "kamailio": {"enabled": False},
        }
        self.config_path.write_text(yaml.safe_dump(config))

    def start(self, timeout: float = 20.0) -> None:
        self.write_config()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chargeway", "serve", "--config", str(self.config_path),
             "--data-dir", str(self.data_dir)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chargeway serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.tcp), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", self.birpc), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"chargeway serve did not listen within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def server(tmp_path: Path):
    srv = ServerProcess(tmp_path)
    srv.start()
    yield srv
    srv.stop()
