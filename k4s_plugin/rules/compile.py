"""Step 3: compile the rewritten tree into one static `bb` with the Go SDK."""

from __future__ import annotations

from dataclasses import dataclass

from pants.engine.fs import Digest, DigestSubset, MergeDigests, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.modules import GoBusyboxFieldSet, tag_args, target_env
from k4s_plugin.rules.rewrite import GEN_TAR, RewrittenTree
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest

BB = "__k4s_bb/bb"


@dataclass(frozen=True)
class BusyboxBinary:
    """A digest holding `__k4s_bb/bb`, and its commands (name -> import path)."""

    digest: Digest
    commands: FrozenDict[str, str]


@rule(desc="Compile a go_busybox")
async def compile_busybox(field_set: GoBusyboxFieldSet) -> BusyboxBinary:
    tree, tools = await MultiGet(
        Get(RewrittenTree, GoBusyboxFieldSet, field_set), Get(K4sTools, K4sToolsRequest())
    )
    gen = await Get(Digest, DigestSubset(tree.digest, PathGlobs([GEN_TAR])))
    input_digest = await Get(Digest, MergeDigests([tools.digest, gen]))
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=field_set.address,
            step="compile",
            argv=(
                tools.k4stool,
                "compile",
                "-tree",
                GEN_TAR,
                "-out",
                BB,
                "-ldflags",
                " ".join(field_set.ldflags.value or ()),
                *tag_args(field_set),
            ),
            input_digest=input_digest,
            output_files=(BB,),
            description=f"Compile {field_set.address} ({len(tree.commands)} commands)",
            extra_env=target_env(field_set),
        ),
    )
    return BusyboxBinary(result.output_digest, tree.commands)


def rules():
    return collect_rules()
