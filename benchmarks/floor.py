#!/usr/bin/env python3
"""The Kubernetes floor (issue #28): a profile's busybox built cold by k4s against plain
Go builds of the same commands, side by side on this machine in one run, each from
empty caches.

    .k4s/venv/bin/python benchmarks/floor.py [--profile k3s-like] [--only go,makebb,k4s]

What is built, for distros/<profile>:bb@goarch=amd64 (no kernel, no cpio):
- `go`: plain `go build -trimpath -tags T -ldflags L -o bin/ <commands>`, one binary per
  command (the floor every Go project has);
- `makebb`: gobusybox's `makebb` (built first from benchmarks/tools, as k4s builds its
  tools), one busybox binary, with `-go-enable-inlining` (k4s's compile inlines; makebb
  alone would not) and the same tags and -ldflags;
- `k4s`: `pants package` in a fresh checkout, empty Pants store and named caches, no
  pantsd; its steps, Processes and peak memory per step (benchmarks/memwatch.py). Then
  an edit of the first-party k4s-node (node/cmd/k4s-node/main.go) rebuilt with pantsd
  warm and without.

The command list, tags, -ldflags, patches and local modules are the profile's own: the
commands from distros/<profile>/tools.go (generated from BUILD's `commands`), the rest
from `pants peek`. The plain builds apply the profile's patches (distros/patches/) in
their module cache with GNU patch, as k4s's download step applies them in its own;
every build starts from empty Go caches (GOCACHE, GOMODCACHE) and fetches modules through
the machine's Go proxy settings. Each build's caches are deleted after it (a Kubernetes
build with fresh caches fills 8-10 GB). Writes benchmarks/results/floor-<profile>.{md,json}.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.run import Checkout, fmt_mem, fmt_steps, go_env  # noqa: E402

KINDS = ("go", "makebb", "k4s")
EDITED = Path("node/cmd/k4s-node/main.go")  # the first-party command the edit touches


class Spec:
    """What a profile's busybox builds: commands, tags, -ldflags, patches, local modules."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.target = f"distros/{profile}:bb@goarch=amd64"
        tools_go = (REPO / "distros" / profile / "tools.go").read_text()
        self.commands = re.findall(r'^\s*_ "([^"]+)"', tools_go, re.M)
        peek = subprocess.run(
            [str(REPO / "pants"), "--no-pantsd", "peek", self.target],
            cwd=REPO, capture_output=True, text=True,
        )
        if peek.returncode != 0:
            raise SystemExit(f"floor.py: pants peek {self.target} failed:\n{peek.stderr[-3000:]}")
        fields = json.loads(peek.stdout)[0]
        self.tags: list[str] = fields["build_tags"]
        self.ldflags: list[str] = fields["ldflags"]
        self.patches = [REPO / p.removeprefix("//") for p in fields["patches"]]
        self.local_modules = [m.removeprefix("//") for m in fields["local_modules"]]
        if not self.commands:
            raise SystemExit(f"floor.py: no commands in distros/{profile}/tools.go (run `pants k4s-tidy distros/{profile}:`)")

    def copy_sources(self, dest: Path) -> Path:
        """The profile's go.mod/go.sum/tools.go and its local modules at their paths
        (go.mod's `replace ... => ../../node` holds); returns the main module's dir."""
        main = dest / "distros" / self.profile
        main.mkdir(parents=True)
        for f in ("go.mod", "go.sum", "tools.go"):
            shutil.copy2(REPO / "distros" / self.profile / f, main / f)
        for m in self.local_modules:
            shutil.copytree(REPO / m, dest / m, ignore=shutil.ignore_patterns("BUILD", "*_test.go"))
        return main


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Runs cmd; seconds and the peak RSS (bytes) of its largest process (GNU time)."""
    with tempfile.NamedTemporaryFile("r") as rss:
        start = time.monotonic()
        proc = subprocess.run(
            ["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name, *cmd],
            cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
        )
        secs = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(f"floor.py: {' '.join(cmd[:3])} ... failed in {cwd}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        return secs, int(rss.read().split()[-1]) * 1024


def apply_patches(main: Path, env: dict[str, str], patches: list[Path]) -> list[str]:
    """Applies each patch to the module it names in the module cache (GOFLAGS has
    -modcacherw), like k4s's download step: a patch names files `<module path>/<file>`,
    the longest module path of the build list wins. Returns 'module@version' patched."""
    out = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Path}}", "all"], cwd=main, env={**os.environ, **env},
        capture_output=True, text=True, check=True,
    ).stdout.split()
    modules = sorted(out, key=len, reverse=True)
    patched = []
    for pf in patches:
        names = re.findall(r"^(?:\+\+\+ b/|--- a/)(\S+)", pf.read_text(), re.M)
        owners = {next((m for m in modules if n.startswith(m + "/")), "") for n in names}
        if len(owners) != 1 or "" in owners:
            raise SystemExit(f"floor.py: {pf.name}: patches {sorted(owners)}; one module per patch file is supported here")
        mod = owners.pop()
        info = json.loads(subprocess.run(
            ["go", "mod", "download", "-json", mod], cwd=main, env={**os.environ, **env},
            capture_output=True, text=True, check=True,
        ).stdout)
        strip = 2 + mod.count("/")  # "b/" and the module path's elements
        subprocess.run(
            ["patch", "--batch", "--forward", "--no-backup-if-mismatch", "-s", f"-p{strip}", "-d", info["Dir"], "-i", str(pf)],
            check=True,
        )
        patched.append(f"{mod}@{info['Version']}")
    return sorted(set(patched))


def ldflags(spec: Spec) -> str:
    # k4s's compile adds -buildid= (reproducible); makebb adds it too.
    return " ".join([*spec.ldflags, "-buildid="])


def plain_go(base: Path, spec: Spec) -> dict:
    work = base / "go"
    main = spec.copy_sources(work / "src")
    env = go_env(work)
    r: dict = {}
    start = time.monotonic()
    r["patched"] = apply_patches(main, env, spec.patches)
    r["patch_s"] = round(time.monotonic() - start, 1)
    secs, rss = run(
        ["go", "build", "-trimpath", f"-tags={','.join(spec.tags)}", "-ldflags", ldflags(spec), "-o", str(work / "bin") + "/", *spec.commands],
        main, env,
    )
    r["build_s"], r["peak_rss_bytes"] = round(secs, 1), rss
    r["total_s"] = round(r["patch_s"] + secs, 1)
    r["binaries"] = len(list((work / "bin").iterdir()))
    r["bytes"] = sum(p.stat().st_size for p in (work / "bin").iterdir())
    return r


def plain_makebb(base: Path, spec: Spec) -> dict:
    work = base / "makebb"
    main = spec.copy_sources(work / "src")
    shutil.copytree(REPO / "benchmarks" / "tools", work / "tools")
    env = go_env(work)
    r: dict = {}
    secs, _ = run(["go", "build", "-trimpath", "-o", str(work / "makebb"), "github.com/u-root/gobusybox/src/cmd/makebb"], work / "tools", env)
    r["tool_s"] = round(secs, 1)
    start = time.monotonic()
    r["patched"] = apply_patches(main, env, spec.patches)
    r["patch_s"] = round(time.monotonic() - start, 1)
    secs, rss = run(
        [str(work / "makebb"), "-o", str(work / "bb"), "-gen-dir", str(work / "gen"), "-go-enable-inlining",
         f"-go-build-tags={','.join(spec.tags)}", f"-go-extra-args=-ldflags={ldflags(spec)}", *spec.commands],
        main, env,
    )
    r["makebb_s"], r["peak_rss_bytes"] = round(secs, 1), rss
    r["total_s"] = round(r["tool_s"] + r["patch_s"] + secs, 1)
    r["bytes"] = (work / "bb").stat().st_size
    r["sha256"] = hashlib.sha256((work / "bb").read_bytes()).hexdigest()
    return r


def k4s(base: Path, spec: Spec) -> dict:
    c = Checkout(base, "k4s")
    cold = c.pants("package", spec.target)
    r: dict = {
        "total_s": round(cold.seconds, 1), "steps": fmt_steps(cold), "steps_s": cold.steps,
        "processes": cold.processes, "memory": fmt_mem(cold), "peak_rss_bytes": max(cold.memory.values(), default=0),
        "peak_rss_by_step": cold.memory,
    }
    bb = max((c.root / "dist").rglob("bb*"), key=lambda p: p.stat().st_mtime)
    r["bytes"] = bb.stat().st_size
    r["sha256"] = hashlib.sha256(bb.read_bytes()).hexdigest()
    edited = c.root / EDITED
    c.pants("package", spec.target, pantsd=True)  # starts pantsd
    for i, pantsd in enumerate((True, False)):
        edited.write_text(edited.read_text() + f"\n// floor.py edit {i}\n")
        edit = c.pants("package", spec.target, pantsd=pantsd)
        key = "edit_pantsd" if pantsd else "edit_no_pantsd"
        r[f"{key}_s"], r[f"{key}_steps"] = round(edit.seconds, 1), fmt_steps(edit)
        r[f"{key}_vs_cold"] = round(edit.seconds / cold.seconds, 3)
    c.stop_pantsd()
    return r


def remove(path: Path) -> None:
    """Deletes a build's tree (the module cache's directories are read-only)."""
    subprocess.run(["chmod", "-R", "u+w", str(path)], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def table(spec: Spec, r: dict) -> str:
    gib = 2**30
    rows = []
    runs = r["runs"]
    if "go" in runs:
        g = runs["go"]
        rows.append(("plain `go build`, one binary per command", f"{g['total_s']} s (patch {g['patch_s']}, build {g['build_s']}); "
                     f"largest process {g['peak_rss_bytes'] / gib:.1f} GiB; {g['binaries']} binaries, {g['bytes']:,} bytes"))
    if "makebb" in runs:
        m = runs["makebb"]
        rows.append(("gobusybox `makebb`, one bb", f"{m['total_s']} s (tool {m['tool_s']}, patch {m['patch_s']}, makebb {m['makebb_s']}); "
                     f"largest process {m['peak_rss_bytes'] / gib:.1f} GiB; bb {m['bytes']:,} bytes"))
        if "k4s" in runs and "sha256" in m:
            same = "the same bytes" if m["sha256"] == runs["k4s"]["sha256"] else "different bytes"
            rows.append(("k4s's bb against makebb's", f"{same} (sha256 {runs['k4s']['sha256'][:12]}… / {m['sha256'][:12]}…)"))
    if "k4s" in runs:
        k = runs["k4s"]
        rows.append(("k4s `pants package` cold, no pantsd", f"{k['total_s']} s; {k['processes']} Processes; bb {k['bytes']:,} bytes"))
        rows.append(("… its steps (s)", k["steps"]))
        rows.append(("… peak memory per step (largest process; goal ≤ 4 GiB)", k["memory"]))
        rows.append(("edit k4s-node, pantsd (goal ≤ 0.05 of cold)", f"{k['edit_pantsd_s']} s ({k['edit_pantsd_vs_cold']} of cold; {k['edit_pantsd_steps']})"))
        rows.append(("edit k4s-node, --no-pantsd", f"{k['edit_no_pantsd_s']} s ({k['edit_no_pantsd_vs_cold']} of cold; {k['edit_no_pantsd_steps']})"))
        plain = [runs[x]["total_s"] for x in ("go", "makebb") if x in runs]
        if plain:
            rows.append(("k4s cold / the faster plain build (goal ≤ 1.1)", f"{k['total_s'] / min(plain):.2f}"))
        for x in ("go", "makebb"):
            if x in runs:
                rows.append((f"k4s cold / {x}", f"{k['total_s'] / runs[x]['total_s']:.2f}"))
    rows.append(("order run, load before each (1/5/15 min)", "; ".join(f"{k} {v}" for k, v in r["load"].items())))
    head = (f"{spec.target} against plain builds of its {len(spec.commands)} commands, commit {r['commit']}, "
            f"{r['date']}, {r['machine']}\n\n| measure | value |\n| --- | --- |\n")
    return head + "".join(f"| {k} | {v} |\n" for k, v in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="k3s-like")
    ap.add_argument("--only", default=",".join(KINDS), help=f"comma-separated, in the order to run: {', '.join(KINDS)}")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    kinds = [k for k in args.only.split(",") if k]
    if unknown := sorted(set(kinds) - set(KINDS)):
        raise SystemExit(f"floor.py: --only {','.join(unknown)}: give some of {', '.join(KINDS)}")
    spec = Spec(args.profile)
    from benchmarks.run import commit

    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    r: dict = {
        "profile": args.profile, "target": spec.target, "commands": spec.commands, "tags": spec.tags,
        "commit": commit(), "machine": f"{platform.node()}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {go}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
        "runs": {}, "load": {},
    }
    base = Path(tempfile.mkdtemp(prefix="k4s-floor-"))
    builders = {"go": plain_go, "makebb": plain_makebb, "k4s": k4s}
    try:
        for kind in kinds:
            r["load"][kind] = load()
            print(f"floor.py: {kind} ({r['load'][kind]})", flush=True)
            r["runs"][kind] = builders[kind](base, spec)
            print(json.dumps(r["runs"][kind]), flush=True)
            remove(base)  # each build from empty caches, and the disk freed
            base.mkdir()
    finally:
        remove(base)
    md = table(spec, r)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"floor-{args.profile}.md").write_text(md)
    (args.out / f"floor-{args.profile}.json").write_text(json.dumps(r, indent=2) + "\n")
    print(md)


if __name__ == "__main__":
    main()
