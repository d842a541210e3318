"""k4s: Kubernetes + u-root utilities, as a Pants plugin.

Target types `go_busybox` and `initramfs`; rules for module download, gobusybox
rewrite, compile, and cpio, each a cached Pants Process.
"""

from k4s_plugin.rules import (
    budget,
    busybox,
    compile,
    cpio,
    download,
    initramfs,
    kernel,
    kmods,
    oci,
    package,
    rewrite,
    run,
    sbom,
    steps,
    store,
    tidy,
    toolchain,
    tools,
)
from k4s_plugin.targets import GoBusyboxTarget, InitramfsTarget, LinuxKernelTarget, OciImageTarget


def target_types():
    return [GoBusyboxTarget, InitramfsTarget, OciImageTarget, LinuxKernelTarget]


def rules():
    return [
        *toolchain.rules(),
        *store.rules(),
        *steps.rules(),
        *tools.rules(),
        *busybox.rules(),
        *download.rules(),
        *rewrite.rules(),
        *compile.rules(),
        *initramfs.rules(),
        *cpio.rules(),
        *budget.rules(),
        *oci.rules(),
        *package.rules(),
        *sbom.rules(),
        *run.rules(),
        *kernel.rules(),
        *kmods.rules(),
        *tidy.rules(),
    ]
