"""k4s: Kubernetes + u-root utilities, as a Pants plugin.

Target types `go_busybox`, `initramfs`, `oci_image`, `linux_kernel`, `uefi_stub` and `uki`; rules for module
download, gobusybox rewrite, compile (gobuild.py), cpio, OCI image and kernel, each step
a cached Pants Process. The module map: ARCHITECTURE.md.
"""

from k4s_plugin.rules import (
    budget,
    busybox,
    cpio,
    download,
    gobuild,
    inference,
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
    uki,
)
from k4s_plugin.targets import (
    GoBusyboxTarget,
    InitramfsTarget,
    LinuxKernelTarget,
    OciImageTarget,
    UefiStubTarget,
    UkiTarget,
)


def target_types():
    return [GoBusyboxTarget, InitramfsTarget, OciImageTarget, LinuxKernelTarget, UefiStubTarget, UkiTarget]


def rules():
    return [
        *toolchain.rules(),
        *store.rules(),
        *steps.rules(),
        *tools.rules(),
        *busybox.rules(),
        *inference.rules(),
        *download.rules(),
        *rewrite.rules(),
        *gobuild.rules(),
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
        *uki.rules(),
    ]
