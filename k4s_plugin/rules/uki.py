"""`pants package` of a `uki`: one UEFI executable per image (a Unified Kernel Image).

1. the `uefi_stub`'s pinned systemd-boot-efi package, fetched and verified by
   kernel.py's `fetch_debian_package` (the same code as a kernel's), then
   `k4stool uefi-stub`: the stub for the busybox's architecture, checked to be a PE
   image of it;
2. `k4stool uki`: the stub with `.osrel`, `.cmdline`, `.uname`, `.initrd` (the
   initramfs's cpio) and `.linux` (its `linux_kernel`'s image) appended as PE
   sections, written as `<initramfs stem>.efi` beside the cpio.
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.addresses import Address
from pants.engine.fs import Digest, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import WrappedTarget, WrappedTargetRequest
from pants.engine.unions import UnionRule

from k4s_plugin.rules.addresses import field_address
from k4s_plugin.rules.busybox import GoBusyboxFieldSet
from k4s_plugin.rules.cpio import Archive
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.initramfs import InitramfsFieldSet, InitramfsKernel, InitramfsRequest
from k4s_plugin.rules.kernel import DebianPackage, DebianPin, named_pin
from k4s_plugin.rules.package import OutputPathsChecked, OutputPathsRequest, initramfs_stem, move_file
from k4s_plugin.rules.run import CONSOLE
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.tools import K4sKernelTool, K4sKernelToolRequest
from k4s_plugin.targets import (
    COMPRESSIONS,
    InitramfsCompressionField,
    InitramfsKernelArgsField,
    InitramfsOutputPathField,
    InitramfsTarget,
    UefiStubTarget,
    UkiInitramfsField,
    UkiKernelArgsField,
    UkiOutputPathField,
    UkiUefiStubField,
)

UKI_DIR = "__k4s_uki"


@dataclass(frozen=True)
class UkiFieldSet(PackageFieldSet):
    required_fields = (UkiInitramfsField, UkiUefiStubField)

    initramfs: UkiInitramfsField
    uefi_stub: UkiUefiStubField
    kernel_args: UkiKernelArgsField
    output_path: UkiOutputPathField


@dataclass(frozen=True)
class UefiStubRequest:
    """The stub the `uefi_stub` field of `address` names, for `goarch`."""

    address: Address
    field: UkiUefiStubField
    goarch: str


@dataclass(frozen=True)
class UefiStub:
    pin: DebianPin
    digest: Digest
    path: str


def kernel_cmdline(goarch: str, kernel_args: tuple[str, ...]) -> str:
    """The UKI's `.cmdline`: the kernel's messages on the screen and the serial line,
    the image's console (the last `console=`) on the serial line, then the initramfs's
    `kernel_args` and the uki's. Not `pants run`'s `panic=-1` (with QEMU's -no-reboot it ends the VM;
    on a machine the default, a panic that stays on the screen, is the better one)."""
    return " ".join(("console=tty0", f"console={CONSOLE[goarch]}", *kernel_args))


@rule(desc="Fetch and check a UEFI stub")
async def resolve_uefi_stub(request: UefiStubRequest) -> UefiStub:
    pin = await named_pin(
        request.address, UkiUefiStubField.alias, request.field.value, UefiStubTarget, request.goarch, "UEFI stub",
        "//distros/kernel:systemd-stub", ("E_UKI_NOT_A_STUB_TARGET", "E_UKI_STUB_ARCH"),
    )
    package, tools = await MultiGet(Get(DebianPackage, DebianPin, pin), Get(K4sKernelTool, K4sKernelToolRequest()))
    path = f"{UKI_DIR}/{pin.arch}/stub.efi"
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=pin.address,
            step="uefi-stub",
            argv=(tools.k4stool, "uefi-stub", "-deb", pin.deb, "-arch", pin.arch, "-out", path),
            input_digest=await Get(Digest, MergeDigests([tools.digest, package.digest])),
            output_files=(path,),
            description=f"Take the UEFI stub out of {pin.package} {pin.version} ({pin.arch})",
        ),
    )
    return UefiStub(pin, result.output_digest, path)


@rule(desc="Package a uki")
async def package_uki(field_set: UkiFieldSet) -> BuiltPackage:
    origin = f"the `initramfs` field of {field_set.address}"
    address = await field_address(field_set.initramfs, field_set.initramfs.value)
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(address, description_of_origin=origin))
    target = wrapped.target
    if not isinstance(target, InitramfsTarget):
        raise target_error(
            field_set.address, UkiInitramfsField.alias, f"names {address}, a `{target.alias}` target, not an "
            "`initramfs`.", "Name the `initramfs` target to boot, e.g. \":initramfs\".", code="E_UKI_NOT_INITRAMFS",
        )
    path = field_set.output_path.value or initramfs_stem(
        target[InitramfsOutputPathField].value_or_default(file_ending=COMPRESSIONS[target[InitramfsCompressionField].value])
    ) + ".efi"
    await Get(OutputPathsChecked, OutputPathsRequest(field_set.address, (path,)))
    request = InitramfsRequest.from_field_set(InitramfsFieldSet.create(target))
    busybox, kernel = await MultiGet(
        Get(GoBusyboxFieldSet, InitramfsRequest, request), Get(InitramfsKernel, InitramfsRequest, request)
    )
    goarch = busybox.goarch.value
    if kernel.kernel is None:
        raise target_error(
            address, "linux_kernel", f"is not set, and the `uki` {field_set.address} needs the kernel the image "
            "is built for (its `.linux` section).",
            f"Set `linux_kernel` of {address} to a `linux_kernel` target (this repository's: "
            "\"//distros/kernel:debian\").", code="E_UKI_NO_KERNEL",
        )
    if goarch not in CONSOLE:
        raise target_error(
            field_set.address, UkiInitramfsField.alias, f"names {address}, whose busybox is built for "
            f"GOARCH={goarch}, and k4s builds UKIs for {', '.join(CONSOLE)}.",
            "Name an initramfs of one of those architectures.", code="E_UKI_STUB_ARCH",
        )
    # The stub first: a wrong pin fails before the image is built.
    stub, tools = await MultiGet(
        Get(UefiStub, UefiStubRequest(field_set.address, field_set.uefi_stub, goarch)),
        Get(K4sKernelTool, K4sKernelToolRequest()),
    )
    archive = await Get(Archive, InitramfsRequest, request)
    k = kernel.kernel
    out = f"{UKI_DIR}/{goarch}/image.efi"
    cmdline = kernel_cmdline(
        goarch, (*(target[InitramfsKernelArgsField].value or ()), *(field_set.kernel_args.value or ()))
    )
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=field_set.address,
            step="uki",
            argv=(
                tools.k4stool, "uki", "-stub", stub.path, "-arch", goarch, "-linux", k.image_path,
                "-initrd", archive.path, "-cmdline", cmdline, "-uname", k.release, "-name", address.spec,
                "-out", out,
            ),
            input_digest=await Get(Digest, MergeDigests([tools.digest, stub.digest, k.image, archive.digest])),
            output_files=(out,),
            description=f"Assemble the UKI of {address}",
        ),
    )
    digest = await move_file(result.output_digest, out, path, executable=False)
    return BuiltPackage(digest, (BuiltPackageArtifact(path, extra_log_lines=(
        f"UKI: {stub.pin.package} {stub.pin.version}'s stub, kernel {k.release}, cmdline: {cmdline}",
    )),))


def rules():
    return (*collect_rules(), UnionRule(PackageFieldSet, UkiFieldSet))
