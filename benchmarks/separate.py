#!/usr/bin/env python3
"""The saving of one shared Go runtime: a profile's `bb` against the same commands
built as separate static binaries with the same Go, flags and module sources.

    .k4s/venv/bin/python benchmarks/separate.py distros/k3s-like [--goarch amd64]

It reads the profile's go_busybox (`pants peek`), fetches and patches the modules
exactly as k4s's download step does (k4stool download: go.sum-verified, same
`patches`), then runs one `go build -trimpath -ldflags "<same ldflags> -buildid="
-o <dir>/ <every command>` in module mode (CGO_ENABLED=0, GOPROXY=off), which writes
one binary per command. The bb must have been packaged first (`pants package
<profile>:bb@goarch=<arch>`); the script prints a markdown row and writes
benchmarks/results/separate-<profile>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PANTS = REPO / "pants"


def sh(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{p.stdout[-4000:]}{p.stderr[-4000:]}")
    return p.stdout


def go_patterns(commands: list[str]) -> list[str]:
    """gobusybox globs (`.../cmds/core/*`) as go build patterns; exclusions dropped."""
    out = []
    for c in commands:
        if c.startswith("-"):
            continue
        out.append(c[:-2] + "/..." if c.endswith("/*") else c)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profile", help="profile directory, e.g. distros/k3s-like")
    ap.add_argument("--goarch", default="amd64")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = ap.parse_args()
    profile = args.profile.rstrip("/")
    name = Path(profile).name
    address = f"{profile}:bb@goarch={args.goarch}"

    peek = subprocess.run([str(PANTS), "--no-pantsd", "peek", address], cwd=REPO,
                          capture_output=True, text=True)
    if peek.returncode != 0:  # a profile without per-arch variants (distros/uroot)
        address = f"{profile}:bb"
        peek.stdout = sh([str(PANTS), "--no-pantsd", "peek", address], REPO)
    tgt = json.loads(peek.stdout)[0]
    bb = REPO / "dist" / profile.replace("/", ".") / address.split(":")[1]
    if not bb.is_file():
        raise SystemExit(f"{bb} is missing: run `./pants package {address}` first")

    goroot = sh(["go", "env", "GOROOT"], REPO).strip()
    host_modcache = sh(["go", "env", "GOMODCACHE"], REPO).strip()
    proxy = os.environ.get("GOPROXY") or sh(["go", "env", "GOPROXY"], REPO).strip()
    with tempfile.TemporaryDirectory(prefix="k4s-separate-") as tmp:
        work = Path(tmp)
        k4stool = work / "k4stool"
        sh(["go", "build", "-o", str(k4stool), "./k4stool"], REPO / "k4s_plugin" / "tools")
        patch_args = []
        for p in tgt.get("patches") or []:
            path = p[2:] if p.startswith("//") else os.path.join(profile, p)
            patch_args += ["-patch", str(REPO / path)]
        env = {
            "GOROOT": goroot,
            "GOOS": tgt["goos"],
            "GOARCH": tgt["goarch"],
            # The host's module cache as a local proxy in front of GOPROXY.
            "GOPROXY": f"file://{host_modcache}/cache/download,{proxy}",
        }
        sh([str(k4stool), "download", "-gomod", str(REPO / profile), "-out", "modules.tar",
            *patch_args, *tgt["commands"]], work, env)
        modcache = work / "modcache"
        with tarfile.open(work / "modules.tar") as tf:
            tf.extractall(modcache)
        outdir = work / "bin"
        outdir.mkdir()
        ldflags = " ".join(tgt["ldflags"] or ()) + " -buildid="
        build_env = {
            "GOMODCACHE": str(modcache),
            "GOPROXY": "off",
            "GOFLAGS": "-mod=mod -buildvcs=false",
            "GOWORK": "off",
            "CGO_ENABLED": "0",
            "GOOS": tgt["goos"],
            "GOARCH": tgt["goarch"],
        }
        tags = ["-tags", ",".join(tgt["build_tags"])] if tgt.get("build_tags") else []
        # gobusybox's `dir/*` is one level deep; go's `dir/...` is not.
        listed = sh(["go", "list", *tags, "-f", "{{if eq .Name \"main\"}}{{.ImportPath}}{{end}}",
                     *go_patterns(tgt["commands"])], REPO / profile, build_env).split()
        globs = [c[:-2] for c in tgt["commands"] if c.endswith("/*")]
        excluded = {c[1:] for c in tgt["commands"] if c.startswith("-")}
        pkgs = [
            p for p in listed
            if p not in excluded
            and (p in tgt["commands"] or any(os.path.dirname(p) == g for g in globs))
        ]
        start = time.monotonic()
        sh(["go", "build", "-trimpath", *tags, "-ldflags", ldflags, "-o", str(outdir) + "/",
            *pkgs], REPO / profile, build_env)
        seconds = time.monotonic() - start
        binaries = {p.name: p.stat().st_size for p in sorted(outdir.iterdir())}

    total = sum(binaries.values())
    bb_size = bb.stat().st_size
    result = {
        "profile": name,
        "goarch": args.goarch,
        "commands": len(binaries),
        "bb_bytes": bb_size,
        "separate_bytes": total,
        "ratio": round(total / bb_size, 2),
        "separate_build_seconds": round(seconds, 1),
        "binaries": binaries,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"separate-{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| profile | commands | bb bytes | separate binaries, bytes | separate / bb |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {name} | {len(binaries)} | {bb_size:,} | {total:,} | {total / bb_size:.2f} |")
    biggest = sorted(binaries.items(), key=lambda kv: -kv[1])[:12]
    print("\nlargest separate binaries: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in biggest))


if __name__ == "__main__":
    sys.exit(main())
