"""The size budget of an initramfs (`max_size`): a packed image bigger than its budget
fails the build with its size, the budget and what to cut (the biggest files in the
image, and the biggest Go modules in `bb` from k4stool's size report)."""

from __future__ import annotations

from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestEntries, MergeDigests
from pants.engine.rules import Get, MultiGet, collect_rules, rule

from k4s_plugin.grammar import format_size
from k4s_plugin.rules.busybox import BusyboxBuildRequest, GoModule
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.gobuild import BB, BusyboxBinary
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.store import file_digests
from k4s_plugin.rules.tools import K4sTools, K4sToolsRequest

TOP = 8


@dataclass(frozen=True)
class SizeBudgetRequest:
    """Check that the packed image `archive_path` in `archive` is at most `max_size`
    bytes; `files` and `inputs` are the image's regular files, as in `Archive`."""

    address: Address
    max_size: int
    archive: Digest
    archive_path: str
    files: tuple[tuple[str, str], ...]
    inputs: Digest
    busybox: BusyboxBuildRequest


@dataclass(frozen=True)
class SizeBudgetMet:
    size: int


def _sizes(entries: DigestEntries) -> dict[str, int]:
    return {path: d.serialized_bytes_length for path, d in file_digests(entries).items()}


def _module_table(report: str) -> str:
    """The `| module | code bytes | % of code |` table of `k4stool sizes`."""
    lines = report.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("| module |"))
    except StopIteration:
        return ""
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append("    " + line)
    return "\n".join(table)


@rule(desc="Check an initramfs against its size budget")
async def check_size_budget(request: SizeBudgetRequest) -> SizeBudgetMet:
    archive_entries = await Get(DigestEntries, Digest, request.archive)
    size = _sizes(archive_entries)[request.archive_path]
    if size <= request.max_size:
        return SizeBudgetMet(size)

    # Over budget: say where the bytes are.
    input_entries, busybox, module, tools = await MultiGet(
        Get(DigestEntries, Digest, request.inputs),
        Get(BusyboxBinary, BusyboxBuildRequest, request.busybox),
        Get(GoModule, BusyboxBuildRequest, request.busybox),
        Get(K4sTools, K4sToolsRequest()),
    )
    input_sizes = _sizes(input_entries)
    files = sorted(((input_sizes[src], path) for path, src in request.files), reverse=True)[:TOP]
    report = await Get(
        K4sStepResult,
        K4sStep(
            address=request.address,
            step="size report",
            argv=(tools.k4stool, "sizes", "-gomod", f"{module.dir}/go.mod", "-top", str(TOP), BB),
            input_digest=await Get(Digest, MergeDigests([tools.digest, busybox.digest, module.digest])),
            output_files=(),
            description=f"Size report of the busybox of {request.address}",
        ),
    )
    over = size - request.max_size
    raise target_error(
        request.address,
        "max_size",
        f"is {format_size(request.max_size)}, and the packed image is {format_size(size)}: "
        f"{format_size(over)} over budget.\n\nThe biggest files in the image (uncompressed):\n"
        + "\n".join(f"    {n:>13,} B  {path}" for n, path in files)
        + "\n\nThe biggest Go modules in bb (function code):\n"
        + _module_table(report.stdout),
        "Cut what the image does not need (commands, build tags, plugin sets, kernel modules, "
        "images: see README \"Image size\"), or raise `max_size`.",
    )


def rules():
    return collect_rules()
