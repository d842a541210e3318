"""Running one k4stool subcommand as a Pants Process: the one place that emits the
Process of every k4s step (download, rewrite, compile, cpio, oci, size report)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.environment import EnvironmentName
from pants.engine.fs import Digest
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from k4s_plugin.rules.errors import K4sStepError, explain
from k4s_plugin.rules.store import VerifiedProcess
from k4s_plugin.rules.toolchain import GO_BUILD_CACHE, GoToolchain, K4sStepEnvironment


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


@dataclass(frozen=True)
class K4sStepResult:
    output_digest: Digest
    stderr: str
    stdout: str = ""


_CODE = re.compile(r"^k4s: (E_[A-Z_]+): ", re.M)


@rule
async def run_k4s_step(req: K4sStep, where: K4sStepEnvironment) -> K4sStepResult:
    # In the environment `[k4s-go].environment` names (this machine, or remote executors).
    toolchain = await Get(GoToolchain, EnvironmentName, where.name)
    process = Process(
        argv=req.argv,
        input_digest=req.input_digest,
        immutable_input_digests=toolchain.immutable_input_digests,
        output_files=req.output_files,
        output_directories=req.output_directories,
        env={**toolchain.env, **req.extra_env},
        append_only_caches={GO_BUILD_CACHE[0]: GO_BUILD_CACHE[1], **req.caches},
        description=req.description,
        level=LogLevel.INFO,
    )
    result = await Get(FallibleProcessResult, {VerifiedProcess(process): VerifiedProcess, where.name: EnvironmentName})
    stderr = result.stderr.decode(errors="replace")
    if result.exit_code != 0:
        m = _CODE.search(stderr)
        code = m.group(1) if m else "E_INTERNAL"
        detail = stderr[m.end():].strip() if m else (stderr + result.stdout.decode(errors="replace")).strip()
        raise K4sStepError(explain(req.address, req.step, code, detail))
    return K4sStepResult(result.output_digest, stderr, result.stdout.decode(errors="replace"))


def rules():
    return collect_rules()
