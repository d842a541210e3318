"""Step 1: download the modules the commands need, verified against go.sum, packed
as one deterministic tar (`modules.tar`)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import (
    AddPrefix,
    Digest,
    DigestSubset,
    GlobMatchErrorBehavior,
    MergeDigests,
    PathGlobs,
    Snapshot,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules.busybox import BusyboxBuildRequest, GoBuildOptions, GoModule
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.toolchain import GO_MOD_PROXY_CACHE
from k4s_plugin.rules.tools import K4sDownloadTool

MODULES_TAR = "__k4s_modules.tar"
# The modules the commands use, with go.sum hashes and patches (k4stool download
# -modules-json): what the SBOM lists (rules/sbom.py).
MODULES_JSON = "__k4s_modules.json"
PATCHES_DIR = "__k4s_patches"


@dataclass(frozen=True)
class DownloadModulesRequest:
    address: Address
    module: GoModule
    commands: tuple[str, ...]
    options: GoBuildOptions
    patches: tuple[str, ...]  # build-root paths, applied in this order


@rule
async def download_modules_request(busybox: BusyboxBuildRequest) -> DownloadModulesRequest:
    module = await Get(GoModule, BusyboxBuildRequest, busybox)
    return DownloadModulesRequest(busybox.address, module, busybox.commands, busybox.options, busybox.patches)


@dataclass(frozen=True)
class ModuleSources:
    """`__k4s_modules.tar`: the packages the commands need, laid out as a module cache;
    and, apart (so the rewrite's inputs are the tar alone), `__k4s_modules.json`."""

    digest: Digest
    modules_json: Digest


async def patch_inputs(address: Address, paths: tuple[str, ...]) -> tuple[Digest, tuple[str, ...]]:
    """The patch files under `__k4s_patches/<build-root path>`, and k4stool's `-patch`
    arguments for them, in the order the `patches` field lists them."""
    patches = await Get(
        Snapshot,
        PathGlobs(paths, glob_match_error_behavior=GlobMatchErrorBehavior.ignore),
    )
    missing = sorted(set(paths) - set(patches.files))
    if missing:
        raise target_error(
            address,
            "patches",
            f"names patch files that do not exist: {', '.join(missing)}",
            "Paths are relative to the BUILD file's directory, or to the build root "
            "when they start with `//`.",
        )
    digest = await Get(Digest, AddPrefix(patches.digest, PATCHES_DIR))
    return digest, tuple(a for p in paths for a in ("-patch", f"{PATCHES_DIR}/{p}"))


@rule(desc="Download Go modules for a go_busybox")
async def download_modules(request: DownloadModulesRequest, tool: K4sDownloadTool) -> ModuleSources:
    patch_digest, patch_args = await patch_inputs(request.address, request.patches)
    input_digest = await Get(Digest, MergeDigests([tool.digest, request.module.digest, patch_digest]))
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step="module download",
            argv=(
                tool.k4stool,
                "download",
                "-gomod",
                request.module.dir,
                "-out",
                MODULES_TAR,
                "-dlcache",
                GO_MOD_PROXY_CACHE[1],
                "-modules-json",
                MODULES_JSON,
                *request.options.tag_args(),
                *patch_args,
                "--",
                *request.commands,
            ),
            input_digest=input_digest,
            output_files=(MODULES_TAR, MODULES_JSON),
            description=f"Download Go modules for {request.address}",
            extra_env=request.options.target_env(),
            caches=FrozenDict({GO_MOD_PROXY_CACHE[0]: GO_MOD_PROXY_CACHE[1]}),
        ),
    )
    tar, modules_json = await MultiGet(
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([MODULES_TAR]))),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([MODULES_JSON]))),
    )
    return ModuleSources(tar, modules_json)


def rules():
    return collect_rules()
