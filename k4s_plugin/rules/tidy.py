"""`pants k4s-tidy`: derive each go_busybox directory's `tools.go` from its BUILD
`commands`, and tidy `go.mod`/`go.sum` with the targets' `patches` applied.

What a profile pins is derived, not kept in step by hand: the go_busybox targets of
one directory share its go.mod, so their commands (globs expanded as the rewrite
expands them) and patches are merged into one `k4stool tidy` Process per directory;
the goal writes back what changed, or with `--check` lists it and fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.console import Console
from pants.engine.fs import (
    AddPrefix,
    Digest,
    DigestContents,
    DigestSubset,
    GlobMatchErrorBehavior,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
    Workspace,
)
from pants.engine.goal import Goal, GoalSubsystem
from pants.engine.rules import Get, MultiGet, collect_rules, goal_rule, rule
from pants.engine.target import Targets
from pants.option.option_types import BoolOption
from pants.util.frozendict import FrozenDict
from pants.util.strutil import softwrap

from k4s_plugin.rules.busybox import BusyboxBuildRequest, GoBuildOptions, GoBusyboxFieldSet, GoModule
from k4s_plugin.rules.download import patch_inputs
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.toolchain import GO_MOD_PROXY_CACHE
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest

TIDY_DIR = "__k4s_tidy"
TIDIED_FILES = ("go.mod", "go.sum", "tools.go")


class K4sTidySubsystem(GoalSubsystem):
    name = "k4s-tidy"
    help = softwrap(
        """
        Regenerate the `tools.go` of each go_busybox's directory from the targets'
        `commands` (globs expanded as gobusybox's rewrite expands them) and tidy its
        `go.mod` and `go.sum` with the targets' `patches` applied, as the build reads
        the modules. Run it after editing a profile's commands or patches, e.g.
        `pants k4s-tidy distros/k3s-like:`, and commit the three files. A plain
        `go mod tidy` does not see the patches (a patch may drop an import that cannot
        be fetched, or add one). Needs the module proxy (`GOPROXY`).
        """
    )

    check = BoolOption(
        default=False,
        help="Write nothing: list the files that are not what `k4s-tidy` would write, and fail if any.",
    )


class K4sTidy(Goal):
    subsystem_cls = K4sTidySubsystem
    environment_behavior = Goal.EnvironmentBehavior.LOCAL_ONLY


@dataclass(frozen=True)
class TidyModuleRequest:
    """One go.mod directory: the commands and patches of all its go_busybox targets."""

    address: Address  # the first target, named in errors
    module: GoModule
    commands: tuple[str, ...]
    patches: tuple[str, ...]  # build-root paths, in order
    options: GoBuildOptions  # globs are expanded for this platform and these tags


@dataclass(frozen=True)
class TidiedModule:
    """go.mod, go.sum and tools.go as `k4s-tidy` writes them, at their workspace paths."""

    dir: str
    digest: Digest


@rule(desc="Tidy a go_busybox module")
async def tidy_module(request: TidyModuleRequest) -> TidiedModule:
    patch_digest, patch_args = await patch_inputs(request.address, request.patches)
    tools = await Get(K4sTools, K4sToolsRequest())
    input_digest = await Get(Digest, MergeDigests([tools.digest, request.module.digest, patch_digest]))
    spec = f"{request.module.dir}:" if request.module.dir != "." else "//:"
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step="tidy",
            argv=(
                tools.k4stool,
                "tidy",
                "-gomod",
                request.module.dir,
                "-out",
                TIDY_DIR,
                "-dlcache",
                GO_MOD_PROXY_CACHE[1],
                "-generated-by",
                f"`pants k4s-tidy {spec}`",
                *request.options.tag_args(),
                *patch_args,
                "--",
                *request.commands,
            ),
            input_digest=input_digest,
            output_files=tuple(f"{TIDY_DIR}/{f}" for f in TIDIED_FILES),
            description=f"Tidy go.mod, go.sum and tools.go of {request.module.dir}",
            extra_env=request.options.target_env(),
            caches=FrozenDict({GO_MOD_PROXY_CACHE[0]: GO_MOD_PROXY_CACHE[1]}),
        ),
    )
    files = await Get(Digest, DigestSubset(result.output_digest, PathGlobs([f"{TIDY_DIR}/*"])))
    files = await Get(Digest, RemovePrefix(files, TIDY_DIR))
    if request.module.dir != ".":
        files = await Get(Digest, AddPrefix(files, request.module.dir))
    return TidiedModule(request.module.dir, files)


def _merge(requests: list[BusyboxBuildRequest], modules: list[GoModule]) -> list[TidyModuleRequest]:
    """One TidyModuleRequest per go.mod directory, in the order the targets come."""
    by_dir: dict[str, list[tuple[BusyboxBuildRequest, GoModule]]] = {}
    for request, module in zip(requests, modules):
        by_dir.setdefault(module.dir, []).append((request, module))
    merged = []
    for group in by_dir.values():
        first, module = group[0]
        commands = tuple(dict.fromkeys(c for r, _ in group for c in r.commands))
        patches = tuple(dict.fromkeys(p for r, _ in group for p in r.patches))
        merged.append(TidyModuleRequest(first.address, module, commands, patches, first.options))
    return merged


@goal_rule
async def k4s_tidy(
    targets: Targets, subsystem: K4sTidySubsystem, console: Console, workspace: Workspace
) -> K4sTidy:
    requests = [
        BusyboxBuildRequest.from_field_set(GoBusyboxFieldSet.create(t))
        for t in targets
        if GoBusyboxFieldSet.is_applicable(t)
    ]
    if not requests:
        console.print_stderr("k4s-tidy: no go_busybox targets given (e.g. `pants k4s-tidy distros/uroot:`).")
        return K4sTidy(exit_code=1)
    modules = await MultiGet(Get(GoModule, BusyboxBuildRequest, r) for r in requests)
    tidied = await MultiGet(Get(TidiedModule, TidyModuleRequest, m) for m in _merge(requests, list(modules)))
    wanted = await Get(DigestContents, MergeDigests(t.digest for t in tidied))
    current = await Get(
        DigestContents,
        PathGlobs([f.path for f in wanted], glob_match_error_behavior=GlobMatchErrorBehavior.ignore),
    )
    have = {f.path: f.content for f in current}
    stale = sorted(f.path for f in wanted if have.get(f.path) != f.content)
    if subsystem.check:
        for path in stale:
            console.print_stderr(f"k4s-tidy: {path} is not what `pants k4s-tidy` derives from BUILD")
        if stale:
            console.print_stderr("Run `pants k4s-tidy` on these directories and commit the files.")
        return K4sTidy(exit_code=1 if stale else 0)
    if stale:
        changed = await Get(Digest, MergeDigests(t.digest for t in tidied))
        changed = await Get(Digest, DigestSubset(changed, PathGlobs(stale)))
        workspace.write_digest(changed)
    for path in stale:
        console.print_stderr(f"k4s-tidy: wrote {path}")
    if not stale:
        console.print_stderr(f"k4s-tidy: {len(tidied)} module(s) already tidy")
    return K4sTidy(exit_code=0)


def rules():
    return collect_rules()
