"""arm64 images boot: u-root's core commands built for arm64, in an initramfs booted by
`pants run` under qemu-system-aarch64 (`-machine virt -cpu max`, TCG) with Debian's
arm64 kernel (console ttyAMA0), to a gosh shell that prints the machine.

Debian's arm64 kernel comes from build-support/host-tools (README's test command
fetches it into .k4s/kernels/). The test adds, in a scratch checkout, a BUILD file
beside the u-root profile with the arm64 busybox, a `file` target for the kernel and
the image."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import pytest

from .conftest import REPO, checkout, require_tool, run_pants

BUILD_ARM64 = '''
go_busybox(name="bb-arm64", commands=["github.com/u-root/u-root/cmds/core/*"], goarch="arm64")

file(name="kernel-arm64", source="vmlinuz-arm64")

initramfs(
    name="shell-arm64",
    busybox=":bb-arm64",
    kernel=":kernel-arm64",
    uinit="gosh",
    uinit_args=["-c", "echo K4S-ARM64-SHELL; uname -m; poweroff"],
    vm_memory=512,
)
'''


@pytest.mark.slow
@pytest.mark.boot
def test_arm64_image_boots_to_a_shell(tmp_path: Path) -> None:
    require_tool("qemu-system-aarch64")
    kernels = sorted(glob.glob(str(REPO / ".k4s" / "kernels" / "vmlinuz-*-arm64")))
    if not kernels:
        pytest.fail("no Debian arm64 kernel in .k4s/kernels/: run build-support/host-tools (as root)")
    root = checkout(tmp_path / "k4s")
    uroot = root / "distros" / "uroot"
    shutil.copy(kernels[-1], uroot / "vmlinuz-arm64")
    (uroot / "BUILD.arm64").write_text(BUILD_ARM64)

    r = run_pants("run", "distros/uroot:shell-arm64", cwd=root, timeout=1500)
    console = r.stdout
    assert "Booting Linux on physical CPU" in console or "Linux version" in console, r.output[-4000:]
    assert "Linux version 6." in console and "arm64" in console
    assert "K4S-ARM64-SHELL" in console, r.output[-4000:]
    lines = console.splitlines()
    at = max(i for i, line in enumerate(lines) if "K4S-ARM64-SHELL" in line)
    assert any(line.strip() == "aarch64" for line in lines[at:at + 5]), "\n".join(lines[at:at + 5])
