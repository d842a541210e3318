"""Running one k4stool subcommand as a Pants Process: the one place that emits the
Process of every k4s step (download, rewrite, compile, cpio, oci, size report); and
`K4sProcess`, which runs it (and the k4stool build of tools.py) where
`[k4s-go].environment` says, falling back to this machine when remote execution
infrastructure, not the step, fails it (`[k4s-go].remote_fallback`)."""

from __future__ import annotations

import logging
import re
import signal
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.environment import EnvironmentName
from pants.engine.fs import Digest, MergeDigests
from pants.engine.internals.native_engine import IntrinsicError
from pants.engine.platform import Platform
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.option.global_options import GlobalOptions
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from k4s_plugin.rules.errors import K4sStepError, explain
from k4s_plugin.rules.store import VerifiedProcess
from k4s_plugin.rules.toolchain import GO_BUILD_CACHE, GoToolchain, K4sStepEnvironment
from k4s_plugin.subsystems import K4sGo, RemoteFallback

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class K4sStep:
    """One k4stool subcommand as a Pants Process."""

    address: Address
    step: str
    argv: tuple[str, ...]
    input_digest: Digest
    output_files: tuple[str, ...]
    description: str
    extra_env: FrozenDict[str, str] = FrozenDict()
    caches: FrozenDict[str, str] = FrozenDict()
    output_directories: tuple[str, ...] = ()
    # The go commands of this step compile packages (the compile; the rewrite's
    # dependencies and per-group `go list -export`): with
    # `[k4s-go].shared_build_cache` they share Go's build cache through REAPI.
    compiles_go: bool = False


@dataclass(frozen=True)
class K4sGocacheTool:
    """`__k4s_tools/k4stool-gocache`: k4stool built with the `k4s_download` and
    `k4s_gocache` tags, whose `gocache` subcommand is the GOCACHEPROG of the compiling
    steps with `[k4s-go].shared_build_cache`. Built (tools.py) and put in those steps'
    sandboxes only when the option is set: its REAPI client (gRPC, protobuf, about 125
    packages) is in no other tool, so a build without the option never compiles it."""

    digest: Digest

    k4stool = "__k4s_tools/k4stool-gocache"


@dataclass(frozen=True)
class K4sGocacheToolRequest:
    """Ask for K4sGocacheTool with `Get(K4sGocacheTool, K4sGocacheToolRequest())`."""


# The sandbox path of that tool, for k4stool's go commands (gotool.GocacheProgEnv).
GOCACHE_PROG_ENV = "K4S_GOCACHE_PROG"


@dataclass(frozen=True)
class K4sStepResult:
    output_digest: Digest
    stderr: str
    stdout: str = ""


def shared_cache_env(k4s_go: K4sGo, compiles_go: bool) -> dict[str, str]:
    """The env that makes k4stool run the go command with `k4stool-gocache gocache`
    as GOCACHEPROG (gotool.go): only for the compiling steps, so the others keep
    their keys when the option changes. Those steps get that tool in their sandbox
    (run_k4s_step)."""
    if not compiles_go or not k4s_go.shared_build_cache:
        return {}
    address = k4s_go.shared_build_cache
    if not address.startswith(("grpc://", "grpcs://")):
        raise K4sStepError(
            f"[k4s-go].shared_build_cache is `{address}`: it must be grpc://host:port or grpcs://host:port.\n\n"
            "Fix: set `shared_build_cache` in pants.toml's [k4s-go] (or PANTS_K4S_GO_SHARED_BUILD_CACHE) "
            "to the REAPI cache's grpc:// or grpcs:// address, or leave it unset."
        )
    env = {"K4S_GOCACHE_REMOTE": address, GOCACHE_PROG_ENV: K4sGocacheTool.k4stool}
    if k4s_go.shared_build_cache_instance_name:
        env["K4S_GOCACHE_INSTANCE"] = k4s_go.shared_build_cache_instance_name
    return env


_CODE = re.compile(r"^k4s: (E_[A-Z_]+): ", re.M)

# Signals a step gets from outside: the kernel's out-of-memory killer, a worker being
# stopped or restarted, someone's kill. A step never sends them to itself.
_KILL_SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def killed_by(exit_code: int, stderr: str) -> str | None:
    """The signal that killed a step's process, when nothing of the step explains its
    failure; None for a failure of the build's own (a k4stool `E_*` code, any other
    exit code).

    Pants reports a process it ran here and that a signal ended as `-N`; REAPI
    executors report `128 + N`, as a shell does (buildbox-run: bubblewrap's exit code).
    k4stool exits 1 on every error it reports, the go command 1 or 2, a Go panic 2.
    """
    if _CODE.search(stderr):
        return None
    number = -exit_code if exit_code < 0 else exit_code - 128
    for sig in _KILL_SIGNALS:
        if number == sig.value:
            return sig.name
    return None


