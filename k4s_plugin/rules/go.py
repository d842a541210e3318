"""The Go toolchain as the k4s steps see it, and running k4stool steps."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pants.backend.go.util_rules.goroot import GoRoot
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from k4s_plugin.rules.errors import K4sStepError, explain
from k4s_plugin.subsystems import K4sGo

# Pants named caches (names: lowercase letters and underscores). Both only ever
# speed things up: GOCACHE is content-addressed, and the module proxy cache is
# verified against go.sum on every use.
GO_BUILD_CACHE = ("kuties_go_build", ".cache/kuties_go_build")
GO_MOD_PROXY_CACHE = ("kuties_go_mod_proxy", ".cache/kuties_go_mod_proxy")
GO_MOD_TOOLS_CACHE = ("kuties_go_mod_tools", ".cache/kuties_go_mod_tools")


@dataclass(frozen=True)
class GoToolchain:
    """The Go SDK found by Pants' lookup, plus the environment every step gets."""

    goroot: str
    version: str
    env: FrozenDict[str, str]

    @property
    def go(self) -> str:
        return f"{self.goroot}/bin/go"


@rule(desc="Set up the Go toolchain for k4s", level=LogLevel.DEBUG)
async def go_toolchain(goroot: GoRoot, k4s_go: K4sGo) -> GoToolchain:
    passed = await Get(EnvironmentVars, EnvironmentVarsRequest(k4s_go.env_vars))
    env = {
        **passed,
        "GOROOT": goroot.path,
        # The GOROOT path is in every step's key; the version must be too, so that
        # upgrading Go in place rebuilds.
        "K4S_GO_VERSION": goroot.full_version,
        "GOCACHE": "{chroot}/" + GO_BUILD_CACHE[1],
    }
    return GoToolchain(goroot=goroot.path, version=goroot.full_version, env=FrozenDict(env))


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


@dataclass(frozen=True)
class K4sStepResult:
    output_digest: Digest
    stderr: str


_CODE = re.compile(r"^k4s: (E_[A-Z_]+): ", re.M)


@rule
async def run_k4s_step(req: K4sStep, toolchain: GoToolchain) -> K4sStepResult:
    result = await Get(
        FallibleProcessResult,
        Process(
            argv=req.argv,
            input_digest=req.input_digest,
            output_files=req.output_files,
            env={**toolchain.env, **req.extra_env},
            append_only_caches={GO_BUILD_CACHE[0]: GO_BUILD_CACHE[1], **req.caches},
            description=req.description,
            level=LogLevel.INFO,
        ),
    )
    stderr = result.stderr.decode(errors="replace")
    if result.exit_code != 0:
        m = _CODE.search(stderr)
        code = m.group(1) if m else "E_INTERNAL"
        detail = stderr[m.end():].strip() if m else (stderr + result.stdout.decode(errors="replace")).strip()
        raise K4sStepError(explain(req.address, req.step, code, detail))
    return K4sStepResult(result.output_digest, stderr)


def rules():
    return collect_rules()
