"""Remote caching against a real REAPI server (BuildGrid 0.4.4 on 127.0.0.1).

Checkout A builds with remote write; checkout B — another path, empty Pants store and
named caches (so empty GOCACHE and module caches), another HOME, and no Go on PATH —
reads the results back and runs no k4s step. Faults (server down,
server killed mid-build, Pants killed mid-build, a corrupted local store entry) never
fail a build or change its output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import (
    K3S_GROUPS,
    PANTS,
    SMALL_GROUPS,
    UROOT_GROUPS,
    checkout,
    executed_k4s_steps,
    isolated_pants,
    k4s_step_count,
    sha256,
    stat_counter,
)
from ..remote_cache import BuildGrid, free_port

SMALL = "tests/testprojects/small:initramfs"
SMALL_OUT = "dist/tests.testprojects.small/initramfs.cpio"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    bg = BuildGrid(tmp_path_factory.mktemp("buildgrid")).start()
    yield bg
    bg.stop()


@pytest.fixture(scope="module")
def named(tmp_path_factory) -> Path:
    """Named caches shared by the fault tests (they only speed builds up)."""
    return tmp_path_factory.mktemp("named")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, named: Path) -> str:
    """sha256 of the small initramfs, built without any remote cache."""
    root = checkout(tmp_path_factory.mktemp("ref") / "k4s")
    r = isolated_pants(root, Path(str(root) + "-caches"), "package", SMALL, named=named)
    assert r.returncode == 0, r.output
    executed_k4s_steps(r.output)
    return sha256(root / SMALL_OUT)


def test_fresh_checkout_reads_remote_cache(server: BuildGrid, tmp_path: Path) -> None:
    a = checkout(tmp_path / "a" / "k4s")
    r = isolated_pants(a, tmp_path / "caches-a", "package", "distros/uroot:initramfs", remote=server.address)
    assert r.returncode == 0, r.output
    assert stat_counter(r.output, "remote_cache_write_successes") >= 5, r.output
    assert stat_counter(r.output, "remote_cache_write_errors") == 0
    assert len(executed_k4s_steps(r.output)) == k4s_step_count(UROOT_GROUPS, kernel=True)

    # Checkout B: another path, empty caches, another HOME, no Go on PATH (steps run
    # the SDK [k4s-go] pins, fetched from the module proxy: the same digest).
    no_go = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "go").exists())
    b = checkout(tmp_path / "b" / "deeper" / "k4s")
    r = isolated_pants(
        b, tmp_path / "caches-b", "package", "distros/uroot:initramfs", remote=server.address,
        env={"PATH": no_go},
    )
    assert r.returncode == 0, r.output
    # Pants 2.17 races a local run against the remote lookup ("speculation") and
    # cancels the local run when the remote answers first: every k4s step must have
    # come from the remote cache, with no local run finishing first.
    executed_k4s_steps(r.output)
    assert stat_counter(r.output, "remote_cache_requests_cached") >= 5
    assert stat_counter(r.output, "remote_cache_requests_uncached") == 0
    assert stat_counter(r.output, "remote_cache_speculation_local_completed_first") == 0
    assert stat_counter(r.output, "remote_cache_speculation_remote_completed_first") >= 5
    out = "dist/distros.uroot/initramfs.cpio"
    assert sha256(a / out) == sha256(b / out)


def test_server_down_builds_locally(reference: str, named: Path, tmp_path: Path) -> None:
    root = checkout(tmp_path / "k4s")
    r = isolated_pants(
        root, tmp_path / "caches", "package", SMALL, remote=f"grpc://127.0.0.1:{free_port()}", named=named
    )
    assert r.returncode == 0, r.output
    assert "[WARN]" in r.output and "remote" in r.output.lower(), r.output
    assert len(executed_k4s_steps(r.output)) == k4s_step_count(SMALL_GROUPS, imports=True)
    assert sha256(root / SMALL_OUT) == reference


def _popen_pants(
    root: Path, caches: Path, named: Path, *args: str, remote: str | None = None
) -> subprocess.Popen:
    home = caches / "home"
    home.mkdir(parents=True, exist_ok=True)
    flags = [f"--local-store-dir={caches / 'store'}", f"--named-caches-dir={named}"]
    if remote:
        flags += ["--pants-config-files=+['pants.remote.toml']", f"--remote-store-address={remote}"]
    return subprocess.Popen(
        [str(PANTS), "--no-pantsd", *flags, *args],
        cwd=root, env={**os.environ, "HOME": str(home)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _wait_for(proc: subprocess.Popen, marker: str, timeout: float = 600) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
        assert time.monotonic() < deadline, "".join(seen)
    raise AssertionError(f"{marker!r} never appeared:\n{''.join(seen)}")


def test_server_dies_mid_build(reference: str, named: Path, tmp_path: Path) -> None:
    bg = BuildGrid(tmp_path / "bg").start()
    root = checkout(tmp_path / "k4s")
    proc = _popen_pants(root, tmp_path / "caches", named, "package", SMALL, remote=bg.address)
    try:
        before = _wait_for(proc, "Completed: Build k4stool (download step only)")
        bg.stop()  # SIGKILL the server while the build goes on
        rest, _ = proc.communicate(timeout=900)
    finally:
        bg.stop()
    assert proc.returncode == 0, before + rest
    assert sha256(root / SMALL_OUT) == reference


def test_pants_killed_mid_build(reference: str, named: Path, tmp_path: Path) -> None:
    root = checkout(tmp_path / "k4s")
    caches = tmp_path / "caches"
    proc = _popen_pants(root, caches, named, "package", SMALL)
    _wait_for(proc, "Starting: Rewrite commands")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (root / SMALL_OUT).exists()
    r = isolated_pants(root, caches, "package", SMALL, named=named)
    assert r.returncode == 0, r.output
    assert sha256(root / SMALL_OUT) == reference


def test_corrupted_local_store_entry_is_rebuilt(reference: str, named: Path, tmp_path: Path) -> None:
    root = checkout(tmp_path / "k4s")
    caches = tmp_path / "caches"
    r = isolated_pants(root, caches, "package", SMALL, named=named)
    assert r.returncode == 0, r.output
    executed_k4s_steps(r.output)
    # Large blobs live as files named by their sha256; flip one byte of the cpio's.
    blob = caches / "store" / "immutable" / "files" / reference[:2] / reference
    assert blob.is_file()
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0xFF
    blob.write_bytes(bytes(data))
    (root / SMALL_OUT).unlink()

    r = isolated_pants(root, caches, "package", SMALL, named=named)
    assert r.returncode == 0, r.output
    assert "corrupted" in r.output, r.output
    assert sha256(root / SMALL_OUT) == reference  # never served
    # Only the image is packed again (its entry count follows the base layout).
    steps = executed_k4s_steps(r.output)
    assert len(steps) == 1 and steps[0].startswith("Pack tests/testprojects/small:initramfs ("), steps


@pytest.mark.slow
def test_largest_profile_through_remote_cache(server: BuildGrid, tmp_path: Path) -> None:
    """The k3s-like profile: its download and rewrite outputs are tars of hundreds of
    MB (a tree of ~20,000 files if it were not one archive) and bb is ~150 MB. A
    writes every step to the remote cache; B, with empty local caches, gets a
    byte-identical image from it without running a step. A shares the machine's
    named caches (GOCACHE: only speed, never results) so its compile is not cold."""
    shared_named = Path.home() / ".cache" / "pants" / "named_caches"
    target = "distros/k3s-like:initramfs"
    out = "dist/distros.k3s-like/initramfs.cpio"
    a = checkout(tmp_path / "a" / "k4s")
    start = time.monotonic()
    r = isolated_pants(a, tmp_path / "caches-a", "package", target, remote=server.address,
                       named=shared_named)
    a_seconds = time.monotonic() - start
    assert r.returncode == 0, r.output
    assert len(executed_k4s_steps(r.output)) == k4s_step_count(K3S_GROUPS, kernel=True, imports=True)
    assert stat_counter(r.output, "remote_cache_write_successes") >= 5, r.output
    assert stat_counter(r.output, "remote_cache_write_errors") == 0, r.output

    b = checkout(tmp_path / "b" / "k4s")
    start = time.monotonic()
    r = isolated_pants(b, tmp_path / "caches-b", "package", target, remote=server.address)
    b_seconds = time.monotonic() - start
    assert r.returncode == 0, r.output
    executed_k4s_steps(r.output)
    assert stat_counter(r.output, "remote_cache_requests_cached") >= 5, r.output
    assert stat_counter(r.output, "remote_cache_requests_uncached") == 0, r.output
    assert stat_counter(r.output, "remote_cache_speculation_local_completed_first") == 0
    assert sha256(a / out) == sha256(b / out)
    print(f"k3s-like: A (remote write) {a_seconds:.0f} s, B (remote hit) {b_seconds:.0f} s, "
          f"cpio {(b / out).stat().st_size:,} bytes")
