"""A real REAPI remote-execution engine for tests: buildbox-casd 1.4.25 running actions
with buildbox-run in bubblewrap, started with its own data directory on a free
127.0.0.1 port (build-support/remote-exec/casd)."""

from __future__ import annotations

from pathlib import Path

from .conftest import REPO
from .remote_cache import LocalServer


class Casd(LocalServer):
    name = "buildbox-casd"

    def __init__(
        self, data: Path, port: int | None = None, jobs: int | None = None, forward: "Casd | None" = None
    ) -> None:
        super().__init__(data, port)
        self.jobs = jobs
        self.forward = forward  # a second engine, for the actions this one has no slot for

    @property
    def address(self) -> str:
        return f"grpc://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(REPO / "build-support/remote-exec/casd"), "--port", str(self.port), "--data", str(self.data),
            *(("--jobs", str(self.jobs)) if self.jobs else ()),
            *(("--forward", self.forward.address) if self.forward else ()),
        ]

    def actions(self) -> list[str]:
        """The command lines of the actions this engine ran (DATA/actions.log)."""
        log = self.data / "actions.log"
        return log.read_text().splitlines() if log.exists() else []
