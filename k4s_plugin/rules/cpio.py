"""Step 4: pack an initramfs into a reproducible newc cpio.

The layout (which paths, links, modes) is decided before this step (initramfs.py,
layout.py) and written here as a manifest; k4stool writes the archive from it (with
u-root's base layout from mkuimage, and u-root's cpio library), then compresses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths, BinaryPathTest
from pants.engine.addresses import Address
from pants.engine.environment import EnvironmentName
from pants.engine.fs import EMPTY_DIGEST, CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules import layout
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.toolchain import K4sStepEnvironment
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest
from k4s_plugin.targets import COMPRESSIONS

MANIFEST = "__k4s_manifest.json"


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
class PackInitramfsRequest:
    """The checked layout of an initramfs: its records, and a digest with every file
    they copy (`src`)."""

    address: Address
    records: tuple[layout.Record, ...]
    files: Digest
    base_layout: bool
    compression: str


async def _xz(address: Address, where: K4sStepEnvironment) -> tuple[tuple[str, ...], FrozenDict[str, str]]:
    """xz-utils' `xz` for `compression="xz"`: the k4stool arguments, and its version in
    the environment so that it is part of the step's cache key. Looked up where the
    step runs (on a remote executor, its `xz`)."""
    request = BinaryPathRequest(
        binary_name="xz", search_path=("/usr/bin", "/bin", "/usr/local/bin"),
        test=BinaryPathTest(args=["--version"], fingerprint_stdout=True),
    )
    paths = await Get(BinaryPaths, {request: BinaryPathRequest, where.name: EnvironmentName})
    if not paths.first_path:
        raise target_error(
            address, "compression", "is 'xz', which k4s packs with xz-utils' `xz` (23% smaller "
            "images than a pure-Go encoder), and `xz` is not in /usr/bin, /bin or /usr/local/bin.",
            "Install xz-utils (Debian: `apt-get install xz-utils`), or use `zstd` or `gzip`.",
        )
    xz = paths.first_path
    return ("-xz", xz.path), FrozenDict({"K4S_XZ_FINGERPRINT": xz.fingerprint})


@rule(desc="Pack an initramfs")
async def pack_initramfs(request: PackInitramfsRequest, where: K4sStepEnvironment) -> Archive:
    manifest = layout.manifest(request.records, request.base_layout, request.compression)
    tools, manifest_digest = await MultiGet(
        Get(K4sTools, K4sToolsRequest()), Get(Digest, CreateDigest([FileContent(MANIFEST, manifest)]))
    )
    input_digest = await Get(Digest, MergeDigests([tools.digest, request.files, manifest_digest]))
    out = f"__k4s_archive/{archive_name(request.compression)}"
    xz_args, xz_env = await _xz(request.address, where) if request.compression == "xz" else ((), FrozenDict())
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step="cpio",
            argv=(tools.k4stool, "cpio", "-manifest", MANIFEST, "-out", out, *xz_args),
            input_digest=input_digest,
            output_files=(out,),
            description=f"Pack {request.address} ({len(request.records)} entries, {request.compression})",
            extra_env=xz_env,
        ),
    )
    return Archive(result.output_digest, out, layout.image_files(request.records), input_digest)


def rules():
    return collect_rules()
