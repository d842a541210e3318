"""A real REAPI remote-execution engine for tests: buildbox-casd 1.4.25 running actions
with buildbox-run in bubblewrap, started with its own data directory on a free
127.0.0.1 port (build-support/remote-exec/casd)."""

from __future__ import annotations

import os
import signal
import threading
import time
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


def _children(root: int) -> list[int]:
    """The processes below `root` (from /proc)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = (Path("/proc") / entry / "stat").read_text()
            except OSError:
                continue
            parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        frontier = [p for p, pp in parent.items() if pp in frontier]
        found += frontier
    return found


def _argv(pid: int) -> list[str]:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


class Fault(threading.Thread):
    """A fault injected into `engine` while a build runs: when the engine starts the next
    action whose command line has `marker` (its actions.log), `delay` seconds after the
    step's own process is up in the action's sandbox, SIGKILL
      - "runner": the action's runner (buildbox-run, the worker of that action),
      - "step": the step's process in the sandbox (as the out-of-memory killer would),
      - "engine": the whole engine (its process group).
    `done` says what was killed (empty if the moment never came)."""

    def __init__(self, engine: Casd, marker: str, kill: str, delay: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.engine, self.marker, self.kill, self.delay = engine, marker, kill, delay
        self.seen = len(engine.actions())
        self.stopped = threading.Event()
        self.done: list[str] = []

    def _step_processes(self, runner: int) -> list[int]:
        return [
            p for p in _children(runner)
            if self.marker in " ".join(_argv(p)) and Path(_argv(p)[0]).name not in ("bwrap", "buildbox-run", "")
        ]

    def run(self) -> None:
        runner = None
        while runner is None:
            if self.stopped.wait(0.2):
                return
            for line in self.engine.actions()[self.seen:]:
                if self.marker in line:
                    runner = int(line.split(" pid=", 1)[1].split()[0])
        while not (steps := self._step_processes(runner)):
            if self.stopped.wait(0.1):
                return
        time.sleep(self.delay)
        if self.kill == "engine":
            self.engine.stop()
            self.done = [f"engine (during {self.marker})"]
            return
        victims = [runner] if self.kill == "runner" else [p for p in steps if p in self._step_processes(runner)]
        for pid in victims:
            try:
                argv = " ".join(_argv(pid))[:80]
                os.kill(pid, signal.SIGKILL)
                self.done.append(f"{pid} {argv}")
            except ProcessLookupError:
                pass

    def __enter__(self) -> "Fault":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.join(timeout=30)
