"""An OCI image archive from a go_busybox (`oci_image`): the layer's entries are
decided here and written as a manifest; k4stool writes the layout tar from it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import FieldSet

from k4s_plugin.rules.busybox import GoBusyboxFieldSet, busybox_of
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.gobuild import BB, BusyboxBinary
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest
from k4s_plugin.targets import (
    OciImageBusyboxField,
    OciImageCmdField,
    OciImageCommandLinksField,
    OciImageEntrypointField,
    OciImageEnvField,
    OciImageNameField,
)

OCI_MANIFEST = "__k4s_oci.json"
OCI_TAR = "__k4s_oci/image.tar"


@dataclass(frozen=True)
class OciImageFieldSet(FieldSet):
    required_fields = (OciImageBusyboxField,)

    busybox: OciImageBusyboxField
    image_name: OciImageNameField
    entrypoint: OciImageEntrypointField
    cmd: OciImageCmdField
    env: OciImageEnvField
    command_links: OciImageCommandLinksField


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
        )


@rule
def oci_image_request(field_set: OciImageFieldSet) -> OciImageRequest:
    return OciImageRequest.from_field_set(field_set)


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
    records = [
        {"path": "bbin/bb", "type": "file", "src": BB, "mode": 0o755},
        {"path": "bin", "type": "symlink", "target": "bbin"},
        {"path": "tmp", "type": "dir", "mode": 0o1777},
        *({"path": f"bbin/{c}", "type": "symlink", "target": "bb"} for c in sorted(busybox.commands) if c != "bb"),
        *({"path": p, "type": "symlink", "target": f"/bbin/{c}"} for p, c in request.command_links),
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
    input_digest = await Get(Digest, MergeDigests([tools.digest, busybox.digest, manifest_digest]))
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step="OCI image",
            argv=(tools.k4stool, "oci", "-manifest", OCI_MANIFEST, "-out", OCI_TAR),
            input_digest=input_digest,
            output_files=(OCI_TAR,),
            description=f"Write OCI image {request.name} ({request.address})",
        ),
    )
    return OciImage(result.output_digest, OCI_TAR, request.name)


def rules():
    return collect_rules()
