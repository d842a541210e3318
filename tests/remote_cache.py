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


class LocalServer:
    """A server script of build-support/ started on a 127.0.0.1 port with its own data
    directory (its output in DATA/server.log), in its own process group."""

    name = "server"

    def __init__(self, data: Path, port: int | None = None) -> None:
        self.data = data
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 300) -> "LocalServer":
        self.data.mkdir(parents=True, exist_ok=True)
        log = (self.data / "server.log").open("wb")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {(self.data / 'server.log').read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not start listening")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class BuildGrid(LocalServer):
    name = "BuildGrid"

    def __init__(self, data: Path, port: int | None = None, auth: Path | None = None) -> None:
        super().__init__(data, port)
        self.auth = auth  # credentials dir (build-support/remote-cache/credentials): TLS + tokens

    @property
    def address(self) -> str:
        if self.auth:
            return f"grpcs://localhost:{self.port}"
        return f"grpc://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [str(REPO / "build-support/remote-cache/buildgrid"), "--port", str(self.port), "--data", str(self.data),
                *(("--auth", str(self.auth)) if self.auth else ())]
