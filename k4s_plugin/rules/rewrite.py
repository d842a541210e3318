"""Step 2: rewrite the commands into busybox sources with gobusybox, as cached
Processes keyed by what each reads: a plan (the commands, their names, the dependency
list, each command's own files, bb's main package, the groups), the dependencies
re-printed as gobusybox writes them (`deps.tar`, not rerun when a command's own files
change), and one rewrite per group of commands (the commands of one Go module,
type-checked against their dependencies' export data: u-root's core commands are one
Process, a first-party module's commands another, so an edit of one reruns only its
group). The compile step joins the tars into one GOPATH tree."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents, DigestSubset, MergeDigests, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict

from k4s_plugin import grammar
from k4s_plugin.rules.busybox import BusyboxBuildRequest, GoBuildOptions, GoModule
from k4s_plugin.rules.download import MODULES_TAR, DownloadModulesRequest, ModuleSources
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest

COMMANDS_JSON = "__k4s_commands.json"
PLAN_JSON = "__k4s_rewrite/plan.json"
DEPS_LIST = "__k4s_rewrite/deps.txt"
BBMAIN_TAR = "__k4s_rewrite/bbmain.tar"
# The plan's per command: a tar of its own files (NAME.tar); per group (groups/): the
# commands (GROUP.json) and the dependency packages they import (GROUP.deps).
SRC_DIR = "__k4s_rewrite/src"
DEPS_TAR = "__k4s_rewrite/deps.tar"
CMD_DIR = "__k4s_rewrite/cmd"  # each command rewritten: NAME.tar


@dataclass(frozen=True)
class RewrittenTree:
    """The generated GOPATH tree as tars (`deps.tar`, `bbmain.tar` with
    `src/bb.u-root.com/bb`, one per command), which the compile step unpacks in the
    order of `tars` into one tree; and the commands."""

    digest: Digest
    tars: tuple[str, ...]
    commands: FrozenDict[str, str]  # name -> import path


@dataclass(frozen=True)
class RewriteCommandsRequest:
    address: Address
    module: GoModule
    commands: tuple[str, ...]
    command_names: FrozenDict[str, str]  # import path -> name
    options: GoBuildOptions
    download: DownloadModulesRequest  # the same commands' download step: modules.tar


@rule
async def rewrite_commands_request(busybox: BusyboxBuildRequest) -> RewriteCommandsRequest:
    download = await Get(DownloadModulesRequest, BusyboxBuildRequest, busybox)
    return RewriteCommandsRequest(
        busybox.address, download.module, busybox.commands, busybox.command_names, busybox.options, download
    )


@dataclass(frozen=True)
class PlannedCommand:
    path: str  # import path
    name: str
    kind: str  # plain, renamed or fixliteral (k4stool's planCommands)
    src: str  # the tar of its own files, in the plan's digest

    @property
    def tar(self) -> str:
        """Its rewritten files, from its group's Process."""
        return f"{CMD_DIR}/{self.name}.tar"


@dataclass(frozen=True)
class PlannedGroup:
    """The commands one rewrite Process rewrites (those of one Go module)."""

    module: str
    commands: tuple[PlannedCommand, ...]
    file: str  # the commands as k4stool reads them, in the plan's digest
    needs: str  # the dependency packages they import, directly or not, in the plan's digest

    @property
    def label(self) -> str:
        if len(self.commands) == 1:
            return self.commands[0].name
        return f"{self.module} ({len(self.commands)} commands)"


@dataclass(frozen=True)
class RewritePlan:
    """`k4stool rewrite-plan`'s outputs (commands.json, plan.json, deps.txt,
    bbmain.tar, the commands' source tars, the groups' files), and plan.json read."""

    digest: Digest
    commands: tuple[PlannedCommand, ...]
    groups: tuple[PlannedGroup, ...]
    exclude: tuple[str, ...]  # the first-party commands' own files (build-root globs)
    names: FrozenDict[str, str]  # name -> import path


