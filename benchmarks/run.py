#!/usr/bin/env python3
"""k4s benchmarks: one command, a markdown table, a JSON file and an SVG figure.

    .k4s/venv/bin/python benchmarks/run.py [--out benchmarks/results] [--k8s]

Measures, on this machine, for the u-root base profile (distros/uroot):
- cold: `pants package distros/uroot:initramfs` in a fresh checkout with an empty Pants
  store, empty named caches (GOCACHE, module caches), a new HOME and no pantsd; with the
  time of each step (from Pants' workunits) and its peak memory (benchmarks/memwatch.py);
- plain: the same commands with gobusybox's `makebb` and GNU cpio by hand, and with
  u-root's `mkuimage`, each with empty Go caches (the tool built first, as k4s builds
  its tools), same Go and flags;
- no-op rebuilds, with pantsd warm and with `--no-pantsd`;
- a change of the command list (one u-root command excluded);
- an edit of one first-party command (tests/testprojects/small's hello) against that
  project's cold build, with pantsd (how one iterates) and without;
- a fresh checkout (other path, empty store and named caches) reading a warm remote
  cache (BuildGrid, REAPI) that a first checkout filled;
- sizes: bb, cpio, cpio.xz.
With `--k8s`, also the k3s-like profile (the largest): build time and per-step peak
memory, with the machine's Go caches (a cold K8s build takes 15+ minutes).
With `--kubesolo`, the kubesolo-like appliance cold (empty caches) and then an edit of
its one first-party command, k4s-node (node/), against that cold build.
With `--remote-exec`, uroot cold with every k4s step on a REAPI engine
(build-support/remote-exec/casd, one and two engines) against the local cold build.
Sizes of bb against separate binaries for every profile: benchmarks/separate.py.
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

from benchmarks.memwatch import MemWatch  # noqa: E402
from tests.conftest import PANTS, SANDBOXES, checkout  # noqa: E402
from tests.remote_cache import BuildGrid  # noqa: E402

UROOT = "distros/uroot:initramfs"
SMALL = "tests/testprojects/small:initramfs"
K3S = "distros/k3s-like:initramfs"
KUBESOLO = "distros/kubesolo-like:initramfs"

# Process descriptions (k4s_plugin/rules) -> step names.
STEPS = {
    "Unpack the Go SDK": "go-sdk",
    "Build k4stool (download step only)": "download-tool",
    "Build k4stool for every step": "tools",
    "List the imports of first-party commands": "imports",
    "Download Go modules": "download",
    "Rewrite commands": "rewrite",  # ": plan", ": dependencies", ": NAME" (rewrite_step)
    "Compile ": "compile",
    "Pack ": "cpio",
}
WORKUNIT_LOGGER = "pants.backend.experimental.tools.workunit_logger"


class Run:
    def __init__(self, seconds: float, steps: tuple[dict[str, float], int, dict[str, list[float]]], mem: MemWatch) -> None:
        self.seconds = seconds
        self.steps = steps[0]  # step -> seconds it ran (absent: cache hit)
        self.processes = steps[1]  # Processes run here (not cache hits), k4s's and Pants' own
        self.workunits = steps[2]  # workunit name -> [count, seconds summed] (where the time went)
        self.memory = mem.peaks  # k4stool step -> peak RSS bytes of its largest process tree
        self.concurrent = mem.concurrent  # ... and of all its trees running at once


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return elapsed


def rewrite_step(description: str) -> str:
    """The rewrite's Processes (rules/rewrite.py): its plan, its dependencies, and the
    per-group ones (one per Go module) as one step (the longest of them counts)."""
    part = description.rsplit(": ", 1)[-1]
    return {"plan": "rewrite-plan", "dependencies": "rewrite-deps"}.get(part, "rewrite-group")


def step_times(logdir: Path) -> tuple[dict[str, float], int, dict[str, list[float]]]:
    """Durations of the k4s processes in the newest workunit log in logdir, how many
    Processes ran (k4s's and Pants' own; cache hits do not count), and per workunit
    name how many there were and their seconds summed (nested ones overlap)."""
    logs = sorted(logdir.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return {}, 0, {}
    steps: dict[str, float] = {}
    workunits = json.loads(logs[-1].read_text())
    ran = sum(1 for wu in workunits if wu.get("name") == "run_local_process")
    names: dict[str, list[float]] = {}
    for wu in workunits:
        entry = names.setdefault(wu.get("name") or "?", [0, 0.0])
        entry[0] += 1
        entry[1] += wu.get("duration_secs", 0) + wu.get("duration_nanos", 0) / 1e9
    for wu in workunits:
        desc = wu.get("description") or ""
        for prefix, step in STEPS.items():
            # Local runs only: cache hits (local or remote) have no run_local_process.
            if desc.startswith(prefix) and wu.get("name") == "run_local_process":
                secs = wu.get("duration_secs", 0) + wu.get("duration_nanos", 0) / 1e9
                step = rewrite_step(desc) if step == "rewrite" else step
                steps[step] = max(secs, steps.get(step, 0.0))
    for log in logs:
        log.unlink()
    return steps, ran, names


class Checkout:
    def __init__(
        self,
        base: Path,
        name: str,
        remote: str | None = None,
        named: Path | None = None,
        remote_exec: str | None = None,
        rev: str | None = None,
    ) -> None:
        """A fresh checkout of the working tree, or with `rev` of that commit."""
        self.root = checkout(base / name / "k4s") if rev is None else archive(rev, base / name / "k4s")
        self.caches = base / name / "caches"
        self.named = named or self.caches / "named"
        self.remote = remote
        self.remote_exec = remote_exec
        for d in ("home", "workunits"):
            (self.caches / d).mkdir(parents=True, exist_ok=True)

    def pants(self, *args: str, pantsd: bool = False) -> Run:
        flags = [
            "--pantsd" if pantsd else "--no-pantsd",
            f"--local-store-dir={self.caches / 'store'}",
            f"--named-caches-dir={self.named}",
            f"--backend-packages=+['{WORKUNIT_LOGGER}']",
            "--workunit-logger-enabled",
            f"--workunit-logger-logdir={self.caches / 'workunits'}",
        ]
        if self.remote:
            flags += ["--pants-config-files=+['pants.remote.toml']", f"--remote-store-address={self.remote}"]
        if self.remote_exec:
            flags += [
                "--pants-config-files=+['pants.remote-exec.toml']",
                f"--remote-store-address={self.remote_exec}",
                f"--remote-execution-address={self.remote_exec}",
            ]
        # Only this build's sandboxes (tests.conftest points Pants at SANDBOXES).
        with MemWatch(SANDBOXES) as mem:
            secs = timed([str(PANTS), *flags, *args], self.root, {"HOME": str(self.caches / "home")})
        return Run(secs, step_times(self.caches / "workunits"), mem)

    def stop_pantsd(self) -> None:
        for pid_file in (self.root / ".pids").rglob("pantsd/pid"):
            try:
                os.kill(int(pid_file.read_text().strip()), 15)
            except (ValueError, ProcessLookupError):
                pass


def archive(rev: str, dest: Path) -> Path:
    """The files of commit `rev` of this repository in dest (`git archive`)."""
    dest.mkdir(parents=True)
    tar = subprocess.run(["git", "archive", rev], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    return dest


def go_env(work: Path) -> dict[str, str]:
    return {
        "HOME": str(work / "home"),
        "GOCACHE": str(work / "gocache"),
        "GOMODCACHE": str(work / "gomodcache"),
        "GOPATH": str(work / "gopath"),
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=readonly -modcacherw",
        # tools built with -trimpath do not know their GOROOT.
        "GOROOT": subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True).stdout.strip(),
    }


def plain(base: Path, name: str, tools: Path, script: str) -> float:
    """Builds the uroot commands with a plain tool (its source module in `tools`),
    empty Go caches; `script` sees {work}."""
    work = base / name
    shutil.copytree(tools, work / "tools")
    shutil.copytree(REPO / "distros" / "uroot", work / "uroot")
    return timed(["bash", "-c", "set -euo pipefail\n" + script.format(work=work)], work, go_env(work))


def plain_makebb(base: Path) -> float:
    """makebb + GNU cpio by hand, same commands, Go and flags."""
    return plain(base, "plain", REPO / "benchmarks" / "tools", """
