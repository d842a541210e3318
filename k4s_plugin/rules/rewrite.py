"""Step 2: rewrite the commands into one busybox source tree with gobusybox, packed
as one deterministic tar (`gen.tar`), plus the command name -> package map."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.engine.fs import Digest, DigestContents, DigestSubset, MergeDigests, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.modules import (
    MODULES_TAR,
    GoBusyboxFieldSet,
    GoModule,
    ModuleSources,
    tag_args,
    target_env,
)
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest

GEN_TAR = "__k4s_gen.tar"
COMMANDS_JSON = "__k4s_commands.json"


@dataclass(frozen=True)
class RewrittenTree:
    """`__k4s_gen.tar` (a GOPATH tree with `src/bb.u-root.com/bb`) and the commands."""

    digest: Digest
    commands: FrozenDict[str, str]  # name -> import path


@rule(desc="Rewrite Go commands with gobusybox")
async def rewrite_commands(field_set: GoBusyboxFieldSet) -> RewrittenTree:
    # Concurrently: the tools build overlaps the module download.
    module, modules, tools = await MultiGet(
        Get(GoModule, GoBusyboxFieldSet, field_set),
        Get(ModuleSources, GoBusyboxFieldSet, field_set),
        Get(K4sTools, K4sToolsRequest()),
    )
    input_digest = await Get(Digest, MergeDigests([tools.digest, module.digest, modules.digest]))
    names = tuple(
        a
        for pkg, name in sorted((field_set.command_names.value or {}).items())
        for a in ("-name", f"{pkg}={name}")
    )
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=field_set.address,
            step="gobusybox rewrite",
            argv=(
                tools.k4stool,
                "rewrite",
                "-gomod",
                module.dir,
                "-modules",
                MODULES_TAR,
                "-out",
                GEN_TAR,
                "-commands",
                COMMANDS_JSON,
                *names,
                *tag_args(field_set),
                "--",
                *field_set.commands.value,
            ),
            input_digest=input_digest,
            output_files=(GEN_TAR, COMMANDS_JSON),
            description=f"Rewrite commands of {field_set.address} with gobusybox",
            extra_env=target_env(field_set),
        ),
    )
    cmds_digest = await Get(Digest, DigestSubset(result.output_digest, PathGlobs([COMMANDS_JSON])))
    contents = await Get(DigestContents, Digest, cmds_digest)
    commands = json.loads(contents[0].content)
    return RewrittenTree(result.output_digest, FrozenDict(sorted(commands.items())))


def rules():
    return collect_rules()
