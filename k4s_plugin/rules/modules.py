"""Step 1: download the modules the commands need, verified against go.sum, packed
as one deterministic tar (`modules.tar`)."""

from __future__ import annotations

import os.path
from dataclasses import dataclass

from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
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
from pants.engine.target import (
    FieldSet,
    InferDependenciesRequest,
    InferredDependencies,
    SourcesField,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules.addresses import field_address
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.toolchain import GO_MOD_PROXY_CACHE
from k4s_plugin.rules.tools import K4sDownloadTool
from k4s_plugin.targets import (
    GoBusyboxBuildTagsField,
    GoBusyboxCommandNamesField,
    GoBusyboxCommandsField,
    GoBusyboxGoarchField,
    GoBusyboxGoosField,
    GoBusyboxLdflagsField,
    GoBusyboxLocalModulesField,
    GoBusyboxModSourcesField,
    GoBusyboxPatchesField,
)

MODULES_TAR = "__k4s_modules.tar"
# The modules the commands use, with go.sum hashes and patches (k4stool download
# -modules-json): what the SBOM lists (rules/sbom.py).
MODULES_JSON = "__k4s_modules.json"
PATCHES_DIR = "__k4s_patches"


@dataclass(frozen=True)
class GoBusyboxFieldSet(FieldSet):
    required_fields = (GoBusyboxCommandsField, GoBusyboxModSourcesField)

    commands: GoBusyboxCommandsField
    sources: GoBusyboxModSourcesField
    goos: GoBusyboxGoosField
    goarch: GoBusyboxGoarchField
    build_tags: GoBusyboxBuildTagsField
    ldflags: GoBusyboxLdflagsField
    command_names: GoBusyboxCommandNamesField
    patches: GoBusyboxPatchesField
    local_modules: GoBusyboxLocalModulesField


@dataclass(frozen=True)
class GoModule:
    """The go.mod/go.sum of a go_busybox and its first-party sources, with those of its
    `local_modules` at their repository paths, in a digest; and the go.mod directory."""

    address: Address
    digest: Digest
    dir: str


async def _local_module_addresses(field: GoBusyboxLocalModulesField) -> list[Address]:
    return [await field_address(field, v) for v in field.value or ()]


@dataclass(frozen=True)
class GoBusyboxLocalModulesDependencyFieldSet(FieldSet):
    required_fields = (GoBusyboxLocalModulesField,)

    local_modules: GoBusyboxLocalModulesField


class InferGoBusyboxLocalModulesDependency(InferDependenciesRequest):
    infer_from = GoBusyboxLocalModulesDependencyFieldSet


@rule(desc="Infer the local module dependencies of a go_busybox")
async def infer_local_modules(request: InferGoBusyboxLocalModulesDependency) -> InferredDependencies:
    return InferredDependencies(await _local_module_addresses(request.field_set.local_modules))


@rule
async def go_module(field_set: GoBusyboxFieldSet) -> GoModule:
    addresses = await _local_module_addresses(field_set.local_modules)
    origin = f"the `local_modules` field of {field_set.address}"
    wrapped = await MultiGet(
        Get(WrappedTarget, WrappedTargetRequest(a, description_of_origin=origin)) for a in addresses
    )
    local_sources = []
    for address, w in zip(addresses, wrapped):
        if not w.target.has_field(SourcesField):
            raise target_error(
                field_set.address, "local_modules", f"names {address}, a `{w.target.alias}` target "
                "without sources.", "Name a `files` target that holds the module's go.mod, go.sum "
                "and Go files.",
            )
        local_sources.append(w.target[SourcesField])
    files, *local = await MultiGet(
        Get(SourceFiles, SourceFilesRequest([field_set.sources])),
        *(Get(SourceFiles, SourceFilesRequest([s])) for s in local_sources),
    )
    for address, sources in zip(addresses, local):
        if not any(os.path.basename(f) == "go.mod" for f in sources.files):
            raise target_error(
                field_set.address, "local_modules", f"names {address}, whose files hold no go.mod.",
                "Add the module's go.mod and go.sum to that target's `sources`.",
            )
    gomod = next(f for f in files.files if f.endswith("go.mod"))
    digest = await Get(Digest, MergeDigests([files.snapshot.digest, *(s.snapshot.digest for s in local)]))
    return GoModule(field_set.address, digest, os.path.dirname(gomod) or ".")


def target_env(field_set: GoBusyboxFieldSet) -> FrozenDict[str, str]:
    return FrozenDict({"GOOS": field_set.goos.value, "GOARCH": field_set.goarch.value})


def tag_args(field_set: GoBusyboxFieldSet) -> tuple[str, ...]:
    return tuple(a for t in field_set.build_tags.value or () for a in ("-tag", t))


@dataclass(frozen=True)
class ModuleSources:
    """`__k4s_modules.tar`: the packages the commands need, laid out as a module cache;
    and, apart (so the rewrite's inputs are the tar alone), `__k4s_modules.json`."""

    digest: Digest
    modules_json: Digest


@rule(desc="Download Go modules for a go_busybox")
async def download_modules(field_set: GoBusyboxFieldSet, tool: K4sDownloadTool) -> ModuleSources:
    module = await Get(GoModule, GoBusyboxFieldSet, field_set)
    patch_paths = field_set.patches.paths()
    patches = await Get(
        Snapshot,
        PathGlobs(
            patch_paths,
            glob_match_error_behavior=GlobMatchErrorBehavior.ignore,
        ),
    )
    missing = sorted(set(patch_paths) - set(patches.files))
    if missing:
        raise target_error(
            field_set.address,
            "patches",
            f"names patch files that do not exist: {', '.join(missing)}",
            "Paths are relative to the BUILD file's directory, or to the build root "
            "when they start with `//`.",
        )
    # Patches go in under their build-root path, in the order the field lists them.
    patch_digest = await Get(Digest, AddPrefix(patches.digest, PATCHES_DIR))
    input_digest = await Get(Digest, MergeDigests([tool.digest, module.digest, patch_digest]))
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=field_set.address,
            step="module download",
            argv=(
                tool.k4stool,
                "download",
                "-gomod",
                module.dir,
                "-out",
                MODULES_TAR,
                "-dlcache",
                GO_MOD_PROXY_CACHE[1],
                "-modules-json",
                MODULES_JSON,
                *tag_args(field_set),
                *(a for p in patch_paths for a in ("-patch", f"{PATCHES_DIR}/{p}")),
                "--",
                *field_set.commands.value,
            ),
            input_digest=input_digest,
            output_files=(MODULES_TAR, MODULES_JSON),
            description=f"Download Go modules for {field_set.address}",
            extra_env=target_env(field_set),
            caches=FrozenDict({GO_MOD_PROXY_CACHE[0]: GO_MOD_PROXY_CACHE[1]}),
        ),
    )
    tar, modules_json = await MultiGet(
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([MODULES_TAR]))),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([MODULES_JSON]))),
    )
    return ModuleSources(tar, modules_json)


def rules():
    return (*collect_rules(), UnionRule(InferDependenciesRequest, InferGoBusyboxLocalModulesDependency))
