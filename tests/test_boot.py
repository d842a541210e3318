"""The u-root base profile's busybox, in every compression, unpacked by the real
tools and booted by a real Linux kernel under QEMU."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import fresh_dist, require_tool, run_pants
from .qemu import image_kernel, qemu_argv

MARKER = "K4S-BOOT-MARKER"
BOOT_TIMEOUT_S = 120
PINNED_RELEASE = "6.1.0-57-amd64"  # distros/kernel:debian's amd64 package  # TCG boots this in ~5 s; a hang must not stall CI


@pytest.fixture(scope="module")
def images() -> dict[str, Path]:
    dist = fresh_dist("boot")
    r = run_pants(f"--pants-distdir={dist}", "package", "tests/boot:")
    assert r.returncode == 0, r.output
    found = {}
    for c, ext in (("none", "cpio"), ("gzip", "cpio.gz"), ("xz", "cpio.xz"), ("zstd", "cpio.zst")):
        found[c] = dist / "tests.boot" / f"initramfs@compression={c}.{ext}"
        assert found[c].is_file(), r.output
    return found


@pytest.mark.parametrize(
    "compression,tool",
    [("gzip", ["gzip", "-dc"]), ("xz", ["xz", "-dc"]), ("zstd", ["zstd", "-dc"])],
)
def test_compressed_archives_decompress(images, compression: str, tool: list[str]) -> None:
    require_tool(tool[0])
    out = subprocess.run([*tool, images[compression]], capture_output=True, check=True).stdout
    assert out == images["none"].read_bytes()


def test_xz_uses_crc32_check(images) -> None:
    require_tool("xz")
    out = subprocess.run(["xz", "--robot", "-lv", images["xz"]], capture_output=True, text=True, check=True)
    assert "CRC32" in out.stdout


@pytest.mark.boot
@pytest.mark.parametrize("compression", ["none", "gzip", "xz", "zstd"])
def test_boots_in_qemu(images, compression: str) -> None:
    # /dev/kvm exists on these machines but hangs: always TCG here.
    argv = qemu_argv(images[compression], memory=1024, cpus=1, append="quiet")
    start = time.monotonic()
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=BOOT_TIMEOUT_S,
    )
    elapsed = time.monotonic() - start
    console = proc.stdout.decode(errors="replace")
    assert MARKER in console, console[-3000:]
    # `uname -r` ran inside the guest: the marker line carries the release of the kernel
    # `pants package` wrote beside the image (the pinned one), not this machine's.
    assert image_kernel(images[compression]) == str(images[compression].with_name(f"initramfs@compression={compression}.vmlinuz"))
    assert f"{MARKER} {PINNED_RELEASE}" in console, console[-3000:]
    assert "reboot: Power down" in console, console[-3000:]
    print(f"{compression}: booted and powered off in {elapsed:.1f} s")


@pytest.mark.boot
def test_pants_run_boots_the_image() -> None:
    """`pants run` of an initramfs boots it in QEMU with the serial console on the
    terminal: KVM only where it really boots a kernel (here /dev/kvm hangs, so TCG),
    and QEMU exits when the guest powers off."""
    require_tool("qemu-system-x86_64")
    r = run_pants("run", "tests/boot:initramfs@compression=zstd", timeout=BOOT_TIMEOUT_S + 120)
    assert r.returncode == 0, r.output[-3000:]
    assert f"{MARKER} " in r.output, r.output[-3000:]
    assert "-accel kvm" in r.output or "-accel tcg" in r.output
    assert "-initrd " in r.output and "initramfs.cpio.zst" in r.output


@pytest.mark.boot
def test_kernel_modules_load_at_boot() -> None:
    """`kernel_modules` carries modules and their dependencies from the pinned kernel
    package (`linux_kernel`); `pants run` boots that kernel; the image loads them in
    the order of etc/modules-load.d/k4s.conf."""
    require_tool("qemu-system-x86_64")
    r = run_pants("run", "tests/boot:initramfs_kmods", timeout=BOOT_TIMEOUT_S + 120)
    assert r.returncode == 0, r.output[-3000:]
    assert "K4S-KMODS-DONE" in r.output, r.output[-3000:]
    assert re.search(r"nodev\s+overlay", r.output), r.output[-3000:]
    for mod, users in (("br_netfilter", "-"), ("bridge", "br_netfilter,"), ("stp", "bridge,"), ("llc", "bridge,stp,")):
        assert re.search(rf"^{mod} \d+ \d+ {re.escape(users)}", r.output, re.M), (mod, r.output[-2000:])
