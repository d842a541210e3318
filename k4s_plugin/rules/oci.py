"""An OCI image archive from a go_busybox (`oci_image`): the layer's entries are
decided here and written as a manifest; k4stool writes the layout tar from it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.core.target_types import FileSourceField, ResourceSourceField
from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, DigestEntries, FileContent, FileEntry, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import DependenciesRequest, FieldSet, SourcesField, Targets
from pants.util.frozendict import FrozenDict

from k4s_plugin.grammar import SETUID_BITS
from k4s_plugin.rules.busybox import GoBusyboxFieldSet, busybox_of
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.gobuild import BB, BusyboxBinary
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest
from k4s_plugin.targets import (
    OciImageBusyboxField,
    OciImageCmdField,
    OciImageCommandLinksField,
    OciImageDependenciesField,
    OciImageEntrypointField,
    OciImageEnvField,
    OciImageFileModesField,
    OciImageFilesField,
    OciImageNameField,
    OciImageUserField,
)

OCI_MANIFEST = "__k4s_oci.json"
OCI_TAR = "__k4s_oci/image.tar"
# The archive before `oci-config` sets its config's User (images with `user`).
OCI_TAR_NO_USER = "__k4s_oci/image-layer.tar"


@dataclass(frozen=True)
class OciImageFieldSet(FieldSet):
    required_fields = (OciImageBusyboxField,)

    busybox: OciImageBusyboxField
    image_name: OciImageNameField
    entrypoint: OciImageEntrypointField
    cmd: OciImageCmdField
    env: OciImageEnvField
    command_links: OciImageCommandLinksField
    user: OciImageUserField
    dependencies: OciImageDependenciesField
    files: OciImageFilesField
    file_modes: OciImageFileModesField


@dataclass(frozen=True)
class OciImage:
    """A digest holding one file, `path`: the OCI image layout tar of image `name`."""

    digest: Digest
    path: str
    name: str


@dataclass(frozen=True)
class OciImageRequest:
    address: Address
    busybox: OciImageBusyboxField  # resolved by busybox_of
    name: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]
    command_links: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    dependencies: OciImageDependenciesField | None = None
    files: FrozenDict[str, str] = FrozenDict()  # path in the image -> source path
    file_modes: FrozenDict[str, str] = FrozenDict()  # path in the image -> octal mode

    @classmethod
    def from_field_set(cls, field_set: OciImageFieldSet) -> OciImageRequest:
        return cls(
            address=field_set.address,
            busybox=field_set.busybox,
            name=field_set.image_name.value_or_default(field_set.address),
            entrypoint=tuple(field_set.entrypoint.value or ()),
            cmd=tuple(field_set.cmd.value or ()),
            env=tuple(field_set.env.value or ()),
            command_links=tuple(sorted((field_set.command_links.value or {}).items())),
            user=field_set.user.value,
            dependencies=field_set.dependencies,
            files=FrozenDict(field_set.files.value or {}),
            file_modes=FrozenDict(field_set.file_modes.value or {}),
        )


@rule
def oci_image_request(field_set: OciImageFieldSet) -> OciImageRequest:
    return OciImageRequest.from_field_set(field_set)


# Helpers the rule below awaits: defined above it, as Pants 2.17 finds the Gets of an
# awaited helper only if the helper exists when the rule is decorated.
def _mode(request: OciImageRequest, path: str, default: int) -> int:
    mode = request.file_modes.get(path)
    return int(mode, 8) if mode is not None else default


def _check_modes(request: OciImageRequest, commands) -> None:
    """`file_modes` names `bbin/bb` or a path of `files`; setuid/setgid on the busybox
    only if it runs one program."""
    for path, mode in sorted(request.file_modes.items()):
        if path != "bbin/bb" and path not in request.files:
            raise target_error(
                request.address, OciImageFileModesField.alias,
                f"gives a mode to {path!r}, which is neither 'bbin/bb' nor a path of `files` "
                f"({', '.join(sorted(request.files)) or 'none'}).",
                "Name 'bbin/bb' or a path that `files` puts into the image.",
            )
        others = sorted(c for c in commands if c != "bb")
        if path == "bbin/bb" and int(mode, 8) & SETUID_BITS and len(others) != 1:
            raise target_error(
                request.address, OciImageFileModesField.alias,
                f"makes bbin/bb {mode} (setuid/setgid), but busybox {request.busybox.value!r} has "
                f"{len(others)} commands ({', '.join(others[:8])}{', ...' if len(others) > 8 else ''}): "
                "each would run with the file owner's (root's) rights, a shell among them.",
                "Give the setuid program a `go_busybox` of its own with that one command, and "
                "make that image's bbin/bb setuid.",
            )


async def _extra_files(request: OciImageRequest, busybox: Address) -> tuple[list[dict], Digest]:
    """The layer records of `files` (from the file targets of `dependencies`) and the
    digest holding their sources."""
    deps = [t for t in await Get(Targets, DependenciesRequest(request.dependencies)) if t.address != busybox]
    for t in deps:
        if not any(t.has_field(f) for f in (FileSourceField, ResourceSourceField)):
            raise target_error(
                request.address, OciImageDependenciesField.alias,
                f"names {t.address}, a `{t.alias}` target, whose files cannot go into the image "
                "(only `file`/`files` and `resource`/`resources` targets' can, through `files`).",
                "List only file targets in `dependencies` (the busybox goes in `busybox`).",
            )
    sources = await Get(
        SourceFiles,
        SourceFilesRequest(
            [t.get(SourcesField) for t in deps], for_sources_types=(FileSourceField, ResourceSourceField)
        ),
    )
    missing = sorted(set(request.files.values()) - set(sources.files))
    unplaced = sorted(set(sources.files) - set(request.files.values()))
    if missing or unplaced:
        raise target_error(
            request.address, OciImageFilesField.alias,
            (f"names {', '.join(missing)}, which no target in `dependencies` owns" if missing else
             f"does not place {', '.join(unplaced)}, which `dependencies` brings")
            + f" (dependencies' files: {', '.join(sources.files) or 'none'}).",
            "Map each file of `dependencies` to its path in the image, and add the target that owns "
            "each source (relative to the build root) to `dependencies`.",
        )
    clash = sorted(set(request.files) & {p for p, _ in request.command_links})
    if clash:
        raise target_error(
            request.address, OciImageFilesField.alias,
            f"puts a file at {', '.join(clash)}, where `command_links` puts a link.",
            "Use another path for the file or for the link.",
        )
    entries = await Get(DigestEntries, Digest, sources.snapshot.digest)
    executable = {e.path for e in entries if isinstance(e, FileEntry) and e.is_executable}
    records = [
        {"path": dst, "type": "file", "src": src, "mode": _mode(request, dst, 0o755 if src in executable else 0o644)}
        for dst, src in sorted(request.files.items())
    ]
    return records, sources.snapshot.digest


@rule(desc="Build an OCI image from a go_busybox")
async def build_oci_image(request: OciImageRequest) -> OciImage:
    bb_field_set = await busybox_of(request.address, request.busybox)
    busybox, tools = await MultiGet(
        Get(BusyboxBinary, GoBusyboxFieldSet, bb_field_set), Get(K4sTools, K4sToolsRequest())
    )
    unknown = sorted(c for _, c in request.command_links if c not in busybox.commands)
    if unknown:
        raise target_error(
            request.address,
            OciImageCommandLinksField.alias,
            f"links to {', '.join(map(repr, unknown))}, which is not a command of busybox "
            f"{request.busybox.value!r} (its commands: {', '.join(sorted(busybox.commands))}).",
            "Link to one of those names, or add the command to the busybox's `commands`.",
        )
    extra, extra_digest = await _extra_files(request, bb_field_set.address)
    _check_modes(request, busybox.commands)
    records = [
        {"path": "bbin/bb", "type": "file", "src": BB, "mode": _mode(request, "bbin/bb", 0o755)},
        {"path": "bin", "type": "symlink", "target": "bbin"},
        {"path": "tmp", "type": "dir", "mode": 0o1777},
        *({"path": f"bbin/{c}", "type": "symlink", "target": "bb"} for c in sorted(busybox.commands) if c != "bb"),
        *({"path": p, "type": "symlink", "target": f"/bbin/{c}"} for p, c in request.command_links),
        *extra,
    ]
    manifest = {
        "name": request.name,
        "arch": bb_field_set.goarch.value,
        "entrypoint": list(request.entrypoint),
        "cmd": list(request.cmd),
        "env": list(request.env),
        "records": records,
    }
    manifest_digest = await Get(
        Digest, CreateDigest([FileContent(OCI_MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())])
    )
    input_digest = await Get(Digest, MergeDigests([tools.digest, busybox.digest, manifest_digest, extra_digest]))
    layer_tar = OCI_TAR_NO_USER if request.user else OCI_TAR
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step="OCI image",
            argv=(tools.k4stool, "oci", "-manifest", OCI_MANIFEST, "-out", layer_tar),
            input_digest=input_digest,
            output_files=(layer_tar,),
            description=f"Write OCI image {request.name} ({request.address})",
        ),
    )
    if request.user:
        result = await Get(
            K4sStepResult,
            K4sStep(
                address=request.address,
                step="OCI image config",
                argv=(tools.k4stool, "oci-config", "-in", layer_tar, "-user", request.user, "-out", OCI_TAR),
                input_digest=await Get(Digest, MergeDigests([tools.digest, result.output_digest])),
                output_files=(OCI_TAR,),
                description=f"Set the user of OCI image {request.name} ({request.address})",
            ),
        )
    return OciImage(result.output_digest, OCI_TAR, request.name)


def rules():
    return collect_rules()
