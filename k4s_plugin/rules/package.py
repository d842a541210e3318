"""`pants package` for go_busybox (the `bb` binary) and initramfs (the cpio)."""

from __future__ import annotations

import os.path
from dataclasses import dataclass

from pants.base.build_root import BuildRoot
from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.core.util_rules.distdir import DistDir
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths
from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, DigestEntries, FileEntry, MergeDigests
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.unions import UnionRule

from k4s_plugin.rules.busybox import BusyboxBuildRequest, GoBusyboxFieldSet
from k4s_plugin.rules.cpio import Archive
from k4s_plugin.rules.errors import OUTPUT, target_error
from k4s_plugin.rules.gobuild import BB, BusyboxBinary
from k4s_plugin.rules.initramfs import InitramfsFieldSet, InitramfsKernel, InitramfsRequest
from k4s_plugin.rules.oci import OciImage, OciImageFieldSet, OciImageRequest
from k4s_plugin.rules.sbom import SBOM_SUFFIX, Sbom, SbomRequest
from k4s_plugin.targets import (
    COMPRESSIONS,
    GoBusyboxOutputPathField,
    InitramfsOutputPathField,
    OciImageOutputPathField,
)


@dataclass(frozen=True)
class PackageGoBusyboxFieldSet(GoBusyboxFieldSet, PackageFieldSet):
    output_path: GoBusyboxOutputPathField


@dataclass(frozen=True)
class PackageInitramfsFieldSet(InitramfsFieldSet, PackageFieldSet):
    output_path: InitramfsOutputPathField


async def move_file(digest: Digest, src: str, dst: str, executable: bool) -> Digest:
    entries = await Get(DigestEntries, Digest, digest)
    entry = next(e for e in entries if isinstance(e, FileEntry) and e.path == src)
    return await Get(
        Digest, CreateDigest([FileEntry(dst, entry.file_digest, is_executable=executable)])
    )


@dataclass(frozen=True)
class OutputPathsRequest:
    """Where `package` will write `paths` (under dist/) for `address`'s `output_path`."""

    address: Address
    paths: tuple[str, ...]


@dataclass(frozen=True)
class OutputPathsChecked:
    pass


@rule(desc="Check that package outputs stay under dist/")
async def check_output_paths(request: OutputPathsRequest, buildroot: BuildRoot, distdir: DistDir) -> OutputPathsChecked:
    """No output is written through a link: Pants writes `dist/<output_path>` following
    any symlink on the way (`dist/x -> /elsewhere` put the binary outside the repository).
    The path is resolved on this machine at every run (a link may appear at any time)."""
    paths = await Get(BinaryPaths, BinaryPathRequest(binary_name="realpath", search_path=("/usr/bin", "/bin")))
    if not paths.first_path:
        raise target_error(request.address, "output_path", "cannot be checked: `realpath` is not in /usr/bin or /bin.",
                           "Install coreutils.", OUTPUT)
    dist = os.path.join(buildroot.path, str(distdir.relpath))
    result = await Get(
        FallibleProcessResult,
        Process(
            (paths.first_path.path, "-m", "--", dist, *(os.path.join(dist, p) for p in request.paths)),
            description=f"Check the output paths of {request.address}",
            cache_scope=ProcessCacheScope.PER_SESSION,
        ),
    )
    root, *resolved = result.stdout.decode(errors="replace").splitlines() or [""]
    for path, real in zip(request.paths, resolved + [""] * len(request.paths)):
        if result.exit_code != 0 or real != os.path.join(root, path):
            raise target_error(
                request.address, "output_path",
                f"is {path!r}, but {os.path.join(str(distdir.relpath), path)} resolves to "
                f"{real or '(unresolvable)'}: a link on the way would write the output outside dist/.",
                f"Remove the link under {distdir.relpath}/, or set `output_path` to another path.",
                OUTPUT,
            )
    return OutputPathsChecked()


