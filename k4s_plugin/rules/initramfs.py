"""An initramfs target as the pack step sees it: its FieldSet, its busybox, and
`InitramfsRequest`, the one place that reads the FieldSet for the build (its
dependency inference is in inference.py).

`build_initramfs` gathers the image's inputs (the busybox, `dependencies` files,
`images`, kernel modules), lays them out (layout.py), packs them (cpio.py) and
checks `max_size` (budget.py).
"""

from __future__ import annotations

import os.path
from dataclasses import dataclass

from pants.core.target_types import FileSourceField, RelocatedFiles, ResourceSourceField
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.addresses import Address
from pants.engine.environment import EnvironmentName
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    FileContent,
    FileEntry,
    MergeDigests,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    DependenciesRequest,
    FieldSet,
    SourcesField,
    Targets,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules import layout
from k4s_plugin.rules.addresses import field_addresses
from k4s_plugin.rules.budget import SizeBudgetMet, SizeBudgetRequest
from k4s_plugin.rules.busybox import BusyboxBuildRequest, GoBusyboxFieldSet, busybox_of
from k4s_plugin.rules.cpio import Archive, PackInitramfsRequest
from k4s_plugin.rules.download import DownloadModulesRequest, ModuleSources
from k4s_plugin.rules.errors import LAYOUT, target_error
from k4s_plugin.rules.gobuild import BB, BusyboxBinary
from k4s_plugin.rules.imagecheck import archive_problem
from k4s_plugin.rules.kernel import LinuxKernel, LinuxKernelRequest
from k4s_plugin.rules.kmods import KernelModules, KernelModulesRequest
from k4s_plugin.rules.oci import OciImage, OciImageFieldSet
from k4s_plugin.rules.toolchain import K4sStepEnvironment
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest
from k4s_plugin.targets import (
    InitramfsBaseLayoutField,
    InitramfsBusyboxField,
    InitramfsCompressionField,
    InitramfsDependenciesField,
    InitramfsFilesMappingField,
    InitramfsImagesField,
    InitramfsInitField,
    InitramfsKernelModulesDirField,
    InitramfsKernelModulesField,
    InitramfsLinuxKernelField,
    InitramfsMaxSizeField,
    InitramfsNodeComponentsField,
    InitramfsShellField,
    InitramfsUinitArgsField,
    InitramfsUinitField,
    OciImageBusyboxField,
    OciImageTarget,
)

IMAGES_PREFIX = "__k4s_images/"
NODE_COMPONENTS_SRC = "__k4s_node/components"


@dataclass(frozen=True)
class InitramfsFieldSet(FieldSet):
    required_fields = (InitramfsBusyboxField,)

    busybox: InitramfsBusyboxField
    init: InitramfsInitField
    uinit: InitramfsUinitField
    uinit_args: InitramfsUinitArgsField
    shell: InitramfsShellField
    dependencies: InitramfsDependenciesField
    files_mapping: InitramfsFilesMappingField
    base_layout: InitramfsBaseLayoutField
    compression: InitramfsCompressionField
    kernel_modules: InitramfsKernelModulesField
    kernel_modules_dir: InitramfsKernelModulesDirField
    linux_kernel: InitramfsLinuxKernelField
    images: InitramfsImagesField
    node_components: InitramfsNodeComponentsField
    max_size: InitramfsMaxSizeField


@dataclass(frozen=True)
class InitramfsRequest:
    """What building an initramfs reads of its target, taken from its FieldSet (or a
    subclass, such as the package and run goals') by `from_field_set`. The fields
    that name targets stay fields: they are resolved relative to the target."""

    address: Address
    busybox: InitramfsBusyboxField
    init: str
    uinit: str | None
    uinit_args: tuple[str, ...]
    shell: str | None
    node_components: tuple[str, ...]
    dependencies: InitramfsDependenciesField
    files_mapping: FrozenDict[str, str]  # source path -> path in the image
    images: InitramfsImagesField
    kernel_modules: tuple[str, ...]
    kernel_modules_dir: str | None
    linux_kernel: str | None
    base_layout: bool
    compression: str
    max_size: int | None  # bytes

    @classmethod
    def from_field_set(cls, field_set: InitramfsFieldSet) -> InitramfsRequest:
        return cls(
            address=field_set.address,
            busybox=field_set.busybox,
            init=field_set.init.value,
            uinit=field_set.uinit.value,
            uinit_args=tuple(field_set.uinit_args.value or ()),
            shell=field_set.shell.value,
            node_components=tuple(field_set.node_components.value or ()),
            dependencies=field_set.dependencies,
            files_mapping=FrozenDict(field_set.files_mapping.value or {}),
            images=field_set.images,
            kernel_modules=tuple(field_set.kernel_modules.value or ()),
            kernel_modules_dir=field_set.kernel_modules_dir.value,
            linux_kernel=field_set.linux_kernel.value,
            base_layout=field_set.base_layout.value,
            compression=field_set.compression.value,
            max_size=field_set.max_size.bytes(),
        )


