"""The Unified Kernel Image (`uki` target): one UEFI executable holding systemd's stub,
the pinned kernel, the initramfs and the kernel command line. Read back section by
section, then booted by UEFI firmware (OVMF) under QEMU from a FAT drive as
EFI/BOOT/BOOTX64.EFI, with no -kernel and no -initrd."""

from __future__ import annotations

import os
import re
import select
import shutil
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from ..conftest import REPO, checkout, executed_processes, fresh_dist, kmod_pin, require_tool, run_pants

# OVMF from Debian's `ovmf` package (build-support/host-tools): the firmware code and
# the template of its variable store (copied: the firmware writes boot entries to it).
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
PINNED_RELEASE = "6.1.0-57-amd64"  # distros/kernel:debian's amd64 package
# OVMF, the stub and the kernel under TCG take ~30 s on an idle machine; far more under
# load (the VM tests of other sessions): generous, and the test still ends on a hang.
BOOT_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def built() -> dict[str, Path]:
    dist = fresh_dist("uki")
    r = run_pants(f"--pants-distdir={dist}", "package", "distros/uroot:initramfs", "distros/uroot:uki", "tests/boot:uki")
    assert r.returncode == 0, r.output[-3000:]
    out = {name: dist / "distros.uroot" / f"initramfs.{name}" for name in ("cpio", "vmlinuz", "efi")}
    out["test-efi"] = dist / "tests.boot" / "uroot-uki.efi"
    for path in out.values():
        assert path.is_file(), r.output[-3000:]
    return out


def pe_sections(data: bytes) -> dict[str, bytes]:
    """The sections of a PE image by name, each its VirtualSize bytes (read here with
    struct, independently of k4stool's debug/pe)."""
    assert data[:2] == b"MZ"
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[pe:pe + 4] == b"PE\0\0"
    machine, count = struct.unpack_from("<HH", data, pe + 4)
    assert machine == 0x8664
    opt_size = struct.unpack_from("<H", data, pe + 20)[0]
    table = pe + 24 + opt_size
    sections = {}
    for i in range(count):
        name, vsize, _vaddr, _rsize, raw = struct.unpack_from("<8sIIII", data, table + 40 * i)
        sections[name.rstrip(b"\0").decode()] = data[raw:raw + vsize]
    return sections


def test_uki_holds_the_image_and_its_kernel(built) -> None:
    sections = pe_sections(built["efi"].read_bytes())
    assert pe_sections(built["test-efi"].read_bytes())[".cmdline"] == b"console=tty0 console=ttyS0 no_timer_check"
    assert list(sections)[-5:] == [".osrel", ".cmdline", ".uname", ".initrd", ".linux"]
    assert ".sdmagic" in sections  # systemd's stub
    assert sections[".initrd"] == built["cpio"].read_bytes()
    assert sections[".linux"] == built["vmlinuz"].read_bytes()
    assert sections[".uname"] == PINNED_RELEASE.encode()
    # shell_images sets no kernel_args: only the consoles, and nothing `pants run` adds.
    assert sections[".cmdline"] == b"console=tty0 console=ttyS0"
    assert b'PRETTY_NAME="k4s distros/uroot:initramfs"' in sections[".osrel"]


@pytest.mark.boot
def test_uki_boots_under_uefi_firmware(built, tmp_path: Path) -> None:
    """tests/boot:uki (distros/uroot:initramfs, `no_timer_check` added: see its BUILD):
    OVMF finds EFI/BOOT/BOOTX64.EFI on a FAT drive (QEMU's vvfat, read-only) and
    starts it; the stub hands the kernel the initramfs and the command line; u-root's
    shell answers on the serial console with the kernel release and /proc/cmdline."""
    qemu = require_tool("qemu-system-x86_64")
    for f in (OVMF_CODE, OVMF_VARS):
        if not f.is_file():
            pytest.fail(f"{f} is missing: install Debian's `ovmf` (build-support/host-tools does)")
    esp = tmp_path / "esp"
    (esp / "EFI" / "BOOT").mkdir(parents=True)
    shutil.copyfile(built["test-efi"], esp / "EFI" / "BOOT" / "BOOTX64.EFI")
    variables = tmp_path / "OVMF_VARS.fd"
    shutil.copyfile(OVMF_VARS, variables)
    argv = [
        qemu, "-machine", "q35", "-accel", "tcg", "-m", "1024", "-smp", "1", "-nographic", "-no-reboot",
        "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,file={variables}",
        "-drive", f"if=virtio,format=raw,readonly=on,file=fat:{esp}",
        "-nic", "none",
    ]
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    console = b""
    sent = False
    try:
        while proc.poll() is None and time.monotonic() - start < BOOT_TIMEOUT_S:
            ready, _, _ = select.select([proc.stdout], [], [], 5)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                console += chunk
            # u-root's gosh, interactive after the kernel booted: its prompt `> ` with the
            # line editor's key help below it. Enter is a carriage return on a terminal.
            booted = console.find(b"Run /init as init process")
            if not sent and booted >= 0 and b"toggle key help" in console[booted:]:
                # The terminal echoes what is typed: quoting makes the typed line differ from the
                # answer (`K4S-"UKI"` is printed as K4S-UKI).
                proc.stdin.write(b'echo K4S-"UKI" $(uname -r) $(cat /proc/cmdline); poweroff\r')
                proc.stdin.flush()
                sent = True
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - start
    text = console.decode(errors="replace")
    assert "BOOTX64.EFI" in text or "Boot0" in text, text[-3000:]  # OVMF's boot manager ran
    match = re.search(r"K4S-UKI (\S+) (.*)", text.replace("\r", ""))
    assert match, f"no answer from the shell after {elapsed:.0f} s:\n{text[-3000:]}"
    assert match.group(1) == PINNED_RELEASE
    assert match.group(2).strip() == "console=tty0 console=ttyS0 no_timer_check"  # tests/boot:uki
    assert "reboot: Power down" in text, text[-3000:]
    print(f"OVMF -> systemd-stub -> kernel -> u-root shell -> power off in {elapsed:.0f} s (TCG)")


