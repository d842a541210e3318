#!/usr/bin/env python3
"""A node's life with a data disk, timed (issue #24): first boot (the node formats the
disk), a datastore snapshot from the host, the power button (orderly shutdown), a
reboot over the data, a restore onto a fresh disk; and the RAM the node's own pieces
cost at Ready in a 1 GiB node.

    .k4s/venv/bin/python benchmarks/lifecycle.py [--target distros/k3s-like:initramfs]
        [--objects 200]

Each boot is `./pants run <target> -- -disk <image> ...` through tests/appliance_driver.py
(the image is built first if needed, not timed); times are from QEMU's start, Ready
means a heartbeat of that boot. Writes benchmarks/results/lifecycle-<profile>.{md,json}.
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
from tests.disk_node import DEPLOYMENT, deployment_running_since, ready_after  # noqa: E402


def console_line(vm: Appliance, pattern: str) -> str | None:
    m = re.search(pattern, vm.console_text())
    return m.group(1).strip() if m else None


def configmaps(n: int) -> str:
    return "\n---\n".join(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bench-{i}, labels: {{k4s-bench: life}}}}\n"
        f"data: {{counter: '{i}'}}" for i in range(n)
    )


def count(vm: Appliance) -> int:
    r = vm.kubectl("get", "configmaps", "-l", "k4s-bench=life", "-o", "name", check=False)
    return len(r.stdout.split()) if r.returncode == 0 else -1


def boot(target: str, tmp: Path, name: str, *extra: str) -> Appliance:
    vm = Appliance(target, tmp / f"{name}.log", extra_vm_args=extra)  # 6443, 6444: free host ports
    vm.start()
    return vm


def run(target: str, objects: int) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="k4s-life-") as scratch:
        tmp = Path(scratch)
        disk, fresh, snap, qmp_path = tmp / "node.img", tmp / "fresh.img", tmp / "state.snap", tmp / "qmp.sock"
        qmp_args = ("-machine-arg", "-qmp", "-machine-arg", f"unix:{qmp_path},server=on,wait=off")

        # First boot: an empty disk, formatted by the node.
        vm = boot(target, tmp, "first", "-disk", str(disk), "-disk-size", "4G", *qmp_args)
        try:
            out["first_boot_ready_s"] = round(vm.wait("node Ready", vm.node_ready, 45 * 60), 1)
            out["format"] = console_line(vm, r"\[k4s-node\] (data disk \S+ formatted in [^\n]*)")
            out["mem_available_at_ready_mib"] = vm.mem_available_at_ready()
            out["reservation"] = console_line(vm, r"\[k4s-node\] (memory reserved from pods: [^\n]*)")
            out["logs"] = console_line(vm, r"\[k4s-node\] (logs: [^\n]*)")
            vm.kubectl("apply", "-f", "-", input=configmaps(objects) + "\n---\n" + DEPLOYMENT, timeout=600)
            vm.wait("the Deployment", lambda: vm.rollout_done("keeper", 1), 20 * 60)
            # k4s-node prints its memory line after the Ready one, once it has read every
            # component's /proc: read it later than Ready.
            out["rss_anon_at_ready"] = console_line(vm, r"memory at Ready \(RssAnon[^)]*\): ([^\n]*)")
            assert count(vm) == objects

            out["snapshot_with_pants_run_s"] = round(vm.snapshot(snap), 1)
            out["snapshot_bytes"] = snap.stat().st_size
            out["snapshot_node"] = console_line(vm, r"\[k4s-node\] (datastore snapshot for[^\n]*)")

            seconds, _ = vm.power_button(qmp_path, 10 * 60)
            out["power_button_to_off_s"] = round(seconds, 1)
            out["shutdown_order"] = ", ".join(re.findall(r"shutdown: (\S+) exited after", vm.console_text()))
        finally:
            vm.stop()

        # A reboot over the data.
        t_off = time.time()
        vm = boot(target, tmp, "reboot", "-disk", str(disk))
        try:
            out["reboot_ready_s"] = round(ready_after(vm, t_off, 45 * 60), 1)
            out["reboot_deployment_running_s"] = round(vm.wait(
                "the Deployment after the reboot", lambda: deployment_running_since(vm, t_off), 20 * 60), 1)
            assert count(vm) == objects
            out["mount"] = console_line(vm, r"\[k4s-node\] (data disk [^\n]*mounted[^\n]*)")
        finally:
            vm.stop()

        # A restore onto a fresh disk.
        t_off = time.time()
        vm = boot(target, tmp, "restore", "-disk", str(fresh), "-disk-size", "4G", "-restore", str(snap))
        try:
            out["restore_ready_s"] = round(ready_after(vm, t_off, 45 * 60), 1)
            out["restore_objects_back_s"] = round(vm.wait(
                "the objects after the restore", lambda: count(vm) == objects, 20 * 60), 1)
            out["restore_deployment_running_s"] = round(vm.wait(
                "the Deployment after the restore", lambda: deployment_running_since(vm, t_off), 20 * 60), 1)
            out["restore_node"] = console_line(vm, r"\[k4s-node\] (datastore snapshot restored[^\n]*)")
        finally:
            vm.stop()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="distros/k3s-like:initramfs")
    ap.add_argument("--objects", type=int, default=200)
    args = ap.parse_args()
    subprocess.run([str(PANTS), "--no-pantsd", "package", args.target], cwd=REPO, check=True, capture_output=True)
    when = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    load = open("/proc/loadavg").read().split()[:3]
    res = run(args.target, args.objects)
    res.update(target=args.target, objects=args.objects, date=when, commit=commit,
               machine=f"{platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} "
                       f"cores, load {' '.join(load)} at start")
    profile = args.target.split("/")[1].split(":")[0]
    results = REPO / "benchmarks" / "results"
    (results / f"lifecycle-{profile}.json").write_text(json.dumps(res, indent=2) + "\n")
    rows = [
        ("first boot (empty disk formatted) -> Ready", f"{res['first_boot_ready_s']} s"),
        (f"snapshot of {args.objects} ConfigMaps + a Deployment (with `pants run`)",
         f"{res['snapshot_with_pants_run_s']} s, {res['snapshot_bytes']:,} bytes"),
        ("power button -> QEMU exits", f"{res['power_button_to_off_s']} s"),
        ("reboot over the data -> Ready", f"{res['reboot_ready_s']} s"),
        ("reboot -> the Deployment's pod running again", f"{res['reboot_deployment_running_s']} s"),
        ("restore onto a fresh disk -> Ready", f"{res['restore_ready_s']} s"),
        ("restore -> every object back", f"{res['restore_objects_back_s']} s"),
        ("restore -> the Deployment's pod running", f"{res['restore_deployment_running_s']} s"),
    ]
    md = [f"`{args.target}`, 1 GiB VM with a 4 GiB data disk, QEMU TCG ({res['machine']}; {when}, commit {commit})",
          "", "| step | time (from QEMU's start) |", "| --- | ---: |"]
    md += [f"| {a} | {b} |" for a, b in rows]
    md += ["", "On the console:", ""]
    for key in ("format", "mount", "snapshot_node", "restore_node", "shutdown_order", "reservation", "logs"):
        md.append(f"- {key}: {res.get(key)}")
    md.append(f"- MemAvailable at Ready: {res['mem_available_at_ready_mib']} MiB")
    md.append(f"- RssAnon at Ready: {res['rss_anon_at_ready']}")
    (results / f"lifecycle-{profile}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
