"""Server processes under test: start on a free loopback port, wait until ready, always stop."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.cpu import tree_cpu_seconds

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def venv_bin(name: str) -> str:
    """A console script next to the running interpreter (``.venv/bin/<name>``)."""
    return str(Path(sys.executable).parent / name)


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far: all its threads, and its worker processes if it forks."""
        return tree_cpu_seconds(self.process.pid)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _wait_ready(server: Server, path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            if httpx.get(server.base_url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    state = "exited" if server.process.poll() is not None else "did not become ready"
    print(f"--- {server.name} {state}; last lines of {server.log_path}:", file=sys.stderr)
    print(server.log_tail(), file=sys.stderr)
    raise RuntimeError(f"{server.name} {state} ({server.base_url}{path})")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def serving(
    name: str, command: list[str], *, port: int, env: Mapping[str, str], log_dir: Path, ready_path: str
) -> Iterator[Server]:
    """Run ``command`` (which must listen on ``port``) until the block exits; SIGTERM, then SIGKILL."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=dict(env), stdout=log, stderr=subprocess.STDOUT)
    server = Server(name=name, process=process, base_url=f"http://{HOST}:{port}", log_path=log_path)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        _stop(process)


def uvicorn_bare_command(port: int, workers: int = 1, app: str = "bench.bare_app:app") -> list[str]:
    """The baseline with the hub's uvicorn settings: ``workers`` processes, no access log, uvloop/httptools."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        f"--host={HOST}",
        f"--port={port}",
        f"--workers={workers}",
        "--log-level=warning",
        "--no-access-log",
        "--proxy-headers",
    ]


def hub_command(port: int, workers: int = 1) -> list[str]:
    return [venv_bin("licence-hub"), "serve", f"--host={HOST}", f"--port={port}", f"--workers={workers}"]