@rule(desc="Plan the rewrite of Go commands")
async def rewrite_plan(request: RewriteCommandsRequest) -> RewritePlan:
    # Concurrently: the tools build overlaps the module download.
    modules, tools = await MultiGet(
        Get(ModuleSources, DownloadModulesRequest, request.download),
        Get(K4sTools, K4sToolsRequest()),
    )
    input_digest = await Get(Digest, MergeDigests([tools.digest, request.module.digest, modules.digest]))
    names = tuple(
        a
        for pkg, name in sorted(request.command_names.items())
        for a in ("-name", f"{pkg}={name}")
    )
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step="gobusybox rewrite",
            argv=(
                tools.k4stool,
                "rewrite-plan",
                "-gomod",
                request.module.dir,
                "-modules",
                MODULES_TAR,
                "-commands",
                COMMANDS_JSON,
                "-plan",
                PLAN_JSON,
                "-deps",
                DEPS_LIST,
                "-bbmain",
                BBMAIN_TAR,
                "-srcdir",
                SRC_DIR,
                *names,
                *request.options.tag_args(),
                "--",
                *request.commands,
            ),
            input_digest=input_digest,
            output_files=(COMMANDS_JSON, PLAN_JSON, DEPS_LIST, BBMAIN_TAR),
            output_directories=(SRC_DIR,),
            description=f"Rewrite commands of {request.address}: plan",
            extra_env=request.options.target_env(),
        ),
    )
    json_digest = await Get(Digest, DigestSubset(result.output_digest, PathGlobs([COMMANDS_JSON, PLAN_JSON])))
    files = {f.path: f.content for f in await Get(DigestContents, Digest, json_digest)}
    plan = json.loads(files[PLAN_JSON])
    names = json.loads(files[COMMANDS_JSON])
    check_command_names(request.address, names, request.command_names)
    commands = tuple(PlannedCommand(c["path"], c["name"], c["kind"], c["src"]) for c in plan["commands"])
    by_path = {c.path: c for c in commands}
    groups = tuple(
        PlannedGroup(g["module"], tuple(by_path[p] for p in g["commands"]), g["file"], g["needs"])
        for g in plan["groups"]
    )
    return RewritePlan(
        result.output_digest,
        commands,
        groups,
        tuple(plan["exclude"]),
        FrozenDict(sorted(names.items())),
    )


def check_command_names(address: Address, names: dict[str, str], command_names: FrozenDict[str, str]) -> None:
    """The names the commands get (derived from their import paths, or given in
    `command_names`) are names the image can hold: `bbin/<name>` links and `bb <name>`
    (not the reserved `bb`, one path element)."""
    for name, pkg in sorted(names.items()):
        problem = grammar.command_name_problem(name)
        if not problem:
            continue
        field = "command_names" if pkg in command_names else "commands"
        raise target_error(
            address, field,
            f"gives the command {pkg} the name {name!r}: {problem}.",
            f"Name it with `command_names={{\"{pkg}\": \"<another name>\"}}`, or drop the command.",
        )


@dataclass(frozen=True)
class RewriteDepsRequest:
    address: Address
    module: GoModule
    modules: Digest  # modules.tar
    exclude: tuple[str, ...]  # the first-party commands' own files, left out of the inputs
    deps_list: Digest  # deps.txt
    options: GoBuildOptions


@dataclass(frozen=True)
class RewrittenDeps:
    digest: Digest  # deps.tar