@rule
def initramfs_request(field_set: InitramfsFieldSet) -> InitramfsRequest:
    return InitramfsRequest.from_field_set(field_set)


@dataclass(frozen=True)
class InitramfsKernel:
    """The `linux_kernel` of an initramfs for its busybox's architecture, if it names one."""

    kernel: LinuxKernel | None


@rule(desc="Resolve the kernel of an initramfs")
async def initramfs_kernel(request: InitramfsRequest) -> InitramfsKernel:
    if not request.linux_kernel:
        return InitramfsKernel(None)
    busybox = await Get(GoBusyboxFieldSet, InitramfsRequest, request)
    return InitramfsKernel(await Get(
        LinuxKernel,
        LinuxKernelRequest(
            request.address, InitramfsLinuxKernelField.alias, request.linux_kernel, busybox.goarch.value
        ),
    ))


@rule(desc="Resolve the kernel modules of an initramfs")
async def initramfs_kernel_modules(request: InitramfsRequest, where: K4sStepEnvironment) -> KernelModules:
    # Modules from a tree of this machine (`kernel_modules_dir`) are read here,
    # wherever the steps run.
    kernel = await Get(InitramfsKernel, InitramfsRequest, request)
    return await Get(
        KernelModules,
        {
            KernelModulesRequest(
                request.address, request.kernel_modules, request.kernel_modules_dir, kernel.kernel
            ): KernelModulesRequest,
            where.local: EnvironmentName,
        },
    )


@rule(desc="Resolve the go_busybox of an initramfs")
async def initramfs_busybox(request: InitramfsRequest) -> GoBusyboxFieldSet:
    return await busybox_of(request.address, request.busybox)


@dataclass(frozen=True)
class ImageArchive:
    """One archive for `var/lib/k4s/images/<name>`: `src` in `digest`."""

    name: str
    digest: Digest
    src: str
    what: str  # for layout messages


