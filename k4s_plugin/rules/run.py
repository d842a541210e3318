"""`pants run` of an initramfs: boot it in QEMU, serial console on the terminal."""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass

from pants.base.build_root import BuildRoot
from pants.core.goals.run import RunFieldSet, RunInSandboxBehavior, RunRequest
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.core.util_rules.system_binaries import (
    BinaryPathRequest,
    BinaryPaths,
    BinaryPathTest,
)
from pants.engine.addresses import Address
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import SourcesField, WrappedTarget, WrappedTargetRequest

from k4s_plugin.rules.addresses import field_address
from k4s_plugin.rules.busybox import GoBusyboxFieldSet
from k4s_plugin.rules.cpio import Archive
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.initramfs import InitramfsFieldSet, InitramfsKernel, InitramfsRequest
from k4s_plugin.rules.tools import K4sVmTool, K4sVmToolRequest
from k4s_plugin.targets import (
    InitramfsClusterIdentityField,
    InitramfsKernelArgsField,
    InitramfsKernelField,
    InitramfsVmAccelField,
    InitramfsVmCpusField,
    InitramfsVmMemoryField,
    InitramfsVmPortForwardsField,
)

# goarch -> (QEMU binary, machine arguments)
QEMU = {
    "amd64": ("qemu-system-x86_64", ("-machine", "q35")),
    "arm64": ("qemu-system-aarch64", ("-machine", "virt", "-cpu", "max")),
}
# The kernel's serial console per architecture: the PC's 16550 UART, the virt
# machine's PL011.
CONSOLE = {"amd64": "ttyS0", "arm64": "ttyAMA0"}
# KVM runs only the host's own architecture.
HOST_GOARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), "")

# The guest's kube-apiserver port: the admin kubeconfig of `cluster_identity` points at
# the host port forwarded to it.
API_PORT = 6443


def identity_dir_name(address: Address) -> str:
    """`.k4s/clusters/<this>`: the target address as one path element,
    `distros/kubesolo-like:initramfs` -> `distros.kubesolo-like.initramfs`."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", ".", address.spec.lstrip("/")).strip(".")
    return slug or "root"


@dataclass(frozen=True)
class RunInitramfsFieldSet(InitramfsFieldSet, RunFieldSet):
    run_in_sandbox_behavior = RunInSandboxBehavior.NOT_SUPPORTED

    kernel: InitramfsKernelField
    vm_memory: InitramfsVmMemoryField
    vm_cpus: InitramfsVmCpusField
    vm_port_forwards: InitramfsVmPortForwardsField
    kernel_args: InitramfsKernelArgsField
    vm_accel: InitramfsVmAccelField
    cluster_identity: InitramfsClusterIdentityField


@rule(desc="Boot an initramfs in QEMU")
async def run_initramfs(field_set: RunInitramfsFieldSet, build_root: BuildRoot) -> RunRequest:
    request = InitramfsRequest.from_field_set(field_set)
    tools, archive = await MultiGet(
        Get(K4sVmTool, K4sVmToolRequest()), Get(Archive, InitramfsRequest, request)
    )
    busybox = await Get(GoBusyboxFieldSet, InitramfsRequest, request)
    goarch = busybox.goarch.value
    if goarch not in QEMU:
        raise target_error(
            field_set.address, "busybox", f"is built for GOARCH={goarch}, which `pants run` "
            "cannot boot.", f"Use a busybox for one of: {', '.join(QEMU)}."
        )
    qemu_name, machine = QEMU[goarch]
    qemu = await Get(
        BinaryPaths,
        BinaryPathRequest(
            binary_name=qemu_name,
            search_path=("/usr/bin", "/usr/local/bin", "/bin"),
            test=BinaryPathTest(args=["--version"]),
        ),
    )
    if not qemu.first_path:
        raise target_error(
            field_set.address, "busybox", f"is a {goarch} image and `{qemu_name}` is not "
            "installed.", "Install QEMU (Debian: `apt-get install qemu-system-x86` for amd64, "
            "`qemu-system-arm` for arm64).",
        )

    digests = [tools.digest, archive.digest]
    kernel_args: tuple[str, ...] = ()
    if field_set.kernel.value:
        address = await field_address(field_set.kernel, field_set.kernel.value)
        wrapped = await Get(
            WrappedTarget,
            WrappedTargetRequest(address, description_of_origin=f"the `kernel` field of {field_set.address}"),
        )
        sources = await Get(SourceFiles, SourceFilesRequest([wrapped.target.get(SourcesField)]))
        if len(sources.files) != 1:
            raise target_error(
                field_set.address, "kernel", f"points at {address}, which has "
                f"{len(sources.files)} files.", "Point it at a `file` target holding one kernel image.",
            )
        digests.append(sources.snapshot.digest)
        kernel_args = ("-kernel", "{chroot}/" + sources.files[0])
    else:
        # The kernel the image was built for, as `pants package` writes it beside the image.
        kernel = (await Get(InitramfsKernel, InitramfsRequest, request)).kernel
        if kernel is None:
            raise target_error(
                field_set.address, "linux_kernel", "is not set, and neither is `kernel`: "
                "`pants run` has no kernel to boot (k4s never takes this machine's).",
                "Set `linux_kernel` to a `linux_kernel` target (this repository's: "
                "\"//distros/kernel:debian\"), or `kernel` to a `file` target with a kernel image.",
                code="E_KERNEL_NONE",
            )
        digests.append(kernel.image)
        kernel_args = ("-kernel", "{chroot}/" + kernel.image_path)

    accel = field_set.vm_accel.value
    if accel == "auto" and goarch != HOST_GOARCH:
        accel = "tcg"  # no KVM probe for a foreign architecture
    digest = await Get(Digest, MergeDigests(digests))
    args = [
        "{chroot}/" + tools.k4stool, "vm",
        "-qemu", qemu.first_path.path,
        "-initrd", "{chroot}/" + archive.path,
        "-memory", str(field_set.vm_memory.value),
        "-cpus", str(field_set.vm_cpus.value),
        "-accel", accel,
        "-console", CONSOLE[goarch],
        *kernel_args,
        *(a for m in machine for a in ("-machine-arg", m)),
        *(a for f in field_set.vm_port_forwards.value or () for a in ("-forward", f)),
        "-append", " ".join(field_set.kernel_args.value or ()),
        "-api-port", str(API_PORT),
    ]
    if field_set.cluster_identity.value:
        # Outside Pants' caches and the sandbox (k4stool makes it 0700): the CA and the
        # admin kubeconfig outlive this run, and no private key enters a digest.
        identity = f"{build_root.path}/.k4s/clusters/{identity_dir_name(field_set.address)}"
        args += ["-identity", identity, "-target", field_set.address.spec]
    return RunRequest(digest=digest, args=args)


def rules():
    return (*collect_rules(), *RunInitramfsFieldSet.rules())
