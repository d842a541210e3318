#!/usr/bin/env python3
"""The go command's build cache shared through REAPI (`[k4s-go].shared_build_cache`):
step times and `k4stool gocache`'s counts on three "machines" (fresh checkout, empty
Pants store and named caches each, no Pants remote cache, so every step runs):

- A: the shared cache on, the server empty: cold, uploads every package it compiles;
- B: the shared cache on, the server as A left it: a cold GOCACHE, warm remote packages;
- C: the option off: today's cold build (the reference bytes).

    .k4s/venv/bin/python benchmarks/shared_gocache.py [--target distros/uroot:initramfs]

Prints a JSON summary (and writes it with --out).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.run import Checkout  # noqa: E402
from tests.conftest import sha256  # noqa: E402
from tests.remote_cache import BuildGrid  # noqa: E402


def gocache_stats(named: Path) -> list[dict]:
    log = named / "kuties_go_build" / "k4s-gocache.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="distros/uroot:initramfs")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--machines", default="ABC", help="which of A, B, C to run (C is today's cold build)")
    args = ap.parse_args()
    path, name = args.target.split(":")
    output = f"dist/{path.replace('/', '.')}/{name}.cpio"
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="k4s-shared-gocache-") as tmp:
        base = Path(tmp)
        server = BuildGrid(base / "buildgrid").start()
        try:
            for machine, shared in (("A", True), ("B", True), ("C", False)):
                if machine not in args.machines:
                    continue
                c = Checkout(base, machine)
                flags = [f"--k4s-go-shared-build-cache={server.address}"] if shared else []
                run = c.pants(*flags, "package", args.target)
                stats = gocache_stats(c.named)
                results[machine] = {
                    "shared": shared,
                    "seconds": round(run.seconds, 1),
                    "steps": {k: round(v, 1) for k, v in run.steps.items()},
                    "sha256": sha256(c.root / output),
                    "gocache": {
                        k: sum(s[k] for s in stats)
                        for k in ("gets", "local_hits", "remote_hits", "misses", "puts", "uploaded", "bytes_down", "bytes_up")
                    },
                    "gocache_per_go_command": stats,
                }
                print(machine, json.dumps({k: v for k, v in results[machine].items() if k != "gocache_per_go_command"}), flush=True)
        finally:
            server.stop()
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
