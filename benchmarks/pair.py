#!/usr/bin/env python3
"""Two commits side by side on this machine, in one run: the uroot image cold (fresh
checkout of each commit, empty Pants store and named caches, no pantsd), the Processes
it ran, a no-op without and with pantsd; rounds interleaved (A, B, A, B, ...), so
both meet the same load, and the ratios B/A per round are what to read on a busy
machine.

    .k4s/venv/bin/python benchmarks/pair.py [--rounds N] [--target T] REV_A REV_B

Writes benchmarks/results/pair-<A>-<B>.{md,json} (short hashes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.run import UROOT, Checkout, fmt_steps  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def one(base: Path, rev: str, target: str) -> dict:
    c = Checkout(base, rev, rev=rev)
    r: dict = {"load_before": load()}
    cold = c.pants("package", target)
    r.update(cold_s=round(cold.seconds, 1), cold_steps=fmt_steps(cold), cold_processes=cold.processes)
    r["noop_no_pantsd_s"] = round(c.pants("package", target).seconds, 1)
    c.pants("package", target, pantsd=True)  # starts pantsd
    r["noop_pantsd_s"] = min(round(c.pants("package", target, pantsd=True).seconds, 2) for _ in range(3))
    c.stop_pantsd()
    r["cpio_sha256"] = subprocess.run(
        ["sha256sum", str(c.root / "dist" / target.replace("/", ".").split(":")[0] / "initramfs.cpio")],
        capture_output=True, text=True, check=True,
    ).stdout.split()[0]
    r["load_after"] = load()
    shutil.rmtree(base / rev, ignore_errors=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev_a")
    ap.add_argument("rev_b")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--target", default=UROOT)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    revs = [
        subprocess.run(["git", "rev-parse", "--short", r], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        for r in (args.rev_a, args.rev_b)
    ]
    base = Path(tempfile.mkdtemp(prefix="k4s-pair-"))
    rounds = []
    try:
        for i in range(args.rounds):
            rounds.append({rev: one(base / f"round{i}", rev, args.target) for rev in revs})
            print(json.dumps(rounds[-1], indent=1), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    a, b = revs
    md = (
        f"{args.target}: {a} (A) against {b} (B), "
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='minutes')}, {os.cpu_count()} cores\n\n"
        "| round | measure | A | B | B / A |\n| --- | --- | ---: | ---: | ---: |\n"
    )
    for i, rnd in enumerate(rounds):
        for key in ("cold_s", "cold_processes", "noop_no_pantsd_s", "noop_pantsd_s"):
            x, y = rnd[a][key], rnd[b][key]
            md += f"| {i + 1} | {key} | {x} | {y} | {y / x:.2f} |\n"
        md += f"| {i + 1} | cold steps (s) | {rnd[a]['cold_steps']} | {rnd[b]['cold_steps']} | |\n"
        md += f"| {i + 1} | load (1/5/15 min) before | {rnd[a]['load_before']} | {rnd[b]['load_before']} | |\n"
        md += f"| {i + 1} | cpio sha256 | {rnd[a]['cpio_sha256'][:12]}… | {rnd[b]['cpio_sha256'][:12]}… | |\n"
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"pair-{a}-{b}"
    stem.with_suffix(".md").write_text(md)
    stem.with_suffix(".json").write_text(json.dumps({"revs": revs, "target": args.target, "rounds": rounds}, indent=2) + "\n")
    print(md)


if __name__ == "__main__":
    main()
