"""arm64 images boot: u-root's core commands built for arm64, in an initramfs booted by
`pants run` under qemu-system-aarch64 (`-machine virt -cpu max`, TCG) with the pinned
Debian arm64 kernel of distros/kernel:debian (console ttyAMA0), to a gosh shell that
loads an arm64 module of that kernel and prints the machine.

The build fetches the arm64 package with apt-get (build-support/host-tools adds the
arm64 architecture to dpkg). The test adds, in a scratch checkout, a BUILD file beside
the u-root profile with the arm64 busybox and the image."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
