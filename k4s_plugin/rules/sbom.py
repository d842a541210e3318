"""The SBOM of an initramfs: CycloneDX 1.5 JSON, written beside the image by `pants
package` (`<image>.cdx.json`).

CycloneDX rather than SPDX: scanners (grype, trivy, Dependency-Track) read both, but
CycloneDX has a field for exactly what a k4s image needs to say about a patched
upstream module (`pedigree.patches`), purls and hashes on every component, and one
obvious shape for "firmware made of an application made of libraries". Go modules use
the purl form `pkg:golang/<module>@<version>` and the Go standard library
`pkg:golang/stdlib@<version>`, the names syft gives them, so vulnerability databases
match them.

Everything comes from build outputs, never from the host: the modules the commands
compile (the download step's `go list -deps`, with go.sum's `h1:` hashes), the patches
(their files' SHA-256), the Go SDK's version, and the SHA-256 of every regular file in
the image (bb, kernel modules, OCI archives, `files`). No timestamp, a serial number
derived from the image's hash: the same image gives the same bytes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from urllib.parse import quote

from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, DigestContents, DigestEntries, FileContent, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule

import k4s_plugin
from k4s_plugin.rules.busybox import BusyboxBuildRequest
from k4s_plugin.rules.cpio import Archive
from k4s_plugin.rules.download import PATCHES_DIR, ModuleSources
from k4s_plugin.rules.gobuild import BusyboxBinary
from k4s_plugin.rules.kernel import LinuxKernel
from k4s_plugin.rules.store import file_digests
from k4s_plugin.subsystems import K4sGo

SBOM_SUFFIX = ".cdx.json"
# A fixed namespace for the BOM's serial number (uuid5 of the image's SHA-256).
_SERIAL_NAMESPACE = uuid.UUID("6f1b0e52-4b8c-5c1e-9a57-6b3473a1c0de")


@dataclass(frozen=True)
class SbomRequest:
    """The SBOM of `archive`, the initramfs `address` built around `busybox`."""

    address: Address
    busybox: BusyboxBuildRequest
    archive: Archive
    compression: str
    kernel: LinuxKernel | None = None


@dataclass(frozen=True)
class Sbom:
    """A digest holding one file, `path`: the CycloneDX JSON."""

    digest: Digest
    path: str


def go_purl(path: str, version: str) -> str:
    purl = f"pkg:golang/{quote(path, safe='/')}"
    return f"{purl}@{quote(version, safe='')}" if version else purl


def _sha256(hex_digest: str) -> list[dict]:
    return [{"alg": "SHA-256", "content": hex_digest}]


def _file_hashes(entries: DigestEntries) -> dict[str, str]:
    return {path: d.fingerprint for path, d in file_digests(entries).items()}


def kernel_component(kernel: LinuxKernel) -> dict:
    """The kernel package the image was built for (its modules are file components
    that name it)."""
    pin = kernel.pin
    return {
        "type": "operating-system",
        "bom-ref": pin.purl(),
        "name": pin.package,
        "version": pin.version,
        "purl": pin.purl(),
        "hashes": _sha256(pin.sha256),
        "description": (
            f"Linux {kernel.release}: the kernel this image is built for "
            "(its modules, and the image `pants run` boots)"
        ),
        "properties": [
            {"name": "k4s:kernel-release", "value": kernel.release},
            {"name": "k4s:kernel-image-sha256", "value": kernel.image_sha256},
            {"name": "k4s:architecture", "value": pin.arch},
            {"name": "k4s:target", "value": pin.address.spec},
        ],
    }


def _module_component(module: dict, patch_hashes: dict[str, str]) -> dict:
    component = {
        "type": "library",
        "bom-ref": go_purl(module["path"], module["version"]),
        "name": module["path"],
        "version": module["version"],
        "purl": go_purl(module["path"], module["version"]),
    }
    properties = []
    if module["sum"]:
        properties.append({"name": "k4s:go.sum", "value": module["sum"]})
    else:
        properties.append({"name": "k4s:replaced-by-local-directory", "value": "true"})
    patches = []
    for given in module["patches"]:
        path = given.removeprefix(f"{PATCHES_DIR}/")
        patches.append({"type": "unofficial", "diff": {"url": path}})
        properties.append({"name": "k4s:patch", "value": f"{path} sha256:{patch_hashes[path]}"})
    if patches:
        component["pedigree"] = {"patches": patches}
    component["properties"] = properties
    return component


@rule(desc="Write the SBOM of an initramfs")
async def initramfs_sbom(request: SbomRequest, k4s_go: K4sGo) -> Sbom:
    busybox, modules = await MultiGet(
        Get(BusyboxBinary, BusyboxBuildRequest, request.busybox),
        Get(ModuleSources, BusyboxBuildRequest, request.busybox),
    )
    patches = await Get(Digest, PathGlobs(request.busybox.patches))
    used_contents, input_entries, archive_entries, patch_entries = await MultiGet(
        Get(DigestContents, Digest, modules.modules_json),
        Get(DigestEntries, Digest, request.archive.inputs),
        Get(DigestEntries, Digest, request.archive.digest),
        Get(DigestEntries, Digest, patches),
    )
    used = json.loads(used_contents[0].content)
    input_hashes = _file_hashes(input_entries)
    image_hash = _file_hashes(archive_entries)[request.archive.path]
    patch_hashes = _file_hashes(patch_entries)

    go_version = k4s_go.version  # the SDK every step ran (rules/toolchain.py)
    stdlib = {
        "type": "library",
        "bom-ref": go_purl("stdlib", go_version),
        "name": "stdlib",
        "version": go_version,
        "purl": go_purl("stdlib", go_version),
        "description": "The Go standard library and runtime (the Go SDK that compiled bb)",
    }
    module_components = [_module_component(m, patch_hashes) for m in used]

    files, file_refs, bb_ref = [], [], None
    for image_path, src in request.archive.files:
        ref = f"file:{image_path}"
        component = {"type": "file", "bom-ref": ref, "name": image_path, "hashes": _sha256(input_hashes[src])}
        if image_path == "bbin/bb":
            bb_ref = ref
            component.update(
                type="application",
                name="bb",
                description="u-root busybox (gobusybox): the commands below in one Go binary",
                properties=[{"name": "k4s:path", "value": image_path}]
                + [{"name": "k4s:command", "value": f"{n} {p}"} for n, p in sorted(busybox.commands.items())],
            )
        elif image_path.startswith("lib/modules/"):
            component["properties"] = [{"name": "k4s:kernel-release", "value": image_path.split("/")[2]}]
            if request.kernel and image_path.endswith((".ko", ".ko.xz", ".ko.zst", ".ko.gz")):
                component["properties"].append({"name": "k4s:kernel-package", "value": request.kernel.pin.purl()})
        files.append(component)
        file_refs.append(ref)

    kernel = [kernel_component(request.kernel)] if request.kernel else []
    image_ref = f"image:{request.address.spec}"
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(_SERIAL_NAMESPACE, image_hash)}",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "k4s", "version": k4s_plugin.__version__}]},
            "component": {
                "type": "firmware",
                "bom-ref": image_ref,
                "name": request.address.spec,
                "hashes": _sha256(image_hash),
                "properties": [{"name": "k4s:compression", "value": request.compression}],
            },
        },
        "components": files + kernel + [stdlib] + module_components,
        "dependencies": [
            {"ref": image_ref, "dependsOn": file_refs + [k["bom-ref"] for k in kernel]},
            *(
                [{"ref": bb_ref, "dependsOn": [stdlib["bom-ref"]] + [m["bom-ref"] for m in module_components]}]
                if bb_ref
                else []
            ),
        ],
    }
    path = "__k4s_sbom" + SBOM_SUFFIX
    content = (json.dumps(bom, indent=1, sort_keys=True) + "\n").encode()
    digest = await Get(Digest, CreateDigest([FileContent(path, content)]))
    return Sbom(digest, path)


def rules():
    return collect_rules()
