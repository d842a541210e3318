"""Build k4stool, k4s's step driver (with gobusybox's library inside), as cached Processes.

Their sources ship inside this plugin (`k4s_plugin/tools/`, with a go.mod/go.sum
pinning gobusybox and its dependencies); modules come from GOPROXY, verified by that
go.sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pants.engine.environment import EnvironmentName
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

from k4s_plugin.rules.errors import K4sStepError
from k4s_plugin.rules.steps import K4sGocacheTool, K4sGocacheToolRequest, K4sProcess
from k4s_plugin.rules.toolchain import GO_BUILD_CACHE, GO_MOD_TOOLS_CACHE, GoToolchain, K4sStepEnvironment

TOOLS_SRC = Path(__file__).resolve().parent.parent / "tools"
TOOLS_DIR = "__k4s_tools"


@dataclass(frozen=True)
class K4sTools:
    """A digest holding `__k4s_tools/k4stool`, every step (gobusybox's bbinternal does the
    rewrite in it)."""

    digest: Digest

    k4stool = f"{TOOLS_DIR}/k4stool"


def _tool_sources() -> list[FileContent]:
    files = []
    for path in sorted(TOOLS_SRC.rglob("*")):
        go_source = path.suffix == ".go" and not path.name.endswith("_test.go")
        if path.is_file() and (go_source or path.name in ("go.mod", "go.sum")):
            rel = path.relative_to(TOOLS_SRC).as_posix()
            files.append(FileContent(f"__k4s_tools_src/{rel}", path.read_bytes()))
    return files


@dataclass(frozen=True)
class K4sToolsRequest:
    """Ask for K4sTools with `Get(K4sTools, K4sToolsRequest())`, concurrently with the
    step outputs a rule needs, so the tools build overlaps the module download."""


@dataclass(frozen=True)
class K4sDownloadTool:
    """`__k4s_tools/k4stool-download`: k4stool built with the `k4s_download` tag, only
    the download step and its small dependencies (seconds to build)."""

    digest: Digest

    k4stool = f"{TOOLS_DIR}/k4stool-download"


@dataclass(frozen=True)
class K4sKernelTool:
    """`__k4s_tools/k4stool-kernel`: k4stool built with the `k4s_download` and
    `k4s_kernel` tags: the kernel steps (kernel.go) and the download step, without
    gobusybox (seconds to build). The kernel steps are not in K4sTools, so adding them
    left that binary, and so every busybox step's cache key, as it was."""

    digest: Digest

    k4stool = f"{TOOLS_DIR}/k4stool-kernel"


# Go needs absolute GOROOT, GOCACHE, GOMODCACHE and GOPATH, and this build runs before
# there is a k4stool to make them so: the shell makes the relative paths of the
# Process env absolute against the sandbox, wherever that is (Pants 2.17 fills in
# `{chroot}` only for processes it runs on this machine).
_ABSOLUTE_GO_PATHS = (
    'export GOROOT="$PWD/$GOROOT" GOCACHE="$PWD/$GOCACHE" GOMODCACHE="$PWD/$GOMODCACHE" '
    'GOPATH="$PWD/$GOPATH" HOME="$PWD/$HOME"; exec "$@"'
)


async def _go_build(where: K4sStepEnvironment, tags: str, output: str, description: str) -> Digest:
    """k4stool built with these build tags (comma-separated, or "") as `output`."""
    sources, toolchain = await MultiGet(
        Get(Digest, CreateDigest(_tool_sources())), Get(GoToolchain, EnvironmentName, where.name)
    )
    process = Process(
        argv=(
            "/bin/sh", "-c", _ABSOLUTE_GO_PATHS, "k4s-go-build",
            toolchain.go, "-C", "__k4s_tools_src", "build", "-trimpath", "-ldflags=-s -w -buildid=",
            *(("-tags", tags) if tags else ()), "-o", f"../{output}", "./k4stool",
        ),
        input_digest=sources,
        immutable_input_digests=toolchain.immutable_input_digests,
        output_files=(output,),
        env={
            **{k: v for k, v in toolchain.env.items() if k != "GOFLAGS"},
            "GOFLAGS": " ".join(
                f for f in toolchain.env.get("GOFLAGS", "").split() if not f.startswith("-mod=")
            )
            + " -mod=readonly -modcacherw",
            "GOMODCACHE": GO_MOD_TOOLS_CACHE[1],
            "GOPATH": ".gopath",
            "HOME": ".home",
            "GOENV": "off",
            "GOTOOLCHAIN": "local",
            "GOTELEMETRY": "off",
            "GOWORK": "off",
            "CGO_ENABLED": "0",
        },
        append_only_caches={
            GO_BUILD_CACHE[0]: GO_BUILD_CACHE[1],
            GO_MOD_TOOLS_CACHE[0]: GO_MOD_TOOLS_CACHE[1],
        },
        description=description,
        level=LogLevel.INFO,
    )
    result = await Get(FallibleProcessResult, K4sProcess(process, f"step '{description}'"))
    if result.exit_code != 0:
        raise K4sStepError(
            "Building k4s's Go tool k4stool (with gobusybox and mkuimage) failed. Check that the Go "
            "SDK works and that GOPROXY reaches the module proxy.\n\n"
            + result.stderr.decode(errors="replace")
        )
    return result.output_digest