cd {work}/tools && go build -trimpath -o {work}/makebb github.com/u-root/gobusybox/src/cmd/makebb
cd {work}/uroot && {work}/makebb -o {work}/bb 'github.com/u-root/u-root/cmds/core/*' >{work}/makebb.log
mkdir -p {work}/root/bbin {work}/root/bin && cp {work}/bb {work}/root/bbin/bb
for d in {work}/gomodcache/github.com/u-root/u-root@*/cmds/core/*/; do ln -s bb {work}/root/bbin/$(basename $d); done
ln -s bbin/init {work}/root/init; ln -s ../bbin/gosh {work}/root/bin/sh
cd {work}/root && find . | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible -R 0:0 > {work}/initramfs.cpio
""")


def plain_mkuimage(base: Path) -> float:
    """u-root's mkuimage (gobusybox inside, its own cpio writer; benchmarks/tools
    pins it with the same gobusybox and x/tools as k4s's tools)."""
    return plain(base, "mkuimage", REPO / "benchmarks" / "tools", """
cd {work}/tools && go build -trimpath -o {work}/mkuimage github.com/u-root/mkuimage/cmd/mkuimage
cd {work}/uroot && {work}/mkuimage -o {work}/initramfs.cpio -initcmd init -defaultsh gosh \\
    -go-mod readonly 'github.com/u-root/u-root/cmds/core/*' 2>{work}/mkuimage.log
""")


def fmt_steps(run: Run) -> str:
    return ", ".join(f"{s} {t:.1f}" for s, t in run.steps.items()) or "all cached"


def fmt_mem(run: Run) -> str:
    """Peak per step: its largest process, and the sum when several ran at once."""
    out = []
    for step, peak in sorted(run.memory.items()):
        both = run.concurrent.get(step, peak)
        out.append(f"{step} {peak / 2**20:,.0f} MiB" + (f" (at once {both / 2**20:,.0f} MiB)" if both > peak else ""))
    return ", ".join(out) or "-"


def svg_bars(title: str, bars: list[tuple[str, float]], unit: str) -> str:
    """A horizontal bar chart, as SVG text (no plotting library needed)."""
    width, left, row = 760, 330, 26
    top = max(v for _, v in bars) or 1
    height = 40 + row * len(bars)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
        f'<text x="10" y="20" font-weight="bold">{title}</text>',
    ]
    for i, (label, value) in enumerate(bars):
        y = 32 + i * row
        w = (width - left - 90) * value / top
        out.append(f'<text x="10" y="{y + 15}">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 8}" fill="#4a7ab5"/>')
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}">{value:,.1f} {unit}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


Rows = list[tuple[str, str]]


def uroot_suite(base: Path, repeat: int, r: dict) -> tuple[Rows, list[tuple[str, float]]]:
    """The u-root base profile against plain makebb and mkuimage; no-op, command list
    change, an edit of the small project's command, a fresh checkout on a remote cache."""
    # Plain tools first: their caches are their own, nothing is warm for k4s either.
    # Cold builds vary by several seconds from run to run here: each cold build runs
    # `repeat` times, from scratch, and the best of them counts (all are in the JSON).
    r["plain_makebb_cpio_runs_s"] = [plain_makebb(base / f"run{i}") for i in range(repeat)]
    r["plain_mkuimage_runs_s"] = [plain_mkuimage(base / f"run{i}") for i in range(repeat)]
    checkouts = [Checkout(base / f"run{i}", "a") for i in range(repeat)]
    colds = [(c, c.pants("package", UROOT)) for c in checkouts]
    r["cold_runs_s"] = [run.seconds for _, run in colds]
    a, cold = min(colds, key=lambda c: c[1].seconds)
    r["plain_makebb_cpio_s"] = min(r["plain_makebb_cpio_runs_s"])
    r["plain_mkuimage_s"] = min(r["plain_mkuimage_runs_s"])
    r["cold_s"], r["cold_steps_s"], r["cold_peak_rss_bytes"] = cold.seconds, cold.steps, cold.memory
    r["cold_peak_rss_concurrent_bytes"] = cold.concurrent
    r["cold_processes"] = cold.processes
    r["noop_no_pantsd_s"] = a.pants("package", UROOT).seconds
    a.pants("package", UROOT, pantsd=True)  # starts pantsd
    r["noop_pantsd_s"] = a.pants("package", UROOT, pantsd=True).seconds
    a.stop_pantsd()
    dist = a.root / "dist" / "distros.uroot"
    a.pants("package", "distros/uroot:bb", "distros/uroot:initramfs-xz")
    r["bb_bytes"] = (dist / "bb").stat().st_size
    r["cpio_bytes"] = (dist / "initramfs.cpio").stat().st_size
    r["cpio_xz_bytes"] = (dist / "initramfs-xz.cpio.xz").stat().st_size

    build = a.root / "distros" / "uroot" / "BUILD"
    build.write_text(build.read_text().replace(
        'commands=["github.com/u-root/u-root/cmds/core/*"]',
        'commands=["github.com/u-root/u-root/cmds/core/*", "-github.com/u-root/u-root/cmds/core/yes"]',
    ))
    change = a.pants("package", UROOT)
    r["command_list_change_s"], r["command_list_change_steps_s"] = change.seconds, change.steps

    s = Checkout(base, "small")
    r["small_cold_s"] = s.pants("package", SMALL).seconds
    hello = s.root / "tests" / "testprojects" / "small" / "cmds" / "hello" / "main.go"
    edit = s.pants("package", SMALL, pantsd=True)  # warms pantsd; nothing changed yet
    for i, pantsd in enumerate((True, False)):
        hello.write_text(hello.read_text().replace('"hello from k4s', f'"hello{i} from k4s'))
        edit = s.pants("package", SMALL, pantsd=pantsd)
        key = "pantsd" if pantsd else "no_pantsd"
        r[f"small_edit_{key}_s"], r[f"small_edit_{key}_steps_s"] = edit.seconds, edit.steps
    s.stop_pantsd()

    server = BuildGrid(base / "buildgrid").start()
    try:
        w = Checkout(base, "remote-writer", remote=server.address)
        r["remote_write_cold_s"] = w.pants("package", UROOT).seconds
        f = Checkout(base, "remote-reader", remote=server.address)
        fresh = f.pants("package", UROOT)
        r["remote_fresh_checkout_s"], r["remote_fresh_checkout_steps_s"] = fresh.seconds, fresh.steps
    finally:
        server.stop()

    r["cold_vs_plain_ratio"] = round(r["cold_s"] / r["plain_makebb_cpio_s"], 2)
    r["cold_vs_mkuimage_ratio"] = round(r["cold_s"] / r["plain_mkuimage_s"], 2)
    r["edit_pantsd_vs_cold_ratio"] = round(r["small_edit_pantsd_s"] / r["small_cold_s"], 2)
    r["edit_no_pantsd_vs_cold_ratio"] = round(r["small_edit_no_pantsd_s"] / r["small_cold_s"], 2)
    r["command_list_vs_cold_ratio"] = round(r["command_list_change_s"] / r["cold_s"], 2)
    r["remote_fresh_vs_cold_ratio"] = round(r["remote_fresh_checkout_s"] / r["cold_s"], 2)
    rows = [
        ("cold build, empty caches, no pantsd (uroot; best of runs)", f"{r['cold_s']:.1f} s ({', '.join(f'{x:.1f}' for x in r['cold_runs_s'])})"),
        ("… its steps (s)", fmt_steps(cold)),
        ("… Processes run (k4s's and Pants' own)", f"{cold.processes}"),
        ("… peak memory per step (largest process)", fmt_mem(cold)),
        ("plain makebb + cpio, empty Go caches", f"{r['plain_makebb_cpio_s']:.1f} s ({', '.join(f'{x:.1f}' for x in r['plain_makebb_cpio_runs_s'])})"),
        ("cold / plain makebb (goal ≤ 1.0)", f"{r['cold_vs_plain_ratio']}"),
        ("u-root mkuimage, empty Go caches", f"{r['plain_mkuimage_s']:.1f} s ({', '.join(f'{x:.1f}' for x in r['plain_mkuimage_runs_s'])})"),
        ("cold / mkuimage (goal ≤ 1.0)", f"{r['cold_vs_mkuimage_ratio']}"),
        ("no-op, pantsd warm (goal ≤ 1 s)", f"{r['noop_pantsd_s']:.1f} s"),
        ("no-op, --no-pantsd", f"{r['noop_no_pantsd_s']:.1f} s"),
        ("command list change (one command excluded)",
         f"{r['command_list_change_s']:.1f} s ({r['command_list_vs_cold_ratio']} of cold; {fmt_steps(change)})"),
        ("small project cold", f"{r['small_cold_s']:.1f} s"),
        ("edit one first-party command, pantsd (goal ≤ 10% of cold)",
         f"{r['small_edit_pantsd_s']:.1f} s ({r['edit_pantsd_vs_cold_ratio']} of cold; "
         + ", ".join(f"{k} {v:.1f}" for k, v in r["small_edit_pantsd_steps_s"].items()) + ")"),
        ("edit one first-party command, --no-pantsd",
         f"{r['small_edit_no_pantsd_s']:.1f} s ({r['edit_no_pantsd_vs_cold_ratio']} of cold)"),
        ("fresh checkout, warm remote cache (goal ≤ 10% of cold)",
         f"{r['remote_fresh_checkout_s']:.1f} s ({r['remote_fresh_vs_cold_ratio']} of cold)"),
        ("bb / cpio / cpio.xz", f"{r['bb_bytes']:,} / {r['cpio_bytes']:,} / {r['cpio_xz_bytes']:,} bytes"),
    ]
    bars = [
        ("plain makebb + cpio", r["plain_makebb_cpio_s"]),
        ("mkuimage", r["plain_mkuimage_s"]),
        ("k4s cold", r["cold_s"]),
        *((f"  k4s cold: {k}", v) for k, v in cold.steps.items()),
        ("k4s no-op (pantsd)", r["noop_pantsd_s"]),
        ("k4s no-op (--no-pantsd)", r["noop_no_pantsd_s"]),
        ("k4s command list change", r["command_list_change_s"]),
        ("small project cold", r["small_cold_s"]),
        ("small: edit one command (pantsd)", r["small_edit_pantsd_s"]),
        ("fresh checkout, remote cache", r["remote_fresh_checkout_s"]),
    ]
    return rows, bars


def remote_exec_suite(base: Path, r: dict) -> Rows:
    """uroot cold (empty caches) built here, on one REAPI engine, and on two."""
    from tests.remote_exec import Casd

    local = Checkout(base, "local").pants("package", UROOT)
    one = Casd(base / "casd-one").start()
    try:
        remote = Checkout(base, "remote-exec", remote_exec=one.address).pants("package", UROOT)
    finally:
        one.stop()
    second = Casd(base / "casd-b").start()
    first = Casd(base / "casd-a", jobs=1, forward=second).start()
    try:
        two = Checkout(base, "remote-exec-2", remote_exec=first.address).pants("package", UROOT)
    finally:
        first.stop()
        second.stop()
    r["remote_exec_local_cold_s"] = local.seconds
    r["remote_exec_cold_s"] = remote.seconds
    r["remote_exec_two_engines_cold_s"] = two.seconds
    return [
        ("uroot cold here (empty caches)", f"{local.seconds:.1f} s ({fmt_steps(local)})"),
        ("uroot cold, every k4s step on one REAPI engine (casd)",
         f"{remote.seconds:.1f} s ({remote.seconds / local.seconds:.2f} of local)"),
        ("uroot cold, two engines", f"{two.seconds:.1f} s ({two.seconds / local.seconds:.2f} of local)"),
    ]


def kubesolo_suite(base: Path, r: dict) -> Rows:
    """kubesolo-like cold (empty caches), then an edit of its first-party k4s-node."""
    ks = Checkout(base, "kubesolo")
    cold = ks.pants("package", KUBESOLO)
    node = ks.root / "node" / "cmd" / "k4s-node" / "main.go"
    node.write_text(node.read_text() + "\n// benchmark edit\n")
    edit = ks.pants("package", KUBESOLO)
    r["kubesolo_cold_s"], r["kubesolo_cold_steps_s"] = cold.seconds, cold.steps
    r["kubesolo_cold_peak_rss_bytes"], r["kubesolo_cold_peak_rss_concurrent_bytes"] = cold.memory, cold.concurrent
    r["kubesolo_edit_s"], r["kubesolo_edit_steps_s"] = edit.seconds, edit.steps
    r["kubesolo_edit_vs_cold_ratio"] = round(edit.seconds / cold.seconds, 3)
    return [
        ("kubesolo-like cold, empty caches, no pantsd", f"{cold.seconds:.1f} s ({fmt_steps(cold)})"),
        ("… peak memory per step (largest process)", fmt_mem(cold)),
        ("kubesolo-like: edit k4s-node, no pantsd (goal ≤ 10% of cold)",
         f"{edit.seconds:.1f} s ({r['kubesolo_edit_vs_cold_ratio']} of cold; {fmt_steps(edit)})"),
    ]


def k3s_suite(base: Path, r: dict) -> Rows:
    """k3s-like (the largest profile) with the machine's Go caches."""
    named = Path.home() / ".cache" / "pants" / "named_caches"  # the machine's GOCACHE
    k = Checkout(base, "k3s", named=named)
    k3s = k.pants("package", K3S)
    r["k3s_warm_go_caches_s"], r["k3s_steps_s"], r["k3s_peak_rss_bytes"] = k3s.seconds, k3s.steps, k3s.memory
    r["k3s_peak_rss_concurrent_bytes"] = k3s.concurrent
    r["k3s_cpio_bytes"] = (k.root / "dist" / "distros.k3s-like" / "initramfs.cpio").stat().st_size
    return [
        ("k3s-like, machine's Go caches warm, no pantsd", f"{k3s.seconds:.1f} s ({fmt_steps(k3s)})"),
        ("… peak memory per step (largest process)", fmt_mem(k3s)),
    ]


def commit() -> str:
    """The commit measured (the checkouts copy the working tree): `+changes` if it differs."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    return head.stdout.strip() + ("+changes" if dirty.strip() else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--k8s", action="store_true", help="also build the k3s-like profile (long)")
    ap.add_argument("--kubesolo", action="store_true", help="kubesolo-like cold and an edit of k4s-node (long)")
    ap.add_argument("--remote-exec", action="store_true", help="uroot on REAPI engines (needs bwrap)")
    ap.add_argument("--no-uroot", action="store_true", help="skip the u-root suite (run only the ones named)")
    ap.add_argument("--repeat", type=int, default=2, help="cold builds of each kind (best counts)")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="k4s-bench-"))
    r: dict = {"commit": commit()}
    rows: Rows = []
    bars: list[tuple[str, float]] = []
    suites = []
    if not args.no_uroot:
        rows, bars = uroot_suite(base / "uroot", args.repeat, r)
        suites.append("uroot")
    for flag, suite in (("remote_exec", remote_exec_suite), ("kubesolo", kubesolo_suite), ("k8s", k3s_suite)):
        if getattr(args, flag):
            rows += suite(base / flag, r)
            suites.append(flag)

    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    r["machine"] = f"{platform.node()}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {go}"
    r["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    md = f"k4s benchmarks ({', '.join(suites)}), commit {r['commit']}, {r['date']}, {r['machine']}\n\n| measure | value |\n| --- | --- |\n"
    md += "".join(f"| {k} | {v} |\n" for k, v in rows)
    # The u-root suite writes latest.*; a run of other suites alone, latest-<suites>.*.
    stem = "latest" if "uroot" in suites else "latest-" + "-".join(suites)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.md").write_text(md)
    (args.out / f"{stem}.json").write_text(json.dumps(r, indent=2) + "\n")
    if bars:
        (args.out / "timings.svg").write_text(svg_bars(f"k4s timings ({r['machine']})", bars, "s"))
    print(md)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
