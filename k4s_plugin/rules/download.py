"""Step 1: download the modules the commands need, verified against go.sum, packed
as one deterministic tar (`modules.tar`).

The download reads no first-party Go file: where commands may be first-party (the
main module's, or a `local_modules` one's), a small step (`k4stool imports`, keyed on
the first-party sources) lists the third-party packages they import, and the
download lists those in their place. Its inputs are then go.mod and go.sum files,
that list and the patches, so an edit of a first-party command that keeps its
imports is a cache hit here."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import (
    AddPrefix,
    Digest,
    DigestContents,
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
# `k4stool imports`: the download's patterns, the first-party modules used.
IMPORTS_JSON = "__k4s_imports.json"


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


@dataclass(frozen=True)
class DownloadPatterns:
    """What the download lists: the commands, or, where some may be first-party, the
    third-party ones and the third-party packages the first-party ones import
    (`k4stool imports`); and the first-party modules they use (path@version), which
    the SBOM lists."""

    patterns: tuple[str, ...]
    local_modules: tuple[str, ...]


def may_be_first_party(module: GoModule, commands: tuple[str, ...]) -> bool:
    """Whether a command pattern may name a package of the main module or of a
    `local_modules` one (then `k4stool imports` decides which do)."""
    if module.local_modules or not module.path:
        return True

    def under(a: str, b: str) -> bool:
        return a == b or a.startswith(b + "/")

    for c in commands:
        if c.startswith("-"):
            continue
        elems = c.split("/")
        glob = next((i for i, e in enumerate(elems) if any(g in e for g in "*?[\\")), None)
        if glob is None and under(c, module.path):
            return True
        prefix = "/".join(elems[:glob])
        if glob is not None and (not prefix or under(prefix, module.path) or under(module.path, prefix)):
            return True
    return False


@rule(desc="List the imports of first-party Go commands")
async def download_patterns(request: DownloadModulesRequest, tool: K4sDownloadTool) -> DownloadPatterns:
    if not may_be_first_party(request.module, request.commands):
        return DownloadPatterns(request.commands, ())
    input_digest = await Get(Digest, MergeDigests([tool.digest, request.module.digest]))
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step="module download",
            argv=(
                tool.k4stool,
                "imports",
                "-gomod",
                request.module.dir,
                "-out",
                IMPORTS_JSON,
                *request.options.tag_args(),
                "--",
                *request.commands,
            ),
            input_digest=input_digest,
            output_files=(IMPORTS_JSON,),
            description=f"List the imports of first-party commands of {request.address}",
            extra_env=request.options.target_env(),
        ),
    )
    imports = json.loads((await Get(DigestContents, Digest, result.output_digest))[0].content)
    return DownloadPatterns(tuple(imports["patterns"]), tuple(imports["local_modules"]))


@dataclass(frozen=True)
class DownloadStep:
    """The download's Process, before it runs (its key: tests/test_rules.py checks that
    an edit of a first-party command leaves it as it was)."""

    step: K4sStep


@rule
async def download_step(request: DownloadModulesRequest, tool: K4sDownloadTool) -> DownloadStep:
    patch_digest, patch_args = await patch_inputs(request.address, request.patches)
    patterns, gomods = await MultiGet(
        Get(DownloadPatterns, DownloadModulesRequest, request),
        Get(Digest, DigestSubset(request.module.digest, PathGlobs(["**/go.mod", "**/go.sum"]))),
    )
    # go.mod and go.sum files only: the first-party Go files are not an input.
    input_digest = await Get(Digest, MergeDigests([tool.digest, gomods, patch_digest]))
    return DownloadStep(
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
                *(a for m in patterns.local_modules for a in ("-local-module", m)),
                "--",
                *patterns.patterns,
            ),
            input_digest=input_digest,
            output_files=(MODULES_TAR, MODULES_JSON),
            description=f"Download Go modules for {request.address}",
            extra_env=request.options.target_env(),
            caches=FrozenDict({GO_MOD_PROXY_CACHE[0]: GO_MOD_PROXY_CACHE[1]}),
        )
    )


@rule(desc="Download Go modules for a go_busybox")
async def download_modules(request: DownloadModulesRequest) -> ModuleSources:
    step = await Get(DownloadStep, DownloadModulesRequest, request)
    result = await Get(K4sStepResult, K4sStep, step.step)
    tar, modules_json = await MultiGet(
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([MODULES_TAR]))),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([MODULES_JSON]))),
    )
    return ModuleSources(tar, modules_json)


def rules():
    return collect_rules()