@dataclass(frozen=True)
class K4sProcess:
    """A Process of k4s, run in `[k4s-go].environment`, with its outputs verified
    (VerifiedProcess).

    When that environment is remote and the remote infrastructure fails the Process
    (the engine cannot be reached or gives up: an IntrinsicError; or a signal killed
    the process on the executor: `killed_by`), `[k4s-go].remote_fallback` says what
    happens: `local` runs the same Process once more in the local environment, `fail`
    raises an error naming the engine and the fixes. A failure of the step's own is
    returned as is, never rerun. The same Process again in the same environment would
    not run again: Pants memoizes it within a run (and a retry of an action the engine
    fails is Pants' own, five times, before the error reaches here).
    """

    process: Process
    what: str  # e.g. "gobusybox rewrite of distros/uroot:bb", for messages


@rule
async def run_k4s_process(
    req: K4sProcess, where: K4sStepEnvironment, k4s_go: K4sGo, global_options: GlobalOptions
) -> FallibleProcessResult:
    verified = VerifiedProcess(req.process)
    if not where.remote:
        return await Get(FallibleProcessResult, {verified: VerifiedProcess, where.name: EnvironmentName})
    try:
        result = await Get(FallibleProcessResult, {verified: VerifiedProcess, where.name: EnvironmentName})
    except IntrinsicError as e:
        cause = f"the remote execution engine failed: {e}"
        fix = (
            "start the engine or point `[GLOBAL].remote_execution_address` at one that runs "
            "(for pants.remote-exec.toml: `build-support/remote-exec/casd`)"
        )
    else:
        sig = killed_by(result.exit_code, result.stderr.decode(errors="replace"))
        if sig is None:
            return result
        cause = f"its process was killed on the executor ({sig}, exit code {result.exit_code})"
        fix = "check the executors (memory, workers stopped or restarted) and build again"
    engine = global_options.remote_execution_address
    remote_platform, local_platform = await MultiGet(
        Get(Platform, EnvironmentName, where.name), Get(Platform, EnvironmentName, where.local)
    )
    if k4s_go.remote_fallback == RemoteFallback.fail or remote_platform != local_platform:
        why = (
            "`[k4s-go].remote_fallback` is `fail`"
            if k4s_go.remote_fallback == RemoteFallback.fail
            else f"this machine ({local_platform.value}) is not the executors' platform "
            f"({remote_platform.value}), so it cannot run the step instead"
        )
        raise K4sStepError(
            f"k4s could not run the {req.what} remotely: {cause}.\n\n"
            f"The remote execution engine is {engine} (environment `{where.name.val}`); "
            f"{why}.\n\n"
            f"Fix: {fix}; or build on this machine with `--no-remote-execution`"
            + (
                '; or set `[k4s-go].remote_fallback = "local"` to run a step here when remote '
                "execution fails it."
                if remote_platform == local_platform
                else "."
            )
        )
    logger.warning(
        f"k4s: the {req.what} failed remotely ({engine}, environment `{where.name.val}`): "
        f"{cause}. Running it on this machine instead (`[k4s-go].remote_fallback = \"local\"`)."
    )
    # The same Process: the same SDK digest and tools (same platform), the same bytes.
    return await Get(FallibleProcessResult, {verified: VerifiedProcess, where.local: EnvironmentName})


@rule
async def run_k4s_step(req: K4sStep, where: K4sStepEnvironment, k4s_go: K4sGo) -> K4sStepResult:
    # In the environment `[k4s-go].environment` names (this machine, or remote executors).
    toolchain = await Get(GoToolchain, EnvironmentName, where.name)
    shared_cache = shared_cache_env(k4s_go, req.compiles_go)
    input_digest = req.input_digest
    if shared_cache:
        gocache_tool = await Get(K4sGocacheTool, K4sGocacheToolRequest())
        input_digest = await Get(Digest, MergeDigests([input_digest, gocache_tool.digest]))
    process = Process(
        argv=req.argv,
        input_digest=input_digest,
        immutable_input_digests=toolchain.immutable_input_digests,
        output_files=req.output_files,
        output_directories=req.output_directories,
        env={**toolchain.env, **req.extra_env, **shared_cache},
        append_only_caches={GO_BUILD_CACHE[0]: GO_BUILD_CACHE[1], **req.caches},
        description=req.description,
        level=LogLevel.INFO,
    )
    result = await Get(FallibleProcessResult, K4sProcess(process, f"{req.step} of {req.address}"))
    stderr = result.stderr.decode(errors="replace")
    if result.exit_code != 0:
        m = _CODE.search(stderr)
        code = m.group(1) if m else "E_INTERNAL"
        detail = stderr[m.end():].strip() if m else (stderr + result.stdout.decode(errors="replace")).strip()
        raise K4sStepError(explain(req.address, req.step, code, detail))
    return K4sStepResult(result.output_digest, stderr, result.stdout.decode(errors="replace"))


def rules():
    return collect_rules()
