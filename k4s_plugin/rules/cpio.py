"""Step 4: lay out an initramfs and pack it into a reproducible newc cpio.

The layout (which paths, links, modes) is decided here, in the rule, and written as
a manifest; k4stool writes the archive from it (with u-root's base layout from
mkuimage, and u-root's cpio library), then compresses it.
"""

from __future__ import annotations

import json
import os.path
from dataclasses import dataclass

from pants.core.target_types import FileSourceField
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths, BinaryPathTest
from pants.engine.addresses import Address
from pants.engine.fs import EMPTY_DIGEST, AddPrefix, CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.engine.target import (
    DependenciesRequest,
    FieldSet,
    InferDependenciesRequest,
    InferredDependencies,
    SourcesField,
    Targets,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules.addresses import field_address
from k4s_plugin.rules.budget import SizeBudgetMet, SizeBudgetRequest
from k4s_plugin.rules.busybox import BusyboxBuildRequest, GoBusyboxFieldSet, busybox_of
from k4s_plugin.rules.compile import BB, BusyboxBinary
from k4s_plugin.rules.kmods import KernelModules, KernelModulesRequest
from k4s_plugin.rules.layout import BUSYBOX, LayoutEntry, check_layout
from k4s_plugin.rules.oci import OciImage, OciImageFieldSet
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest
from k4s_plugin.targets import (
    COMPRESSIONS,
    InitramfsBaseLayoutField,
    InitramfsBusyboxField,
    InitramfsCompressionField,
    InitramfsDependenciesField,
    InitramfsFilesMappingField,
    InitramfsImagesField,
    InitramfsNodeComponentsField,
    InitramfsInitField,
    InitramfsKernelModulesDirField,
    InitramfsKernelModulesField,
    InitramfsMaxSizeField,
    InitramfsShellField,
    InitramfsUinitArgsField,
    InitramfsUinitField,
    OciImageTarget,
)

MANIFEST = "__k4s_manifest.json"
# Where the node finds OCI image archives to import (k4s-node, images.go).
IMAGES_DIR = "var/lib/k4s/images"
IMAGES_PREFIX = "__k4s_images/"
# The node supervisor's component list (`node_components`; k4s-node, main.go).
NODE_COMPONENTS = "etc/k4s/components"
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
    images: InitramfsImagesField
    node_components: InitramfsNodeComponentsField
    max_size: InitramfsMaxSizeField


@dataclass(frozen=True)
class Archive:
    """A digest holding one file, `path`: the (compressed) cpio. `files` are the regular
    files laid into it, (path in the image, path in `inputs`), for the SBOM."""

    digest: Digest
    path: str
    files: tuple[tuple[str, str], ...] = ()
    inputs: Digest = EMPTY_DIGEST


def archive_name(compression: str) -> str:
    return f"initramfs.{COMPRESSIONS[compression]}"


@dataclass(frozen=True)
class InitramfsBusyboxDependencyFieldSet(FieldSet):
    required_fields = (InitramfsBusyboxField,)

    busybox: InitramfsBusyboxField


class InferInitramfsBusyboxDependency(InferDependenciesRequest):
    infer_from = InitramfsBusyboxDependencyFieldSet


@rule(desc="Infer the go_busybox dependency of an initramfs")
async def infer_initramfs_busybox(request: InferInitramfsBusyboxDependency) -> InferredDependencies:
    """The `busybox` field is a dependency, so `pants dependencies`, `--changed-since`
    and `peek` see it."""
    field = request.field_set.busybox
    return InferredDependencies([await field_address(field, field.value)])


@rule(desc="Resolve the go_busybox of an initramfs")
async def initramfs_busybox(field_set: InitramfsFieldSet) -> GoBusyboxFieldSet:
    return await busybox_of(field_set.address, field_set.busybox)


@dataclass(frozen=True)
class InitramfsImagesDependencyFieldSet(FieldSet):
    required_fields = (InitramfsImagesField,)

    images: InitramfsImagesField


class InferInitramfsImagesDependency(InferDependenciesRequest):
    infer_from = InitramfsImagesDependencyFieldSet


async def _image_addresses(field: InitramfsImagesField) -> list[Address]:
    return [await field_address(field, v) for v in field.value or ()]


@rule(desc="Infer the oci_image dependencies of an initramfs")
async def infer_initramfs_images(request: InferInitramfsImagesDependency) -> InferredDependencies:
    return InferredDependencies(await _image_addresses(request.field_set.images))


@dataclass(frozen=True)
class ImageArchive:
    """One archive for `var/lib/k4s/images/<name>`: `src` in `digest`."""

    name: str
    digest: Digest
    src: str
    what: str  # for layout messages


async def _images(field_set: InitramfsFieldSet, addresses: list[Address]) -> list[ImageArchive]:
    """The `images` field's archives: `oci_image` targets, built concurrently, and the
    `.tar` files of file targets (OCI image layouts or `docker save` archives, what
    containerd imports), as k3s takes any tarball in agent/images."""
    origin = f"the `images` field of {field_set.address}"
    wrapped = await MultiGet(Get(WrappedTarget, WrappedTargetRequest(a, description_of_origin=origin)) for a in addresses)
    fix = "List `oci_image` targets, or `file`/`files` targets of OCI image archives (`.tar`)."
    for address, w in zip(addresses, wrapped):
        if not isinstance(w.target, OciImageTarget) and not w.target.has_field(SourcesField):
            raise target_error(
                field_set.address, "images", f"names {address}, a `{w.target.alias}` target, "
                "neither an `oci_image` nor files.", fix,
            )
    ocis = [(a, w.target) for a, w in zip(addresses, wrapped) if isinstance(w.target, OciImageTarget)]
    files = [(a, w.target) for a, w in zip(addresses, wrapped) if not isinstance(w.target, OciImageTarget)]
    built = await MultiGet(Get(OciImage, OciImageFieldSet, OciImageFieldSet.create(t)) for _, t in ocis)
    sources = await MultiGet(Get(SourceFiles, SourceFilesRequest([t[SourcesField]])) for _, t in files)
    prefixed = await MultiGet(
        Get(Digest, AddPrefix(image.digest, f"{IMAGES_PREFIX}{address.target_name}"))
        for (address, _), image in zip(ocis, built)
    )
    out = [
        ImageArchive(f"{address.target_name}.tar", digest, f"{IMAGES_PREFIX}{address.target_name}/{image.path}", f"image {image.name}")
        for (address, _), image, digest in zip(ocis, built, prefixed)
    ]
    for (address, _), src in zip(files, sources):
        not_tar = [f for f in src.files if not f.endswith(".tar")]
        if not_tar or not src.files:
            raise target_error(
                field_set.address, "images", f"names {address}, whose files are not OCI image "
                f"archives ending in `.tar`: {', '.join(not_tar) or 'it has none'}.", fix,
            )
        out.extend(ImageArchive(os.path.basename(f), src.snapshot.digest, f, f"image archive {f}") for f in src.files)
    return out


def _check_command(field_set: InitramfsFieldSet, field, commands) -> None:
    if field.value and field.value not in commands:
        raise target_error(
            field_set.address,
            field.alias,
            f"is {field.value!r}, which is not a command of busybox "
            f"{field_set.busybox.value!r} (its commands: {', '.join(sorted(commands))}).",
            f"Use one of those names, or add the command that provides "
            f"{field.value!r} to the busybox's `commands`.",
        )


async def _xz(address: Address) -> tuple[tuple[str, ...], FrozenDict[str, str]]:
    """xz-utils' `xz` for `compression="xz"`: the k4stool arguments, and its version in
    the environment so that it is part of the step's cache key."""
    paths = await Get(
        BinaryPaths,
        BinaryPathRequest(
            binary_name="xz", search_path=("/usr/bin", "/bin", "/usr/local/bin"),
            test=BinaryPathTest(args=["--version"], fingerprint_stdout=True),
        ),
    )
    if not paths.first_path:
        raise target_error(
            address, "compression", "is 'xz', which k4s packs with xz-utils' `xz` (23% smaller "
            "images than a pure-Go encoder), and `xz` is not in /usr/bin, /bin or /usr/local/bin.",
            "Install xz-utils (Debian: `apt-get install xz-utils`), or use `zstd` or `gzip`.",
        )
    xz = paths.first_path
    return ("-xz", xz.path), FrozenDict({"K4S_XZ_FINGERPRINT": xz.fingerprint})


def _what(record: dict) -> str:
    if record["type"] == "symlink":
        return f"the link {record['path']} -> {record['target']}"
    return f"the busybox's {record['path']}"


@rule(desc="Lay out and pack an initramfs")
async def build_initramfs(field_set: InitramfsFieldSet) -> Archive:
    bb_field_set = await Get(GoBusyboxFieldSet, InitramfsFieldSet, field_set)
    busybox, tools = await MultiGet(
        Get(BusyboxBinary, GoBusyboxFieldSet, bb_field_set), Get(K4sTools, K4sToolsRequest())
    )
    commands = busybox.commands

    for field in (field_set.init, field_set.uinit, field_set.shell):
        _check_command(field_set, field, commands)
    missing = [c for c in field_set.node_components.value or () if c not in commands]
    if missing:
        raise target_error(
            field_set.address,
            field_set.node_components.alias,
            f"names {', '.join(missing)}, which the busybox {field_set.busybox.value!r} does "
            f"not have (its commands: {', '.join(sorted(commands))}).",
            "Add the command group that provides it to the busybox's `commands` "
            "(distros/command_groups.py), or drop it from `node_components`.",
        )
    if field_set.uinit_args.value and field_set.uinit.value is None:
        raise target_error(
            field_set.address,
            field_set.uinit_args.alias,
            "is set, but `uinit` is not.",
            "Set `uinit` to the command that takes these arguments.",
        )

    records: list[dict] = [{"path": "bbin/bb", "type": "file", "src": BB, "mode": 0o755}]
    records += [{"path": f"bbin/{name}", "type": "symlink", "target": "bb"} for name in commands if name != "bb"]
    records.append({"path": "init", "type": "symlink", "target": f"bbin/{field_set.init.value}"})
    if field_set.shell.value:
        for link in ("bin/sh", "bin/defaultsh"):
            records.append({"path": link, "type": "symlink", "target": f"../bbin/{field_set.shell.value}"})
    if field_set.uinit.value is not None:
        records.append({"path": "bin/uinit", "type": "symlink", "target": f"../bbin/{field_set.uinit.value}"})
        if field_set.uinit_args.value:
            records.append(
                {"path": "etc/uinit.flags", "type": "argv", "argv": list(field_set.uinit_args.value), "mode": 0o644}
            )
    extra_digests = []
    if field_set.node_components.value:
        content = "".join(f"{c}\n" for c in field_set.node_components.value).encode()
        extra_digests.append(await Get(Digest, CreateDigest([FileContent(NODE_COMPONENTS_SRC, content)])))
        records.append({"path": NODE_COMPONENTS, "type": "file", "src": NODE_COMPONENTS_SRC, "mode": 0o644})
    entries = [LayoutEntry(r["path"], "file" if r["type"] in ("file", "argv") else r["type"], BUSYBOX, _what(r)) for r in records]

    # Extra files from `files` / `relocated_files` dependencies.
    deps = await Get(Targets, DependenciesRequest(field_set.dependencies))
    sources = await Get(
        SourceFiles,
        SourceFilesRequest(
            [t.get(SourcesField) for t in deps],
            for_sources_types=(FileSourceField,),
            enable_codegen=True,
        ),
    )
    mapping = dict(field_set.files_mapping.value or {})
    missing = sorted(set(mapping) - set(sources.files))
    if missing:
        raise target_error(
            field_set.address,
            field_set.files_mapping.alias,
            f"maps {', '.join(missing)}, which no `files`/`relocated_files` target in "
            f"`dependencies` provides (they provide: {', '.join(sources.files) or 'nothing'}).",
            "Add the target that owns the file to `dependencies`, or fix the source path "
            "(relative to the build root).",
        )
    for src in sources.files:
        dst = os.path.normpath(mapping.get(src, src))
        field = field_set.files_mapping.alias if src in mapping else field_set.dependencies.alias
        entries.append(LayoutEntry(dst, "file", field, src))
        records.append({"path": dst, "type": "file", "src": src, "mode": 0o644})

    images = await _images(field_set, await _image_addresses(field_set.images))
    for image in images:
        dst = f"{IMAGES_DIR}/{image.name}"
        entries.append(LayoutEntry(dst, "file", field_set.images.alias, image.what))
        records.append({"path": dst, "type": "file", "src": image.src, "mode": 0o644})
    image_digests = [image.digest for image in images]

    kmods = await Get(
        KernelModules,
        KernelModulesRequest(
            field_set.address, tuple(field_set.kernel_modules.value or ()), field_set.kernel_modules_dir.value
        ),
    )
    for dst, src in kmods.records:
        entries.append(LayoutEntry(dst, "file", field_set.kernel_modules.alias, f"module file {os.path.basename(dst)}"))
        records.append({"path": dst, "type": "file", "src": src, "mode": 0o644})

    problem = check_layout(entries, field_set.base_layout.value)
    if problem:
        raise target_error(field_set.address, problem.field, problem.problem, problem.fix)

    manifest = {
        "base_layout": field_set.base_layout.value,
        "compression": field_set.compression.value,
        "records": sorted(records, key=lambda r: r["path"]),
    }
    manifest_digest = await Get(
        Digest,
        CreateDigest([FileContent(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())]),
    )
    input_digest = await Get(
        Digest,
        MergeDigests([tools.digest, busybox.digest, sources.snapshot.digest, kmods.digest, manifest_digest, *image_digests, *extra_digests]),
    )
    out = archive_name(field_set.compression.value)
    xz_args, xz_env = await _xz(field_set.address) if field_set.compression.value == "xz" else ((), FrozenDict())
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=field_set.address,
            step="cpio",
            argv=(tools.k4stool, "cpio", "-manifest", MANIFEST, "-out", f"__k4s_archive/{out}", *xz_args),
            input_digest=input_digest,
            output_files=(f"__k4s_archive/{out}",),
            description=f"Pack {field_set.address} ({len(records)} entries, {field_set.compression.value})",
            extra_env=xz_env,
        ),
    )
    files = tuple(sorted((r["path"], r["src"]) for r in records if r["type"] == "file"))
    archive = Archive(result.output_digest, f"__k4s_archive/{out}", files, input_digest)
    if field_set.max_size.value is not None:
        await Get(SizeBudgetMet, SizeBudgetRequest(
            field_set.address, field_set.max_size.bytes(), archive.digest, archive.path, files, input_digest, BusyboxBuildRequest.from_field_set(bb_field_set),
        ))
    return archive


def rules():
    return (
        *collect_rules(),
        UnionRule(InferDependenciesRequest, InferInitramfsBusyboxDependency),
        UnionRule(InferDependenciesRequest, InferInitramfsImagesDependency),
    )
