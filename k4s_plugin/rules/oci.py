"""An OCI image archive from a go_busybox (`oci_image`): the layer's entries are
decided here and written as a manifest; k4stool writes the layout tar from it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    FieldSet,
    InferDependenciesRequest,
    InferredDependencies,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionRule

from k4s_plugin.rules.addresses import field_address
from k4s_plugin.rules.compile import BB, BusyboxBinary
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.modules import GoBusyboxFieldSet
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest
from k4s_plugin.targets import (
    GoBusyboxTarget,
    OciImageBusyboxField,
    OciImageCmdField,
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


@dataclass(frozen=True)
class OciImage:
    """A digest holding one file, `path`: the OCI image layout tar of image `name`."""

    digest: Digest
    path: str
    name: str


async def busybox_of(address: Address, field) -> GoBusyboxFieldSet:
    """The go_busybox a `busybox` field (of an initramfs or oci_image) names."""
    bb_address = await field_address(field, field.value)
    wrapped = await Get(
        WrappedTarget,
        WrappedTargetRequest(bb_address, description_of_origin=f"the `{field.alias}` field of {address}"),
    )
    if not isinstance(wrapped.target, GoBusyboxTarget):
        raise target_error(
            address, field.alias,
            f"points at {bb_address}, a `{wrapped.target.alias}` target, not a `go_busybox`.",
            "Give the address of a `go_busybox` target, e.g. `busybox=\":bb\"`.",
        )
    return GoBusyboxFieldSet.create(wrapped.target)


@rule(desc="Build an OCI image from a go_busybox")
async def build_oci_image(field_set: OciImageFieldSet) -> OciImage:
    bb_field_set = await busybox_of(field_set.address, field_set.busybox)
    busybox, tools = await MultiGet(
        Get(BusyboxBinary, GoBusyboxFieldSet, bb_field_set), Get(K4sTools, K4sToolsRequest())
    )
    records = [
        {"path": "bbin/bb", "type": "file", "src": BB, "mode": 0o755},
        {"path": "bin", "type": "symlink", "target": "bbin"},
        {"path": "tmp", "type": "dir", "mode": 0o1777},
        *({"path": f"bbin/{c}", "type": "symlink", "target": "bb"} for c in sorted(busybox.commands) if c != "bb"),
    ]
    name = field_set.image_name.value_or_default(field_set.address)
    manifest = {
        "name": name,
        "arch": bb_field_set.goarch.value,
        "entrypoint": list(field_set.entrypoint.value or ()),
        "cmd": list(field_set.cmd.value or ()),
        "env": list(field_set.env.value or ()),
        "records": records,
    }
    manifest_digest = await Get(
        Digest, CreateDigest([FileContent(OCI_MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())])
    )
    input_digest = await Get(Digest, MergeDigests([tools.digest, busybox.digest, manifest_digest]))
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=field_set.address,
            step="OCI image",
            argv=(tools.k4stool, "oci", "-manifest", OCI_MANIFEST, "-out", OCI_TAR),
            input_digest=input_digest,
            output_files=(OCI_TAR,),
            description=f"Write OCI image {name} ({field_set.address})",
        ),
    )
    return OciImage(result.output_digest, OCI_TAR, name)


@dataclass(frozen=True)
class OciImageBusyboxDependencyFieldSet(FieldSet):
    required_fields = (OciImageBusyboxField,)

    busybox: OciImageBusyboxField


class InferOciImageBusyboxDependency(InferDependenciesRequest):
    infer_from = OciImageBusyboxDependencyFieldSet


@rule(desc="Infer the go_busybox dependency of an oci_image")
async def infer_oci_image_busybox(request: InferOciImageBusyboxDependency) -> InferredDependencies:
    field = request.field_set.busybox
    return InferredDependencies([await field_address(field, field.value)])


def rules():
    return (*collect_rules(), UnionRule(InferDependenciesRequest, InferOciImageBusyboxDependency))
