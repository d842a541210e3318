"""Time each k4stool build of k4s_plugin/rules/tools.py, cold, at several commits.

    .k4s/venv/bin/python benchmarks/tool_builds.py [--rounds N] REV...

For each round and each REV (interleaved, so machine load hits all alike): the
commit's `k4s_plugin/tools` (git archive) built the way `_go_build` builds it (same go
flags, env and tags, host Go, which must be the pinned `[k4s-go].version`), with an
empty GOCACHE and in the rules' order: the download tool, the step tool, the gocache
tool (when the commit has one: `k4stool/gocache_step.go`), the kernel tool; each
reuses what the ones before compiled, as in Pants' shared `kuties_go_build` cache.
Modules come from the host's GOMODCACHE (warm: module downloads are not timed).
Prints one JSON line per build: wall and CPU seconds, bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from k4s_plugin.subsystems import GO_VERSION  # noqa: E402

# (output, tags), in the order the rules build them.
BUILDS = (
    ("k4stool-download", "k4s_download"),
    ("k4stool", ""),
    ("k4stool-gocache", "k4s_download,k4s_gocache"),
    ("k4stool-kernel", "k4s_download,k4s_kernel"),
    ("k4stool-vm", "k4s_vm"),
)


def build_all(rev: str, rnd: int, work: Path) -> list[dict]:
    src = work / f"src-{rev}"
    if not src.exists():
        src.mkdir()
        tar = subprocess.run(["git", "archive", rev, "k4s_plugin/tools"], cwd=REPO, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(src)], input=tar.stdout, check=True)
    tools = src / "k4s_plugin" / "tools"
    gocache = work / "gocache"
    shutil.rmtree(gocache, ignore_errors=True)
    env = {
        **os.environ, "GOCACHE": str(gocache), "GOFLAGS": "-mod=readonly -modcacherw", "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local", "GOTELEMETRY": "off", "GOWORK": "off",
    }
    rows = []
    for out, tags in BUILDS:
        if ("k4s_gocache" in tags and not (tools / "k4stool" / "gocache_step.go").exists()) or (
            "k4s_vm" in tags and not (tools / "k4stool" / "vm_steps.go").exists()
        ):
            continue
        exe = work / out
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        subprocess.run(
            ["go", "build", "-trimpath", "-ldflags=-s -w -buildid=", *(("-tags", tags) if tags else ()),
             "-o", str(exe), "./k4stool"],
            cwd=tools, env=env, check=True,
        )
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        rows.append({"rev": rev, "round": rnd, "tool": out, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "bytes": exe.stat().st_size})
        print(json.dumps(rows[-1]), flush=True)
    shutil.rmtree(gocache, ignore_errors=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("revs", nargs="+")
    args = ap.parse_args()
    have = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    if have != f"go{GO_VERSION}":
        sys.exit(f"the go on PATH is {have}; the steps build with go{GO_VERSION} ([k4s-go].version): put that one first")
    with tempfile.TemporaryDirectory(prefix="k4s-tool-builds-") as tmp:
        for rnd in range(1, args.rounds + 1):
            for rev in args.revs:
                build_all(rev, rnd, Path(tmp))


if __name__ == "__main__":
    main()