STUB_AMD64 = {
    "package": "systemd-boot-efi",
    "version": "252.39-1~deb12u2",
    "sha256": "8f2b81bdcfafc466882a0cae460272dbf10d8d97c6a3c1c6ea33038c155a2f5e",
}


def test_stub_pin_matches_distros_kernel() -> None:
    build = (REPO / "distros" / "kernel" / "BUILD").read_text()
    assert all(f'"{v}"' in build for v in STUB_AMD64.values())


@pytest.fixture(scope="module")
def bad_ukis(tmp_path_factory) -> Path:
    """A scratch checkout with bad `uki` and `uefi_stub` targets in tests/ukibad, around a
    busybox with a build tag no other build uses (so its steps cannot be cache hits)."""
    root = checkout(tmp_path_factory.mktemp("uki") / "k4s")
    kmod = kmod_pin(tmp_path_factory.mktemp("kmod"))
    tag = f"k4s_ukibad_{uuid.uuid4().hex}"
    (root / "tests" / "testprojects" / "small" / "BUILD.ukibad").write_text(
        f"go_busybox(name='bb_ukibad', commands=['github.com/u-root/u-root/cmds/core/echo'], build_tags=[{tag!r}])\n"
    )
    (root / "tests" / "ukibad").mkdir()
    (root / "tests" / "ukibad" / "BUILD").write_text(
        f"uefi_stub(name='not_stub', debian_packages={{'amd64': {kmod!r}}})\n"
        f"uefi_stub(name='amd64_only', debian_packages={{'amd64': {STUB_AMD64!r}}})\n"
        "BB = '//tests/testprojects/small:bb_ukibad'\n"
        "initramfs(name='img', busybox=BB, linux_kernel='//distros/kernel:debian')\n"
        "initramfs(name='img_no_kernel', busybox=BB)\n"
        "initramfs(name='img_arm64', busybox='//distros/k3s-like:bb@goarch=arm64', linux_kernel='//distros/kernel:debian')\n"
        "uki(name='uki_not_stub', initramfs=':img', uefi_stub=':not_stub')\n"
        "uki(name='kernel_as_stub', initramfs=':img', uefi_stub='//distros/kernel:debian')\n"
        "uki(name='no_kernel', initramfs=':img_no_kernel', uefi_stub=':amd64_only')\n"
        "uki(name='arm64', initramfs=':img_arm64', uefi_stub=':amd64_only')\n"
        "uki(name='not_initramfs', initramfs=BB, uefi_stub=':amd64_only')\n"
    )
    return root


U = "tests/ukibad"
# (uki address, code, target the error names, field, text)
BAD_UKIS = [
    (f"{U}:uki_not_stub", "E_UKI_NOT_STUB", f"{U}:not_stub", "debian_packages", "not systemd's UEFI stub package"),
    (f"{U}:kernel_as_stub", "E_UKI_NOT_A_STUB_TARGET", f"{U}:kernel_as_stub", "uefi_stub", "a `linux_kernel` target"),
    (f"{U}:no_kernel", "E_UKI_NO_KERNEL", f"{U}:img_no_kernel", "linux_kernel", "needs the kernel the image is built for"),
    (f"{U}:arm64", "E_UKI_STUB_ARCH", f"{U}:arm64", "uefi_stub", "pins no UEFI stub for arm64"),
    (f"{U}:not_initramfs", "E_UKI_NOT_INITRAMFS", f"{U}:not_initramfs", "initramfs", "a `go_busybox` target"),
]


@pytest.mark.parametrize("address,code,target,field,text", BAD_UKIS, ids=[b[0].split(":")[1] for b in BAD_UKIS])
def test_bad_uki(bad_ukis: Path, address: str, code: str, target: str, field: str, text: str) -> None:
    """Each a coded error naming the target, the field and the fix, before the image's
    busybox is downloaded, rewritten or compiled."""
    dist = fresh_dist("ukibad", root=bad_ukis)
    r = run_pants(f"--pants-distdir={dist}", "--keep-sandboxes=always", "package", address, cwd=bad_ukis)
    assert r.returncode != 0
    assert code in r.output, r.output[-4000:]
    assert f"`{field}` field of {target}" in r.output, r.output[-4000:]
    assert text in r.output and "Fix:" in r.output, r.output[-4000:]
    ran = executed_processes(r.output)
    assert not [d for d in ran if d.startswith(("Download Go modules", "Rewrite", "Compile"))], ran
    assert not dist.exists() or not any(p.is_file() for p in dist.rglob("*"))
