#!/usr/bin/env python3
"""Two commits side by side on this machine, in one run: the uroot image cold (fresh
checkout of each commit, empty Pants store and named caches, no pantsd; writing a new
BuildGrid remote cache), the Processes it ran, a no-op without and with pantsd, and a
second fresh checkout reading that remote cache (with where its time went: workunits
by name); rounds interleaved (A, B, A, B, ...), so both meet the same load, and the
ratios B/A per round are what to read on a busy machine.

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
from tests.remote_cache import BuildGrid  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def one(base: Path, rev: str, target: str) -> dict:
    server = BuildGrid(base / f"{rev}-buildgrid").start()
    try:
        c = Checkout(base, rev, rev=rev, remote=server.address)
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
        reader = Checkout(base, f"{rev}-reader", rev=rev, remote=server.address)
        fresh = reader.pants("package", target)
        r.update(remote_fresh_s=round(fresh.seconds, 1), remote_fresh_steps=fmt_steps(fresh))
        r["remote_fresh_processes"] = fresh.processes
        top = sorted(fresh.workunits.items(), key=lambda kv: -kv[1][1])[:12]
        r["remote_fresh_workunits"] = {name: [n, round(secs, 1)] for name, (n, secs) in top}
    finally:
        server.stop()
    r["load_after"] = load()
    for d in (rev, f"{rev}-reader", f"{rev}-buildgrid"):
        shutil.rmtree(base / d, ignore_errors=True)
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
        for key in ("cold_s", "cold_processes", "noop_no_pantsd_s", "noop_pantsd_s", "remote_fresh_s", "remote_fresh_processes"):
            x, y = rnd[a][key], rnd[b][key]
            md += f"| {i + 1} | {key} | {x} | {y} | {f'{y / x:.2f}' if x else '—'} |\n"
        ra, rb = (rnd[r]["remote_fresh_s"] / rnd[r]["cold_s"] for r in (a, b))
        md += f"| {i + 1} | remote_fresh_s / cold_s | {ra:.2f} | {rb:.2f} | |\n"
        for r, label in ((a, "A"), (b, "B")):
            top = ", ".join(f"{k} {n}× {t} s" for k, (n, t) in list(rnd[r]["remote_fresh_workunits"].items())[:6])
            md += f"| {i + 1} | fresh checkout, remote cache: workunits ({label}) | {top} | | |\n"
        md += f"| {i + 1} | cold steps (s) | {rnd[a]['cold_steps']} | {rnd[b]['cold_steps']} | |\n"
        md += f"| {i + 1} | fresh checkout, remote cache: steps run (s) | {rnd[a]['remote_fresh_steps']} | {rnd[b]['remote_fresh_steps']} | |\n"
        md += f"| {i + 1} | load (1/5/15 min) before | {rnd[a]['load_before']} | {rnd[b]['load_before']} | |\n"
        md += f"| {i + 1} | cpio sha256 | {rnd[a]['cpio_sha256'][:12]}… | {rnd[b]['cpio_sha256'][:12]}… | |\n"
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"pair-{a}-{b}"
    stem.with_suffix(".md").write_text(md)
    stem.with_suffix(".json").write_text(json.dumps({"revs": revs, "target": args.target, "rounds": rounds}, indent=2) + "\n")
    print(md)


if __name__ == "__main__":
    main()
