"""A real REAPI cache server for tests: BuildGrid 0.4.4, started with its own data
directory on a free 127.0.0.1 port (build-support/remote-cache/buildgrid)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BuildGrid:
    def __init__(self, data: Path, port: int | None = None, auth: Path | None = None) -> None:
        self.data = data
        self.port = port or free_port()
        self.auth = auth  # credentials dir (build-support/remote-cache/credentials): TLS + tokens
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        if self.auth:
            return f"grpcs://localhost:{self.port}"
        return f"grpc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 300) -> "BuildGrid":
        self.data.mkdir(parents=True, exist_ok=True)
        log = (self.data / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [str(REPO / "build-support/remote-cache/buildgrid"), "--port", str(self.port), "--data", str(self.data),
             *(("--auth", str(self.auth)) if self.auth else ())],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"BuildGrid exited: {(self.data / 'server.log').read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.5)
        raise RuntimeError("BuildGrid did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