@rule(desc="Build k4s tools (k4stool with gobusybox)", level=LogLevel.DEBUG)
async def build_k4s_tools(
    _: K4sToolsRequest, where: K4sStepEnvironment, download_tool: K4sDownloadTool
) -> K4sTools:
    # After the download tool, on purpose: with an empty Go build cache, the two
    # builds would compile the same standard library packages side by side (about
    # 8 s of CPU here). In this order the download tool builds first (~10 s cold),
    # then this build reuses its packages while the module download runs.
    del download_tool
    digest = await _go_build(
        where,
        "",
        K4sTools.k4stool,
        "Build k4stool for every step (gobusybox, mkuimage)",
    )
    return K4sTools(digest)


@rule(desc="Build k4stool's download step", level=LogLevel.DEBUG)
async def build_k4s_download_tool(where: K4sStepEnvironment) -> K4sDownloadTool:
    digest = await _go_build(
        where,
        "k4s_download",
        K4sDownloadTool.k4stool,
        "Build k4stool (download step only)",
    )
    return K4sDownloadTool(digest)


@rule(desc="Build k4stool's shared build cache client", level=LogLevel.DEBUG)
async def build_k4s_gocache_tool(_: K4sGocacheToolRequest, where: K4sStepEnvironment) -> K4sGocacheTool:
    # Only with `[k4s-go].shared_build_cache` (steps.py asks for it). After the step
    # tool, as that one after the download tool: they share the standard library's
    # packages through the Go build cache, so this build compiles only the REAPI
    # client (gRPC, protobuf, the remote-apis) and links.
    await Get(K4sTools, K4sToolsRequest())
    digest = await _go_build(
        where,
        "k4s_download,k4s_gocache",
        K4sGocacheTool.k4stool,
        "Build k4stool-gocache (the shared build cache's GOCACHEPROG)",
    )
    return K4sGocacheTool(digest)


@dataclass(frozen=True)
class K4sKernelToolRequest:
    """Ask for K4sKernelTool with `Get(K4sKernelTool, K4sKernelToolRequest())`."""


@rule(desc="Build k4stool's kernel steps", level=LogLevel.DEBUG)
async def build_k4s_kernel_tool(
    _: K4sKernelToolRequest, where: K4sStepEnvironment, download_tool: K4sDownloadTool
) -> K4sKernelTool:
    # After the download tool, as the step tool: the kernel steps run beside the
    # busybox's, and two cold builds side by side would compile the standard library
    # twice; in this order this build only compiles the kernel packages and links.
    del download_tool
    digest = await _go_build(
        where,
        "k4s_download,k4s_kernel",
        K4sKernelTool.k4stool,
        "Build k4stool (kernel steps)",
    )
    return K4sKernelTool(digest)


@dataclass(frozen=True)
class K4sVmTool:
    """`__k4s_tools/k4stool-vm`: the step tool built with the `k4s_vm` tag, which adds
    `vm`, `pants run`'s QEMU driver. Kept out of the step tool: the vm package talks
    HTTP to the node, and net/http with crypto/tls was about half of the step tool's
    compile time, which every cold `pants package` waits for."""

    digest: Digest
    k4stool = f"{TOOLS_DIR}/k4stool-vm"


@dataclass(frozen=True)
class K4sVmToolRequest:
    """Ask for K4sVmTool with `Get(K4sVmTool, K4sVmToolRequest())`."""


@rule(desc="Build k4stool's QEMU driver", level=LogLevel.DEBUG)
async def build_k4s_vm_tool(_: K4sVmToolRequest, where: K4sStepEnvironment) -> K4sVmTool:
    # After the step tool, whose packages this build reuses (see build_k4s_gocache_tool).
    await Get(K4sTools, K4sToolsRequest())
    digest = await _go_build(where, "k4s_vm", K4sVmTool.k4stool, "Build k4stool-vm (pants run's QEMU driver)")
    return K4sVmTool(digest)


def rules():
    return collect_rules()
