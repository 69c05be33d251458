"""Starting and stopping one embedded server: check its port, start it, wait until it answers, stop it."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class EmbeddedError(RuntimeError):
    """An embedded server could not start; the message says what to change."""


@dataclass
class EmbeddedProcess:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port. SO_REUSEADDR as every server sets it: connections of a
    server stopped a moment ago, still in TIME_WAIT, do not make its port look taken."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start(
    name: str,
    command: Sequence[str],
    *,
    url: str,
    ready: Callable[[], bool],
    ports: Sequence[tuple[str, int, str]] = (),
    log_path: Path | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> EmbeddedProcess:
    """Start `command` once each (host, port, setting) in `ports` is free, and return when `ready()`
    is true. A taken port or a server that exits or does not answer in time is an EmbeddedError
    naming the setting to change; the server's own output goes to `log_path` when given."""
    for host, port, setting in ports:
        if not port_free(host, port):
            raise EmbeddedError(f"{name}: port {port} on {host} is taken; set {setting} to a free port")
    log = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL
    try:
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    finally:
        if log_path is not None and not isinstance(log, int):
            log.close()
    embedded = EmbeddedProcess(name, url, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            where = f"; its output is in {log_path}" if log_path is not None else ""
            raise EmbeddedError(f"{name} exited with code {process.returncode} while starting{where}")
        if ready():
            return embedded
        time.sleep(0.05)
    embedded.stop()
    raise EmbeddedError(f"{name} did not answer within {timeout:.0f} s")