async def _images(address: Address, addresses: list[Address], goarch: str) -> list[ImageArchive]:
    """The `images` field's archives: `oci_image` targets, built concurrently, and the
    `.tar` files of file targets (OCI image layouts or `docker save` archives, what
    containerd imports), as k3s takes any tarball in agent/images. Each is for the
    image's architecture (`goarch`): an oci_image's busybox, an archive's images."""
    origin = f"the `images` field of {address}"
    wrapped = await MultiGet(
        Get(WrappedTarget, WrappedTargetRequest(a, description_of_origin=origin)) for a in addresses
    )
    fix = "List `oci_image` targets, or `file`/`files` targets of OCI image archives (`.tar`)."
    for image_address, w in zip(addresses, wrapped):
        if not isinstance(w.target, OciImageTarget) and not w.target.has_field(SourcesField):
            raise target_error(
                address, "images", f"names {image_address}, a `{w.target.alias}` target, "
                "neither an `oci_image` nor files.", fix,
            )
    ocis = [(a, w.target) for a, w in zip(addresses, wrapped) if isinstance(w.target, OciImageTarget)]
    files = [(a, w.target) for a, w in zip(addresses, wrapped) if not isinstance(w.target, OciImageTarget)]
    oci_busyboxes = await MultiGet(
        Get(GoBusyboxFieldSet, OciImageBusyboxOf(a, t[OciImageBusyboxField])) for a, t in ocis
    )
    for (image_address, _), bb in zip(ocis, oci_busyboxes):
        if bb.goarch.value != goarch:
            raise target_error(
                address, "images", f"names {image_address}, an image for {bb.goarch.value} "
                f"(its busybox {bb.address}), but this image's busybox is for {goarch}: "
                "its containers could not run.",
                f"Carry an oci_image whose busybox has `goarch=\"{goarch}\"` (e.g. "
                "`goarch=parametrize(...)` on that busybox and the image's matching address).",
            )
    built = await MultiGet(Get(OciImage, OciImageFieldSet, OciImageFieldSet.create(t)) for _, t in ocis)
    sources = await MultiGet(Get(SourceFiles, SourceFilesRequest([t[SourcesField]])) for _, t in files)
    prefixed = await MultiGet(
        Get(Digest, AddPrefix(image.digest, f"{IMAGES_PREFIX}{a.target_name}"))
        for (a, _), image in zip(ocis, built)
    )
    out = [
        ImageArchive(
            f"{a.target_name}.tar", digest, f"{IMAGES_PREFIX}{a.target_name}/{image.path}", f"image {image.name}"
        )
        for (a, _), image, digest in zip(ocis, built, prefixed)
    ]
    for (image_address, _), src in zip(files, sources):
        not_tar = [f for f in src.files if not f.endswith(".tar")]
        if not_tar or not src.files:
            raise target_error(
                address, "images", f"names {image_address}, whose files are not OCI image "
                f"archives ending in `.tar`: {', '.join(not_tar) or 'it has none'}.", fix,
            )
        contents = await Get(DigestContents, Digest, src.snapshot.digest)
        for content in contents:
            problem = archive_problem(content.content, goarch)
            if problem:
                raise target_error(
                    address, "images", f"names {image_address}, whose file {content.path}: {problem}.",
                    "Carry OCI image archives for this architecture (`skopeo copy --override-arch "
                    f"{goarch} ... oci-archive:app.tar:app:v1`), or an `oci_image` target.",
                )
        out.extend(ImageArchive(os.path.basename(f), src.snapshot.digest, f, f"image archive {f}") for f in src.files)
    return out


@dataclass(frozen=True)
class OciImageBusyboxOf:
    address: Address
    busybox: OciImageBusyboxField


@rule(desc="Resolve the go_busybox of an oci_image")
async def oci_image_busybox(request: OciImageBusyboxOf) -> GoBusyboxFieldSet:
    return await busybox_of(request.address, request.busybox)


# Dependencies whose files go into the image: `files`, `relocated_files`, `resources`.
_FILE_SOURCES = (FileSourceField, ResourceSourceField)


def _check_dependencies(address: Address, deps: list) -> None:
    """A dependency that puts no file into the image is an error, not dropped silently
    (a `go_busybox` or `python_sources` in `dependencies` did nothing)."""
    for t in deps:
        if isinstance(t, RelocatedFiles) or any(t.has_field(f) for f in _FILE_SOURCES):
            continue
        raise target_error(
            address, InitramfsDependenciesField.alias,
            f"names {t.address}, a `{t.alias}` target, whose files would not go into the image "
            "(only `file`/`files`, `relocated_files` and `resource`/`resources` targets do).",
            "List only file targets in `dependencies` (the busybox goes in `busybox`, images in `images`).",
        )


async def _executables(digest: Digest) -> frozenset[str]:
    """The files of `digest` that are executable in the repository (mode 0755 in the image)."""
    entries = await Get(DigestEntries, Digest, digest)
    return frozenset(e.path for e in entries if isinstance(e, FileEntry) and e.is_executable)


def _check_commands(request: InitramfsRequest, commands) -> None:
    """The command names in `init`, `uinit`, `shell` and `node_components` are
    commands of the busybox; `uinit_args` has a `uinit`."""
    for alias, value in (
        (InitramfsInitField.alias, request.init),
        (InitramfsUinitField.alias, request.uinit),
        (InitramfsShellField.alias, request.shell),
    ):
        if value and value not in commands:
            raise target_error(
                request.address,
                alias,
                f"is {value!r}, which is not a command of busybox "
                f"{request.busybox.value!r} (its commands: {', '.join(sorted(commands))}).",
                f"Use one of those names, or add the command that provides "
                f"{value!r} to the busybox's `commands`.",
            )
    missing = [c for c in request.node_components if c not in commands]
    if missing:
        raise target_error(
            request.address,
            InitramfsNodeComponentsField.alias,
            f"names {', '.join(missing)}, which the busybox {request.busybox.value!r} does "
            f"not have (its commands: {', '.join(sorted(commands))}).",
            "Add the command group that provides it to the busybox's `commands` "
            "(distros/command_groups.py), or drop it from `node_components`.",
        )
    if request.uinit_args and request.uinit is None:
        raise target_error(
            request.address,
            InitramfsUinitArgsField.alias,
            "is set, but `uinit` is not.",
            "Set `uinit` to the command that takes these arguments.",
        )