@rule(desc="Package a go_busybox")
async def package_go_busybox(field_set: PackageGoBusyboxFieldSet) -> BuiltPackage:
    path = field_set.output_path.value_or_default(file_ending=None)
    await Get(OutputPathsChecked, OutputPathsRequest(field_set.address, (path,)))
    busybox = await Get(BusyboxBinary, BusyboxBuildRequest, BusyboxBuildRequest.from_field_set(field_set))
    digest = await move_file(busybox.digest, BB, path, executable=True)
    return BuiltPackage(
        digest,
        (BuiltPackageArtifact(path, extra_log_lines=(f"{len(busybox.commands)} commands",)),),
    )


def initramfs_stem(output_path: str) -> str:
    """An image's path without its ending: `initramfs.cpio.xz` -> `initramfs`, for the
    files beside it (the kernel, the UKI)."""
    for ending in sorted(set(COMPRESSIONS.values()), key=len, reverse=True):
        if output_path.endswith("." + ending):
            return output_path[: -len(ending) - 1]
    return output_path


def kernel_path(output_path: str) -> str:
    """Where the kernel goes beside an image: `initramfs.cpio.xz` -> `initramfs.vmlinuz`."""
    return initramfs_stem(output_path) + ".vmlinuz"


@rule(desc="Package an initramfs")
async def package_initramfs(field_set: PackageInitramfsFieldSet) -> BuiltPackage:
    request = InitramfsRequest.from_field_set(field_set)
    path = field_set.output_path.value_or_default(
        file_ending=COMPRESSIONS[field_set.compression.value]
    )
    await Get(
        OutputPathsChecked,
        OutputPathsRequest(field_set.address, (path, path + SBOM_SUFFIX, kernel_path(path))),
    )
    archive, busybox, kernel = await MultiGet(
        Get(Archive, InitramfsRequest, request),
        Get(GoBusyboxFieldSet, InitramfsRequest, request),
        Get(InitramfsKernel, InitramfsRequest, request),
    )
    sbom = await Get(
        Sbom,
        SbomRequest(
            field_set.address, BusyboxBuildRequest.from_field_set(busybox), archive, request.compression,
            kernel.kernel,
        ),
    )
    image = await move_file(archive.digest, archive.path, path, executable=False)
    sbom_file = await move_file(sbom.digest, sbom.path, path + SBOM_SUFFIX, executable=False)
    digests = [image, sbom_file]
    artifacts = [
        BuiltPackageArtifact(path),
        BuiltPackageArtifact(path + SBOM_SUFFIX, extra_log_lines=("SBOM (CycloneDX 1.5)",)),
    ]
    if kernel.kernel:
        # The kernel the image was built for: `pants run` boots this pair.
        k = kernel.kernel
        digests.append(await move_file(k.image, k.image_path, kernel_path(path), executable=False))
        artifacts.append(BuiltPackageArtifact(
            kernel_path(path), extra_log_lines=(f"kernel {k.release} ({k.pin.package} {k.pin.version}, {k.pin.arch})",),
        ))
    digest = await Get(Digest, MergeDigests(digests))
    return BuiltPackage(digest, tuple(artifacts))


@dataclass(frozen=True)
class PackageOciImageFieldSet(OciImageFieldSet, PackageFieldSet):
    output_path: OciImageOutputPathField


@rule(desc="Package an oci_image")
async def package_oci_image(field_set: PackageOciImageFieldSet) -> BuiltPackage:
    path = field_set.output_path.value_or_default(file_ending="tar")
    await Get(OutputPathsChecked, OutputPathsRequest(field_set.address, (path,)))
    image = await Get(OciImage, OciImageRequest, OciImageRequest.from_field_set(field_set))
    digest = await move_file(image.digest, image.path, path, executable=False)
    return BuiltPackage(digest, (BuiltPackageArtifact(path, extra_log_lines=(f"image {image.name}",)),))


def rules():
    return (
        *collect_rules(),
        UnionRule(PackageFieldSet, PackageGoBusyboxFieldSet),
        UnionRule(PackageFieldSet, PackageInitramfsFieldSet),
        UnionRule(PackageFieldSet, PackageOciImageFieldSet),
    )
