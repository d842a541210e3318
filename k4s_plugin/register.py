"""k4s: Kubernetes + u-root utilities, as a Pants plugin.

Target types `go_busybox` and `initramfs`; rules for module download, gobusybox
rewrite, compile, and cpio, each a cached Pants Process.
"""

from pants.backend.go.util_rules import goroot

from k4s_plugin.rules import budget, compile, cpio, go, kmods, modules, oci, package, rewrite, run, sbom, tools
from k4s_plugin.targets import GoBusyboxTarget, InitramfsTarget, OciImageTarget


def target_types():
    return [GoBusyboxTarget, InitramfsTarget, OciImageTarget]


def rules():
    return [
        *goroot.rules(),
        *go.rules(),
        *tools.rules(),
        *modules.rules(),
        *rewrite.rules(),
        *compile.rules(),
        *cpio.rules(),
        *budget.rules(),
        *oci.rules(),
        *package.rules(),
        *sbom.rules(),
        *run.rules(),
        *kmods.rules(),
    ]