@rule(desc="Lay out and pack an initramfs")
async def build_initramfs(request: InitramfsRequest, where: K4sStepEnvironment) -> Archive:
    bb_field_set = await Get(GoBusyboxFieldSet, InitramfsRequest, request)
    bb_request = BusyboxBuildRequest.from_field_set(bb_field_set)
    # The kernel's steps (fetch, index, modules) beside the busybox's first ones (the
    # step tool's build and the module download), which need nothing of the kernel: on a
    # cold build the kernel's ~20 s used to come before them. The rewrite and compile
    # come after the kernel, so a bad pin or module name still fails before them (and
    # MultiGet ends at the first error).
    download = await Get(DownloadModulesRequest, BusyboxBuildRequest, bb_request)
    kmods, _, _ = await MultiGet(
        Get(KernelModules, InitramfsRequest, request),
        Get(K4sTools, K4sToolsRequest()),
        Get(ModuleSources, DownloadModulesRequest, download),
    )
    busybox = await Get(BusyboxBinary, BusyboxBuildRequest, bb_request)
    _check_commands(request, busybox.commands)

    # The busybox's own layout.
    digests = [busybox.digest]
    components_src = None
    if request.node_components:
        content = "".join(f"{c}\n" for c in request.node_components).encode()
        digests.append(await Get(Digest, CreateDigest([FileContent(NODE_COMPONENTS_SRC, content)])))
        components_src = NODE_COMPONENTS_SRC
    records = layout.busybox_records(
        BB, busybox.commands, request.init, request.shell, request.uinit, request.uinit_args, components_src
    )

    # Extra files from `files` / `relocated_files` dependencies.
    # The busybox and `images` are inferred dependencies: not files of the image tree.
    image_addresses = await field_addresses(request.images)
    inferred = {bb_field_set.address, *image_addresses}
    deps = [t for t in await Get(Targets, DependenciesRequest(request.dependencies))
            if t.address not in inferred and t.address.maybe_convert_to_target_generator() not in inferred]
    _check_dependencies(request.address, deps)
    sources = await Get(
        SourceFiles,
        SourceFilesRequest(
            [t.get(SourcesField) for t in deps],
            for_sources_types=_FILE_SOURCES,
            enable_codegen=True,
        ),
    )
    missing = sorted(set(request.files_mapping) - set(sources.files))
    if missing:
        raise target_error(
            request.address,
            InitramfsFilesMappingField.alias,
            f"maps {', '.join(missing)}, which no `files`/`relocated_files` target in "
            f"`dependencies` provides (they provide: {', '.join(sources.files) or 'nothing'}).",
            "Add the target that owns the file to `dependencies`, or fix the source path "
            "(relative to the build root).",
        )
    records += layout.dependency_records(
        sources.files, request.files_mapping, InitramfsFilesMappingField.alias, InitramfsDependenciesField.alias,
        await _executables(sources.snapshot.digest),
    )
    digests.append(sources.snapshot.digest)

    images = await _images(request.address, image_addresses, bb_field_set.goarch.value)
    records += [layout.image_record(i.name, i.src, InitramfsImagesField.alias, i.what) for i in images]
    digests += [i.digest for i in images]

    records += layout.kernel_module_records(kmods.records, InitramfsKernelModulesField.alias)
    digests.append(kmods.digest)

    problem = layout.check_layout([r.entry() for r in records], request.base_layout)
    if problem:
        raise target_error(request.address, problem.field, problem.problem, problem.fix, LAYOUT)
    records += layout.base_layout_records(request.base_layout)

    files = await Get(Digest, MergeDigests(digests))
    archive = await Get(
        Archive,
        PackInitramfsRequest(request.address, tuple(records), files, request.base_layout, request.compression),
    )
    if request.max_size is not None:
        await Get(SizeBudgetMet, SizeBudgetRequest(
            request.address, request.max_size, archive.digest, archive.path, archive.files, archive.inputs, bb_request,
        ))
    return archive


def rules():
    return collect_rules()
