"""Step 2: rewrite the commands into one busybox source tree with gobusybox, packed
as one deterministic tar (`gen.tar`), plus the command name -> package map."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents, DigestSubset, MergeDigests, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules.busybox import BusyboxBuildRequest, GoBuildOptions, GoModule
from k4s_plugin.rules.download import MODULES_TAR, DownloadModulesRequest, ModuleSources
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest

GEN_TAR = "__k4s_gen.tar"
COMMANDS_JSON = "__k4s_commands.json"


@dataclass(frozen=True)
class RewrittenTree:
    """`__k4s_gen.tar` (a GOPATH tree with `src/bb.u-root.com/bb`) and the commands."""

    digest: Digest
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


@rule(desc="Rewrite Go commands with gobusybox")
async def rewrite_commands(request: RewriteCommandsRequest) -> RewrittenTree:
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
                "rewrite",
                "-gomod",
                request.module.dir,
                "-modules",
                MODULES_TAR,
                "-out",
                GEN_TAR,
                "-commands",
                COMMANDS_JSON,
                *names,
                *request.options.tag_args(),
                "--",
                *request.commands,
            ),
            input_digest=input_digest,
            output_files=(GEN_TAR, COMMANDS_JSON),
            description=f"Rewrite commands of {request.address} with gobusybox",
            extra_env=request.options.target_env(),
        ),
    )
    cmds_digest = await Get(Digest, DigestSubset(result.output_digest, PathGlobs([COMMANDS_JSON])))
    contents = await Get(DigestContents, Digest, cmds_digest)
    commands = json.loads(contents[0].content)
    return RewrittenTree(result.output_digest, FrozenDict(sorted(commands.items())))


def rules():
    return collect_rules()
