"""Remote execution on a real REAPI engine (buildbox-casd 1.4.25 on 127.0.0.1, actions
in bubblewrap sandboxes: build-support/remote-exec/casd), with pants.remote-exec.toml.

The u-root image is built with every k4s step executed by the engine: Pants' stats
count them as remote executions, the engine's action log lists each of them, and no
local sandbox ran one. The image is byte-identical to a local build. With two engines
(the first runs one action at a time and hands the others to the second, casd's own
hybrid mode), both run steps, and the bytes are the same again.

Faults (issue 16, item 4): workers killed mid-action (the runner of one step, the
process of another), and the engine down at the start or killed mid-build, with
`[k4s-go].remote_fallback` "local" (the default) and "fail".
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

from ..conftest import (
    SMALL_GROUPS,
    UROOT_GROUPS,
    checkout,
    executed_k4s_steps,
    isolated_pants,
    k4s_step_count,
    require_tool,
    sha256,
    stat_counter,
)
from ..remote_exec import Casd, Fault

UROOT = "distros/uroot:initramfs"
UROOT_OUT = "dist/distros.uroot/initramfs.cpio"
# The engine-side command lines of k4s's steps: two go builds of k4stool (through the
# shell line that makes GO* paths absolute), then download, the rewrite (plan,
# dependencies, one per Go module), compile, cpio; how many of each uroot runs.
STEP_MARKERS = {
    "-C __k4s_tools_src build": 2,
    "k4stool-download download": 1,
    "k4stool rewrite-plan": 1,
    "k4stool rewrite-deps": 1,
    "k4stool rewrite-commands": UROOT_GROUPS,
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
    assert len(executed_k4s_steps(r.output)) == k4s_step_count(UROOT_GROUPS, kernel=True)  # all here
    return sha256(root / UROOT_OUT), seconds


def _remote_build(root: Path, caches: Path, engine: Casd) -> float:
    start = time.monotonic()
    r = isolated_pants(root, caches, "package", UROOT, remote_exec=engine.address)
    seconds = time.monotonic() - start
    assert r.returncode == 0, r.output
    assert stat_counter(r.output, "remote_execution_success") >= k4s_step_count(UROOT_GROUPS, kernel=True), r.output
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


@pytest.mark.slow
def test_uroot_survives_killed_workers(local_build: tuple[str, float], tmp_path: Path) -> None:
    """Two workers die mid-action: the rewrite's runner (buildbox-run: the engine reports
    an error and Pants submits the action again, to the same engine), then the compile's
    k4stool in its sandbox (the action ends with exit code 137: k4s runs the compile
    here). The build succeeds with the bytes of a local build."""
    require_tool("bwrap")
    engine = Casd(tmp_path / "casd").start()
    try:
        root = checkout(tmp_path / "k4s")
        start = time.monotonic()
        with Fault(engine, "k4stool rewrite-plan", "runner", delay=0.5) as runner, Fault(engine, "k4stool compile", "step") as step:
            r = isolated_pants(root, tmp_path / "caches", "package", UROOT, remote_exec=engine.address)
        seconds = time.monotonic() - start
    finally:
        engine.stop()
    assert runner.done and step.done, (runner.done, step.done, r.output[-3000:])
    assert r.returncode == 0, r.output
    # The runner's death: Pants' own retry on the engine, which ran the rewrite twice.
    assert stat_counter(r.output, "remote_execution_rpc_retries") >= 1, r.output
    assert sum("k4stool rewrite-plan" in line for line in engine.actions()) == 2, engine.actions()
    # The step's death: k4s's fallback, with a warning; only the compile ran here.
    assert re.search(
        r"k4s: the compile of distros/uroot:bb failed remotely .*killed on the executor \(SIGKILL, exit code 137\)"
        r".*Running it on this machine instead", r.output,
    ), r.output
    assert [s.split(" ", 1)[0] for s in executed_k4s_steps(r.output)] == ["Compile"], executed_k4s_steps(r.output)
    assert sha256(root / UROOT_OUT) == local_build[0]
    print(f"uroot, two workers killed: {seconds:.0f} s (local {local_build[1]:.0f} s); killed {runner.done}, {step.done}")


SMALL = "tests/testprojects/small:bb"


@pytest.mark.slow
def test_engine_down_at_start_fails_clearly(tmp_path: Path) -> None:
    """With `[k4s-go].remote_fallback = "fail"` and no engine, the first step fails the
    build with the engine's address and the fixes."""
    root = checkout(tmp_path / "k4s")
    address = Casd(tmp_path / "casd").address  # a free port nobody listens on
    r = isolated_pants(
        root, tmp_path / "caches", "package", SMALL, remote_exec=address,
        env={"PANTS_K4S_GO_REMOTE_FALLBACK": "fail"},
    )
    assert r.returncode != 0
    for part in ("k4s could not run the step 'Build k4stool", "remotely", address, "Connection refused",
                 "build-support/remote-exec/casd", "--no-remote-execution", "remote_fallback"):
        assert part in r.output, r.output
    assert executed_k4s_steps(r.output) == []


@pytest.mark.slow
def test_engine_killed_mid_build_falls_back_here(tmp_path: Path) -> None:
    """The engine dies while the rewrite runs on it: Pants gives up on it after its
    retries, and k4s runs the rewrite and the compile here (the default
    `remote_fallback = "local"`), with a warning each. The steps before ran remotely."""
    require_tool("bwrap")
    engine = Casd(tmp_path / "casd").start()
    try:
        root = checkout(tmp_path / "k4s")
        with Fault(engine, "k4stool rewrite-plan", "engine", delay=0.5) as fault:
            r = isolated_pants(root, tmp_path / "caches", "package", SMALL, remote_exec=engine.address)
    finally:
        engine.stop()
    assert fault.done, r.output[-3000:]
    assert r.returncode == 0, r.output
    assert stat_counter(r.output, "remote_execution_success") >= 3, r.output  # the two tool builds, download
    for step in ("gobusybox rewrite", "compile"):
        assert re.search(
            rf"k4s: the {step} of {SMALL} failed remotely .*the remote execution engine failed: .*"
            r"Running it on this machine instead", r.output,
        ), r.output
    # Here: the rewrite's plan, dependencies and one step per Go module, then the compile.
    here = Counter(s.split(" ", 1)[0] for s in executed_k4s_steps(r.output))
    assert here == {"Rewrite": 2 + SMALL_GROUPS, "Compile": 1}, r.output
    assert (root / "dist/tests.testprojects.small/bb").stat().st_size > 0
