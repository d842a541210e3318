"""Step 3: compile the rewritten tree (the rewrite's tars joined) into one static `bb`
with the Go SDK."""

from __future__ import annotations

from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules.busybox import BusyboxBuildRequest, GoBuildOptions
from k4s_plugin.rules.rewrite import RewriteCommandsRequest, RewrittenTree
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest

BB = "__k4s_bb/bb"
# Linker flags longer than this go to k4stool in a file (`-ldflags-file`).
LDFLAGS_INLINE_MAX = 16 * 1024
LDFLAGS_FILE = "__k4s_ldflags.txt"


@dataclass(frozen=True)
class BusyboxBinary:
    """A digest holding `__k4s_bb/bb`, and its commands (name -> import path)."""

    digest: Digest
    commands: FrozenDict[str, str]


@dataclass(frozen=True)
class CompileBusyboxRequest:
    address: Address
    options: GoBuildOptions
    ldflags: tuple[str, ...]
    rewrite: RewriteCommandsRequest  # the rewrite steps that make the tree's tars


@rule
async def compile_busybox_request(busybox: BusyboxBuildRequest) -> CompileBusyboxRequest:
    rewrite = await Get(RewriteCommandsRequest, BusyboxBuildRequest, busybox)
    return CompileBusyboxRequest(busybox.address, busybox.options, busybox.ldflags, rewrite)


@rule(desc="Compile a go_busybox")
async def compile_busybox(request: CompileBusyboxRequest) -> BusyboxBinary:
    tree, tools = await MultiGet(
        Get(RewrittenTree, RewriteCommandsRequest, request.rewrite), Get(K4sTools, K4sToolsRequest())
    )
    ldflags = " ".join(request.ldflags)
    if len(ldflags) <= LDFLAGS_INLINE_MAX:
        ldflags_args: tuple[str, ...] = ("-ldflags", ldflags)
        extra = []
    else:
        # Thousands of -X flags: one argument over Linux's 128 KiB limit ("Argument list
        # too long"); they go through a file. Short lists stay inline (the same step key).
        ldflags_args = ("-ldflags-file", LDFLAGS_FILE)
        extra = [await Get(Digest, CreateDigest([FileContent(LDFLAGS_FILE, "\n".join(request.ldflags).encode())]))]
    input_digest = await Get(Digest, MergeDigests([tools.digest, tree.digest, *extra]))
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step="compile",
            argv=(
                tools.k4stool,
                "compile",
                *(a for tar in tree.tars for a in ("-tree", tar)),
                "-out",
                BB,
                *ldflags_args,
                *request.options.tag_args(),
            ),
            input_digest=input_digest,
            output_files=(BB,),
            description=f"Compile {request.address} ({len(tree.commands)} commands)",
            extra_env=request.options.target_env(),
            compiles_go=True,
        ),
    )
    return BusyboxBinary(result.output_digest, tree.commands)


def rules():
    return collect_rules()