@rule(desc="Rewrite the dependencies of Go commands")
async def rewrite_deps(request: RewriteDepsRequest) -> RewrittenDeps:
    # Its key holds no first-party command's own files: editing one reruns the plan
    # and that command's rewrite, and this step only if the dependency list changes.
    sources, tools = await MultiGet(
        Get(Digest, DigestSubset(request.module.digest, PathGlobs(["**", *(f"!{g}" for g in request.exclude)]))),
        Get(K4sTools, K4sToolsRequest()),
    )
    input_digest = await Get(Digest, MergeDigests([tools.digest, sources, request.modules, request.deps_list]))
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step="gobusybox rewrite",
            argv=(
                tools.k4stool,
                "rewrite-deps",
                "-gomod",
                request.module.dir,
                "-modules",
                MODULES_TAR,
                "-list",
                DEPS_LIST,
                "-out",
                DEPS_TAR,
                *request.options.tag_args(),
            ),
            input_digest=input_digest,
            output_files=(DEPS_TAR,),
            description=f"Rewrite commands of {request.address}: dependencies",
            compiles_go=True,
            extra_env=request.options.target_env(),
        ),
    )
    return RewrittenDeps(result.output_digest)


@dataclass(frozen=True)
class RewriteGroupRequest:
    address: Address
    group: PlannedGroup
    src: Digest  # the group's file and needs, its commands' own files (the plan's tars), deps.txt
    deps: Digest  # deps.tar
    options: GoBuildOptions


@dataclass(frozen=True)
class RewrittenGroup:
    digest: Digest  # one tar per command: PlannedCommand.tar


@rule(desc="Rewrite a group of Go commands")
async def rewrite_group(request: RewriteGroupRequest) -> RewrittenGroup:
    tools = await Get(K4sTools, K4sToolsRequest())
    input_digest = await Get(Digest, MergeDigests([tools.digest, request.deps, request.src]))
    group = request.group
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step=f"gobusybox rewrite of {group.label}",
            argv=(
                tools.k4stool,
                "rewrite-commands",
                "-deps",
                DEPS_TAR,
                "-deplist",
                DEPS_LIST,
                "-group",
                group.file,
                "-needs",
                group.needs,
                "-outdir",
                CMD_DIR,
                *request.options.tag_args(),
            ),
            input_digest=input_digest,
            output_files=tuple(c.tar for c in group.commands),
            description=f"Rewrite commands of {request.address}: {group.label}",
            compiles_go=True,
            extra_env=request.options.target_env(),
        ),
    )
    return RewrittenGroup(result.output_digest)


def group_inputs(group: PlannedGroup) -> list[str]:
    """What a group's Process reads of the plan's outputs."""
    return [group.file, group.needs, DEPS_LIST, *(c.src for c in group.commands)]


@rule(desc="Rewrite Go commands with gobusybox")
async def rewrite_commands(request: RewriteCommandsRequest) -> RewrittenTree:
    plan, modules = await MultiGet(
        Get(RewritePlan, RewriteCommandsRequest, request),
        Get(ModuleSources, DownloadModulesRequest, request.download),
    )
    deps_list, bbmain, *srcs = await MultiGet(
        Get(Digest, DigestSubset(plan.digest, PathGlobs([DEPS_LIST]))),
        Get(Digest, DigestSubset(plan.digest, PathGlobs([BBMAIN_TAR]))),
        *(
            Get(Digest, DigestSubset(plan.digest, PathGlobs(group_inputs(g))))
            for g in plan.groups
        ),
    )
    deps = await Get(
        RewrittenDeps,
        RewriteDepsRequest(request.address, request.module, modules.digest, plan.exclude, deps_list, request.options),
    )
    # One Process per group: Pants runs them in parallel and caches each.
    groups = await MultiGet(
        Get(RewrittenGroup, RewriteGroupRequest(request.address, g, src, deps.digest, request.options))
        for g, src in zip(plan.groups, srcs)
    )
    digest = await Get(Digest, MergeDigests([deps.digest, bbmain, *(g.digest for g in groups)]))
    # The compile step unpacks them in the plan's order of commands, as before groups.
    tars = (DEPS_TAR, BBMAIN_TAR, *(c.tar for c in plan.commands))
    return RewrittenTree(digest, tars, plan.names)


def rules():
    return collect_rules()
