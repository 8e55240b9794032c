"""Starting and stopping real peers (Kamailio, sipp, FreeRADIUS, chargeway) by PID.

Shared by every integration test and benchmark so they wait for sockets and stop
processes the same way: wait until the kernel shows the listening socket (no
fixed sleeps), SIGTERM our own child, SIGKILL only if it ignores us.
"""

from __future__ import annotations

import signal
import subprocess
import time


def wait_listening(port: int, proto: str = "udp", timeout: float = 20.0) -> bool:
    """True once something listens on ``proto``/``port`` (per ``ss``), False after ``timeout``."""
    return _wait_until(port, proto, timeout, listening=True)


def wait_released(port: int, proto: str = "udp", timeout: float = 30.0) -> bool:
    """True once nothing listens on ``proto``/``port`` any more (a stopped server's children
    can hold it a while after the parent exited), False after ``timeout``."""
    return _wait_until(port, proto, timeout, listening=False)


def _wait_until(port: int, proto: str, timeout: float, *, listening: bool) -> bool:
    flags = {"udp": "-Hlun", "tcp": "-Hltn"}[proto]
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["ss", flags, f"sport = :{port}"], capture_output=True, text=True).stdout
        if bool(out.strip()) is listening:
            return True
        time.sleep(0.05)
    return False


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM the process we started, SIGKILL it after ``timeout``; always reaped."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
