"""One QEMU command line for the tests and benchmarks that boot an image outside `pants
run`: k4stool vm's, the one `pants run` uses (printed with `-print`, then run here), with
the kernel `pants package` wrote beside the image (its `linux_kernel`, the kernel whose
modules it carries); for images made by hand (no kernel beside them), this machine's
newest /boot/vmlinuz-* (the tests' host tools install Debian's)."""

from __future__ import annotations

import atexit
import glob
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from k4s_plugin.rules.package import kernel_path

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / "k4s_plugin" / "tools"
_k4stool: Path | None = None


def k4stool() -> Path:
    """k4stool-vm (the step tool and `vm`, `-tags k4s_vm`) built with the host's Go,
    once per process."""
    global _k4stool
    if _k4stool is None:
        go = shutil.which("go")
        if not go:
            pytest.fail("`go` is not installed; .ci/run installs it (see README)")
        tmp = tempfile.mkdtemp(prefix="k4stool-")
        atexit.register(shutil.rmtree, tmp, True)  # no binary left behind in /tmp
        out = Path(tmp) / "k4stool"
        subprocess.run([go, "build", "-tags", "k4s_vm", "-o", str(out), "./k4stool"], cwd=TOOLS,
                       env={**os.environ, "CGO_ENABLED": "0"}, check=True, timeout=900)
        _k4stool = out
    return _k4stool


def version_key(version: str) -> list:
    parts = version.replace("-", ".").split(".")
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def host_kernel() -> str:
    """This machine's newest kernel image, by version order (6.1.0-10 after 6.1.0-9)."""
    images = glob.glob("/boot/vmlinuz-*")
    if not images:
        pytest.fail("no kernel in /boot: install Debian's linux-image-amd64 (.ci/run does)")
    return max(images, key=lambda p: version_key(os.path.basename(p)[len("vmlinuz-"):]))


def image_kernel(initrd: Path) -> str:
    """The kernel `pants package` wrote beside `initrd` (`<stem>.vmlinuz`), else
    this machine's (an image made by hand carries no modules)."""
    beside = initrd.with_name(kernel_path(initrd.name))
    return str(beside) if beside.is_file() else host_kernel()


def qemu_argv(initrd: Path, *, memory: int = 1024, cpus: int = 2, append: str = "",
              kernel: str | None = None) -> list[str]:
    """The amd64 QEMU command line (TCG) that boots `initrd` with the kernel's console on
    the serial port, for subprocess."""
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.fail("`qemu-system-x86_64` is not installed; .ci/run installs it (see README)")
    r = subprocess.run(
        [str(k4stool()), "vm", "-qemu", qemu, "-kernel", kernel or image_kernel(initrd),
         "-initrd", str(initrd), "-memory", str(memory), "-cpus", str(cpus), "-accel", "tcg",
         "-append", append, "-print"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return shlex.split(r.stdout.strip())
