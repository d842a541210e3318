#!/usr/bin/env python3
"""k4s benchmarks: one command, a markdown table and a JSON file.

    .k4s/venv/bin/python benchmarks/run.py [--out benchmarks/results]

Measures, on this machine, for the u-root base profile (distros/uroot):
- cold: `pants package distros/uroot:initramfs` in a fresh checkout with an empty Pants
  store, empty named caches (GOCACHE, module caches) and a new HOME;
- plain: the same commands with gobusybox's `makebb` and GNU cpio by hand, with an empty
  GOCACHE/GOMODCACHE (makebb built first, as k4s builds its tools);
- no-op rebuilds, with pantsd warm and with `--no-pantsd`;
- an edit of one first-party command (tests/testprojects/small's hello) against that
  project's cold build;
- a change of the command list (one u-root command excluded);
- sizes: bb, cpio, cpio.xz.
Not yet: remote-cache fresh checkout, per-step peak memory, Kubernetes profiles.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import PANTS, checkout  # noqa: E402

UROOT = "distros/uroot:initramfs"
SMALL = "tests/testprojects/small:initramfs"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return elapsed


class Checkout:
    def __init__(self, base: Path, name: str) -> None:
        self.root = checkout(base / name / "k4s")
        self.caches = base / name / "caches"
        (self.caches / "home").mkdir(parents=True, exist_ok=True)

    def pants(self, *args: str, pantsd: bool = False) -> float:
        flags = [
            f"--local-store-dir={self.caches / 'store'}",
            f"--named-caches-dir={self.caches / 'named'}",
        ]
        if not pantsd:
            flags.insert(0, "--no-pantsd")
        return timed([str(PANTS), *flags, *args], self.root, {"HOME": str(self.caches / "home")})

    def stop_pantsd(self) -> None:
        for pid_file in (self.root / ".pids").rglob("pantsd/pid"):
            try:
                os.kill(int(pid_file.read_text().strip()), 15)
            except (ValueError, ProcessLookupError):
                pass


def plain_makebb(base: Path) -> float:
    """makebb + GNU cpio by hand, same commands, Go and flags, empty Go caches."""
    work = base / "plain"
    shutil.copytree(REPO / "k4s_plugin" / "tools", work / "tools")
    shutil.copytree(REPO / "distros" / "uroot", work / "uroot")
    env = {
        "HOME": str(work / "home"),
        "GOCACHE": str(work / "gocache"),
        "GOMODCACHE": str(work / "gomodcache"),
        "GOPATH": str(work / "gopath"),
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=readonly -modcacherw",
        # makebb built with -trimpath does not know its GOROOT.
        "GOROOT": subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True).stdout.strip(),
    }
    script = f"""
set -euo pipefail
cd {work}/tools && go build -trimpath -o {work}/makebb github.com/u-root/gobusybox/src/cmd/makebb
cd {work}/uroot && {work}/makebb -o {work}/bb 'github.com/u-root/u-root/cmds/core/*' >{work}/makebb.log
mkdir -p {work}/root/bbin {work}/root/bin && cp {work}/bb {work}/root/bbin/bb
for d in {work}/gomodcache/github.com/u-root/u-root@*/cmds/core/*/; do ln -s bb {work}/root/bbin/$(basename $d); done
ln -s bbin/init {work}/root/init; ln -s ../bbin/gosh {work}/root/bin/sh
cd {work}/root && find . | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible -R 0:0 > {work}/initramfs.cpio
"""
    return timed(["bash", "-c", script], work, env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="k4s-bench-"))
    r: dict[str, float | int | str] = {}

    a = Checkout(base, "a")
    r["cold_s"] = a.pants("package", UROOT)
    r["noop_no_pantsd_s"] = a.pants("package", UROOT)
    a.pants("package", UROOT, pantsd=True)  # starts pantsd
    r["noop_pantsd_s"] = a.pants("package", UROOT, pantsd=True)
    a.stop_pantsd()
    dist = a.root / "dist" / "distros.uroot"
    a.pants("package", "distros/uroot:bb", "distros/uroot:initramfs_xz")
    r["bb_bytes"] = (dist / "bb").stat().st_size
    r["cpio_bytes"] = (dist / "initramfs.cpio").stat().st_size
    r["cpio_xz_bytes"] = (dist / "initramfs_xz.cpio.xz").stat().st_size

    build = a.root / "distros" / "uroot" / "BUILD"
    build.write_text(build.read_text().replace(
        'commands=["github.com/u-root/u-root/cmds/core/*"]',
        'commands=["github.com/u-root/u-root/cmds/core/*", "-github.com/u-root/u-root/cmds/core/yes"]',
    ))
    r["command_list_change_s"] = a.pants("package", UROOT)

    s = Checkout(base, "small")
    r["small_cold_s"] = s.pants("package", SMALL)
    hello = s.root / "tests" / "testprojects" / "small" / "cmds" / "hello" / "main.go"
    hello.write_text(hello.read_text().replace('"hello from k4s"', '"hello again from k4s"'))
    r["small_edit_one_command_s"] = s.pants("package", SMALL)

    r["plain_makebb_cpio_s"] = plain_makebb(base)
    r["cold_vs_plain_ratio"] = round(float(r["cold_s"]) / float(r["plain_makebb_cpio_s"]), 2)
    r["edit_vs_cold_ratio"] = round(float(r["small_edit_one_command_s"]) / float(r["small_cold_s"]), 2)
    r["command_list_vs_cold_ratio"] = round(float(r["command_list_change_s"]) / float(r["cold_s"]), 2)
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    r["machine"] = f"{platform.node()} {os.cpu_count()} cores, {go}"
    r["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    rows = [
        ("cold build, empty caches (uroot)", f"{r['cold_s']:.1f} s"),
        ("plain makebb + cpio, empty Go caches", f"{r['plain_makebb_cpio_s']:.1f} s"),
        ("cold / plain (goal ≤ 1.15)", f"{r['cold_vs_plain_ratio']}"),
        ("no-op, pantsd warm (goal ≤ 2 s)", f"{r['noop_pantsd_s']:.1f} s"),
        ("no-op, --no-pantsd", f"{r['noop_no_pantsd_s']:.1f} s"),
        ("command list change (one command excluded)", f"{r['command_list_change_s']:.1f} s ({r['command_list_vs_cold_ratio']} of cold)"),
        ("small project cold", f"{r['small_cold_s']:.1f} s"),
        ("small project, one first-party command edited (goal ≤ 30% of cold)", f"{r['small_edit_one_command_s']:.1f} s ({r['edit_vs_cold_ratio']} of cold)"),
        ("bb / cpio / cpio.xz", f"{r['bb_bytes']:,} / {r['cpio_bytes']:,} / {r['cpio_xz_bytes']:,} bytes"),
    ]
    md = f"k4s benchmarks, {r['date']}, {r['machine']}\n\n| measure | value |\n| --- | ---: |\n"
    md += "".join(f"| {k} | {v} |\n" for k, v in rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(md)
    (args.out / "latest.json").write_text(json.dumps(r, indent=2) + "\n")
    print(md)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
