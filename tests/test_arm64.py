"""arm64 images boot under `pants run` with qemu-system-aarch64 (`-machine virt -cpu max`,
TCG) and the pinned Debian arm64 kernel of distros/kernel:debian (console ttyAMA0):

- u-root's core commands built for arm64, to a gosh shell that loads an arm64 module of
  that kernel and prints the machine (a BUILD file, in a scratch checkout, beside the
  u-root profile);
- the checked-in arm64 node `distros/kubesolo-like:initramfs-arm64` (command_groups.py
  arm64_node_image), driven as its user drives it (tests/appliance_driver.py): Ready to a
  stock kubectl, and a Deployment's pod reporting `uname -m` = aarch64.

The build fetches the arm64 package with apt-get (build-support/host-tools adds the
arm64 architecture to dpkg)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from .appliance_driver import Appliance
from .conftest import checkout, require_tool, run_pants

BUILD_ARM64 = '''
go_busybox(name="bb-arm64", commands=["github.com/u-root/u-root/cmds/core/*"], goarch="arm64")

initramfs(
    name="shell-arm64",
    busybox=":bb-arm64",
    linux_kernel="//distros/kernel:debian",
    kernel_modules=["overlay"],
    uinit="gosh",
    uinit_args=["-c", "for m in $(cat /etc/modules-load.d/k4s.conf); do insmod /$m; done; "
                + "cat /proc/filesystems; echo K4S-ARM64-SHELL; uname -m; poweroff"],
    vm_memory=512,
)
'''


@pytest.mark.slow
@pytest.mark.boot
def test_arm64_image_boots_to_a_shell(tmp_path: Path) -> None:
    require_tool("qemu-system-aarch64")
    root = checkout(tmp_path / "k4s")
    (root / "distros" / "uroot" / "BUILD.arm64").write_text(BUILD_ARM64)

    r = run_pants("run", "distros/uroot:shell-arm64", cwd=root, timeout=1500)
    console = r.stdout
    assert "Booting Linux on physical CPU" in console or "Linux version" in console, r.output[-4000:]
    assert "Linux version 6.1.0-57-arm64" in console, r.output[-4000:]
    assert re.search(r"nodev\s+overlay", console), console[-3000:]  # the arm64 module loaded
    assert "K4S-ARM64-SHELL" in console, r.output[-4000:]
    lines = console.splitlines()
    at = max(i for i, line in enumerate(lines) if "K4S-ARM64-SHELL" in line)
    assert any(line.strip() == "aarch64" for line in lines[at:at + 5]), "\n".join(lines[at:at + 5])


# kubesolo-like: of the node profiles, the fewest components (kine, no etcd; one CNI
# bridge, no flannel), so the cheapest to boot under aarch64 TCG; its arm64 bb is also
# smaller than k3s-like's (docs/profiles.md).
ARM64_NODE = "distros/kubesolo-like:initramfs-arm64"
# Emulated aarch64 on a busy 2-core x86 machine, the build included if `pants run` has to
# make the image first (tens of minutes cold).
BUILD_TIMEOUT_S = 90 * 60
READY_TIMEOUT_S = 60 * 60
SHUTDOWN_BOUND_S = 10 * 60

# A Deployment whose pod reports its machine: an init container runs `uname -m` (its log
# stays readable), then the pod sleeps, so the Deployment is available.
UNAME_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: arch}
spec:
  replicas: 1
  selector: {matchLabels: {app: arch}}
  template:
    metadata: {labels: {app: arch}}
    spec:
      initContainers:
      - {name: uname, image: k4s.local/demo:v1, command: [/bbin/uname, -m]}
      containers:
      - {name: sleep, image: k4s.local/demo:v1, command: [/bbin/sleep, "3600"]}
"""


@pytest.mark.slow
@pytest.mark.boot
def test_arm64_node_runs_an_aarch64_pod(tmp_path: Path) -> None:
    require_tool("qemu-system-aarch64")
    qmp_dir = Path(tempfile.mkdtemp(prefix="k4s-qmp-"))  # a unix socket's path is short
    qmp_path = qmp_dir / "qmp.sock"
    vm = Appliance(
        ARM64_NODE, tmp_path / "console.log",
        extra_vm_args=("-machine-arg", "-qmp", "-machine-arg", f"unix:{qmp_path},server=on,wait=off"),
    )
    try:
        t0 = time.monotonic()
        vm.start(timeout=BUILD_TIMEOUT_S)
        t_start = time.monotonic() - t0
        t_ready = vm.wait("node Ready", vm.node_ready, READY_TIMEOUT_S)
        console = vm.console_text()
        assert "qemu-system-aarch64" in console and "-cpu max" in console, console[:4000]
        assert "Linux version 6.1.0-57-arm64" in console, console[-4000:]
        node = json.loads(vm.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]
        assert node["status"]["nodeInfo"]["architecture"] == "arm64", node["status"]["nodeInfo"]

        vm.kubectl("apply", "-f", "-", input=UNAME_DEPLOYMENT)
        t_deploy = vm.wait("the arch Deployment available", lambda: vm.rollout_done("arch", 1), 30 * 60)
        out = vm.kubectl("logs", "deployment/arch", "-c", "uname").stdout
        assert out.strip() == "aarch64", out

        # The virt machine's power button (gpio-keys, command_groups.py ARM64_KERNEL_MODULES)
        # stops the node in order, as the ACPI one does on amd64.
        # (QEMU loads no ACPI tables without firmware, so the kernel has only the device tree's.)
        assert re.search(r"power button: /dev/input/event\d+ ", vm.console_text()), vm.console_text()[-4000:]
        t_down, _ = vm.power_button(qmp_path, SHUTDOWN_BOUND_S)
        print(
            f"\n{ARM64_NODE} in {vm.memory_mib} MiB: QEMU started {t_start:.0f} s after `pants run`, "
            f"then (from QEMU's start) node Ready at {t_ready:.0f} s (MemAvailable "
            f"{vm.mem_available_at_ready()} MiB), the Deployment available at {t_deploy:.0f} s, `uname -m` "
            f"{out.strip()}; power button to QEMU's exit {t_down:.0f} s"
        )
    except BaseException:
        print("--- console tail ---\n" + vm.console_text()[-8000:])
        raise
    finally:
        vm.stop()
        shutil.rmtree(qmp_dir, ignore_errors=True)
