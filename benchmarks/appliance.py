#!/usr/bin/env python3
"""The appliance as a user meets it, timed: power-on -> node Ready -> first Deployment
Running, MemAvailable at Ready, component memory, image sizes.

    .k4s/venv/bin/python benchmarks/appliance.py [--target distros/kubesolo-like:initramfs]
        [--memory 1024] [--runs 1]

Each run is `./pants run <target> -- -memory M -accel tcg -forward ...` (the image is
built first if needed, not timed), the admin kubeconfig it prints, and a stock kubectl
(tests/appliance_driver.py). Times are from QEMU's start. Writes
benchmarks/results/appliance.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.appliance_driver import PANTS, Appliance  # noqa: E402


def image_sizes(target: str) -> dict[str, int]:
    """Sizes of the target's cpio and of the xz variant next to it (built if missing)."""
    spec, name = target.split(":")
    out = {}
    for variant in (name, f"{name}-xz"):
        subprocess.run([str(PANTS), "--no-pantsd", "package", f"{spec}:{variant}"], cwd=REPO, check=True,
                       capture_output=True)
        for f in (REPO / "dist" / spec.replace("/", ".")).glob(f"{variant}.cpio*"):
            out[f.name] = f.stat().st_size
    return out


def one_run(target: str, memory: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        vm = Appliance(target, Path(tmp) / "console.log", memory_mib=memory)
        try:
            vm.start()
            ready = vm.wait("node Ready", vm.node_ready, 45 * 60)
            vm.kubectl("create", "deployment", "bench", "--image=k4s.local/demo:v1", "--port=8080")
            running = vm.wait("Deployment running", lambda: vm.rollout_done("bench", 1), 20 * 60)
            text = vm.console_text()
            rss = re.search(r"memory at Ready \(RssAnon[^)]*\): (.*)", text)
            return {
                "ready_s": round(ready, 1),
                "deployment_running_s": round(running, 1),
                "mem_available_at_ready_mib": vm.mem_available_at_ready(),
                "component_rss_anon_at_ready": rss.group(1).strip() if rss else None,
            }
        finally:
            vm.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="distros/kubesolo-like:initramfs")
    ap.add_argument("--memory", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    sizes = image_sizes(args.target)
    runs = [one_run(args.target, args.memory) for _ in range(args.runs)]
    result = {
        "target": args.target,
        "memory_mib": args.memory,
        "machine": f"{platform.node()}, {platform.machine()}, TCG",
        "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
        "image_sizes": sizes,
        "runs": runs,
    }
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "appliance.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"`{args.target}`, {args.memory} MiB VM, QEMU TCG, 2 vCPUs ({result['date']})",
        "",
        "| run | power-on -> Ready | -> Deployment running | MemAvailable at Ready |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for i, r in enumerate(runs, 1):
        lines.append(f"| {i} | {r['ready_s']} s | {r['deployment_running_s']} s | {r['mem_available_at_ready_mib']} MiB |")
    lines += ["", "Image sizes: " + ", ".join(f"{k} {v:,} bytes" for k, v in sorted(sizes.items()))]
    lines += ["", "Component memory at Ready (RssAnon): " + str(runs[-1]["component_rss_anon_at_ready"])]
    (out / "appliance.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
