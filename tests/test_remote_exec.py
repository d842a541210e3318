"""Remote execution on a real REAPI engine (buildbox-casd 1.4.25 on 127.0.0.1, actions
in bubblewrap sandboxes: build-support/remote-exec/casd), with pants.remote-exec.toml.

The u-root image is built with every k4s step executed by the engine: Pants' stats
count them as remote executions, the engine's action log lists each of them, and no
local sandbox ran one. The image is byte-identical to a local build. With two engines
(the first runs one action at a time and hands the others to the second, casd's own
hybrid mode), both run steps, and the bytes are the same again.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from .conftest import (
    UROOT_COMMANDS,
    checkout,
    executed_k4s_steps,
    isolated_pants,
    k4s_step_count,
    require_tool,
    sha256,
    stat_counter,
)
from .remote_exec import Casd

UROOT = "distros/uroot:initramfs"
UROOT_OUT = "dist/distros.uroot/initramfs.cpio"
# The engine-side command lines of k4s's steps: two go builds of k4stool (through the
# shell line that makes GO* paths absolute), then download, the rewrite (plan,
# dependencies, one per command), compile, cpio; how many of each uroot runs.
STEP_MARKERS = {
    "-C __k4s_tools_src build": 2,
    "k4stool-download download": 1,
    "k4stool rewrite-plan": 1,
    "k4stool rewrite-deps": 1,
    "k4stool rewrite-command": UROOT_COMMANDS,
    "k4stool compile": 1,
    "k4stool cpio": 1,
}


@pytest.fixture(scope="module")
def local_build(tmp_path_factory) -> tuple[str, float]:
    """sha256 of uroot built here without remote execution, and its seconds (empty
    Pants store and named caches, as the remote builds have)."""
    root = checkout(tmp_path_factory.mktemp("local") / "k4s")
    start = time.monotonic()
    r = isolated_pants(root, Path(str(root) + "-caches"), "package", UROOT)
    seconds = time.monotonic() - start
    assert r.returncode == 0, r.output
    assert len(executed_k4s_steps(r.output)) == k4s_step_count(UROOT_COMMANDS)  # all here
    return sha256(root / UROOT_OUT), seconds


def _remote_build(root: Path, caches: Path, engine: Casd) -> float:
    start = time.monotonic()
    r = isolated_pants(root, caches, "package", UROOT, remote_exec=engine.address)
    seconds = time.monotonic() - start
    assert r.returncode == 0, r.output
    assert stat_counter(r.output, "remote_execution_success") >= k4s_step_count(UROOT_COMMANDS), r.output
    assert stat_counter(r.output, "remote_execution_errors") == 0, r.output
    assert executed_k4s_steps(r.output) == []  # no k4s step ran in a local sandbox
    return seconds


def _steps_run(*engines: Casd) -> Counter[str]:
    """The k4s steps among the actions the engines ran, by marker, one per action."""
    return Counter(m for e in engines for line in e.actions() for m in STEP_MARKERS if m in line)


@pytest.mark.slow
def test_uroot_built_remotely_is_byte_identical(local_build: tuple[str, float], tmp_path: Path) -> None:
    require_tool("bwrap")
    engine = Casd(tmp_path / "casd").start()
    try:
        root = checkout(tmp_path / "k4s")
        seconds = _remote_build(root, tmp_path / "caches", engine)
    finally:
        engine.stop()
    assert _steps_run(engine) == Counter(STEP_MARKERS)
    reference, local_seconds = local_build
    assert sha256(root / UROOT_OUT) == reference
    print(f"uroot: local {local_seconds:.0f} s, remote {seconds:.0f} s (empty caches both), sha256 {reference}")


@pytest.mark.slow
def test_uroot_spread_over_two_engines(local_build: tuple[str, float], tmp_path: Path) -> None:
    require_tool("bwrap")
    second = Casd(tmp_path / "casd-b").start()
    first = Casd(tmp_path / "casd-a", jobs=1, forward=second).start()
    try:
        root = checkout(tmp_path / "k4s")
        seconds = _remote_build(root, tmp_path / "caches", first)
    finally:
        first.stop()
        second.stop()
    # uroot runs two steps at once (the module download beside the k4stool build):
    # the first engine, busy, hands one to the second.
    assert _steps_run(first) and _steps_run(second), (first.actions(), second.actions())
    assert _steps_run(first, second) == Counter(STEP_MARKERS)
    assert sha256(root / UROOT_OUT) == local_build[0]
    print(f"uroot over two engines: {seconds:.0f} s; first ran {_steps_run(first).total()} steps, "
          f"second {_steps_run(second).total()}")
