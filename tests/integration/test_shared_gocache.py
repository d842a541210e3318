"""The go command's build cache shared through a real REAPI server (BuildGrid 0.4.4 on
127.0.0.1): `[k4s-go].shared_build_cache` makes the rewrite and compile steps run go with
`k4stool-gocache gocache` as GOCACHEPROG (a k4stool of its own, built only then).

Machine A (its own checkout, Pants store and named caches) builds with the shared cache
and uploads every package it compiles. Machine B (another checkout, empty store and
named caches: a cold GOCACHE; no Pants remote cache, so its rewrite and compile
Processes are cache misses and run) gets go's packages from the server instead of
compiling them, and writes the same bytes. Then B builds without the option: the go
command reads the local layer k4stool gocache wrote (it is Go's own GOCACHE layout) and
compiles nothing again, with the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from k4s_plugin.rules.errors import K4sStepError
from k4s_plugin.rules.steps import K4sGocacheTool, shared_cache_env

from ..conftest import checkout, executed_k4s_steps, isolated_pants, sha256
from ..remote_cache import BuildGrid

TARGET = "tests/testprojects/small:bb"
OUT = "dist/tests.testprojects.small/bb"


def gocache_stats(named: Path) -> list[dict]:
    """One line per go command that ran k4stool gocache (kuties_go_build/k4s-gocache.log)."""
    log = named / "kuties_go_build" / "k4s-gocache.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.slow
def test_packages_shared_across_machines(tmp_path: Path) -> None:
    server = BuildGrid(tmp_path / "buildgrid").start()
    try:
        shared = f"--k4s-go-shared-build-cache={server.address}"

        a = checkout(tmp_path / "a" / "k4s")
        r = isolated_pants(a, tmp_path / "caches-a", shared, "package", TARGET)
        assert r.returncode == 0, r.output
        # The GOCACHEPROG is a tool of its own, built only with the option.
        assert "Build k4stool-gocache (the shared build cache's GOCACHEPROG)" in executed_k4s_steps(r.output)
        stats_a = gocache_stats(tmp_path / "caches-a" / "named")
        assert stats_a and all(not s.get("remote_error") for s in stats_a), stats_a
        uploaded = sum(s["uploaded"] for s in stats_a)
        compiled_a = sum(s["puts"] for s in stats_a)
        assert uploaded == compiled_a > 100, stats_a

        b = checkout(tmp_path / "b" / "deeper" / "k4s")
        r = isolated_pants(b, tmp_path / "caches-b", shared, "package", TARGET)
        assert r.returncode == 0, r.output
        ran = executed_k4s_steps(r.output)
        assert any(d.startswith("Compile ") for d in ran) and any(d.startswith("Rewrite ") for d in ran), ran
        stats_b = gocache_stats(tmp_path / "caches-b" / "named")
        assert all(not s.get("remote_error") for s in stats_b), stats_b
        hits = sum(s["remote_hits"] for s in stats_b)
        down = sum(s["bytes_down"] for s in stats_b)
        # What B uploads is not compiled code: a few hundred small `go list` entries
        # keyed by sandbox paths (they never hit on any machine), and bb's link.
        up_a, up_b = sum(s["bytes_up"] for s in stats_a), sum(s["bytes_up"] for s in stats_b)
        assert hits > 100 and down > 1_000_000 and up_b * 10 < up_a, (stats_a, stats_b)
        # The compile step's `go build` (the last go command) compiles nothing but bb's
        # main package and link: every other package came from the remote or the
        # rewrite's `go list -export` just before.
        assert stats_b[-1]["remote_hits"] > 0 and stats_b[-1]["puts"] <= 2, stats_b[-1]
        # The rewrite's `go list -export` compiled none of the commands' dependencies.
        assert any(s["remote_hits"] > 100 and s["puts"] == 0 for s in stats_b), stats_b
        assert sha256(b / OUT) == sha256(a / OUT)

        # Without the option (another compile key): the go command's own cache reads
        # what k4stool gocache wrote (Go's layout); no GOCACHEPROG runs, same bytes.
        r = isolated_pants(b, tmp_path / "caches-b", "package", TARGET)
        assert r.returncode == 0, r.output
        assert gocache_stats(tmp_path / "caches-b" / "named") == stats_b  # no GOCACHEPROG ran
        assert sha256(b / OUT) == sha256(a / OUT)
    finally:
        server.stop()


def test_shared_cache_env_only_for_compiling_steps() -> None:
    on = SimpleNamespace(shared_build_cache="grpc://cache:50051", shared_build_cache_instance_name="main")
    off = SimpleNamespace(shared_build_cache=None, shared_build_cache_instance_name="")
    want = {
        "K4S_GOCACHE_REMOTE": "grpc://cache:50051",
        "K4S_GOCACHE_INSTANCE": "main",
        # The GOCACHEPROG's k4stool, which run_k4s_step puts in these steps' sandboxes.
        "K4S_GOCACHE_PROG": K4sGocacheTool.k4stool,
    }
    assert shared_cache_env(on, True) == want
    # The other steps keep their keys when the option changes.
    assert shared_cache_env(on, False) == {}
    assert shared_cache_env(off, True) == {}
    with pytest.raises(K4sStepError, match="grpc://host:port"):
        shared_cache_env(SimpleNamespace(shared_build_cache="http://x", shared_build_cache_instance_name=""), True)

