"""The Go toolchain as the k4s steps see it, and the Pants named caches they share."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pants.backend.go.util_rules.goroot import GoRoot
from pants.core.util_rules.system_binaries import LnBinary
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.process import Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from k4s_plugin.subsystems import K4sGo

# Pants named caches. Their names may hold only lowercase letters and underscores:
# Pants 2.17 refuses digits ("Cache names may only contain lowercase alphanumeric
# characters or underscores: got \"k4s_goroot\""), so they are spelled `kuties_*`
# ("kuties" is how k4s is said), not `k4s_*`. Both only ever
# speed things up: GOCACHE is content-addressed, and the module proxy cache is
# verified against go.sum on every use.
GO_BUILD_CACHE = ("kuties_go_build", ".cache/kuties_go_build")
GO_MOD_PROXY_CACHE = ("kuties_go_mod_proxy", ".cache/kuties_go_mod_proxy")
GO_MOD_TOOLS_CACHE = ("kuties_go_mod_tools", ".cache/kuties_go_mod_tools")
# Holds one symlink per Go version, `go1.26.8 -> <GOROOT>`, so that steps name the
# SDK by version, not by where it is installed: cache keys (local and remote) then
# hold no machine-specific path.
GOROOT_CACHE = ("kuties_goroot", ".cache/kuties_goroot")


@dataclass(frozen=True)
class GoToolchain:
    """The Go SDK found by Pants' lookup, as steps see it, plus their environment.

    `goroot` is a path inside the sandbox (through the `kuties_goroot` named cache)
    that names the Go version, e.g. `{chroot}/.cache/kuties_goroot/go1.26.8`.
    """

    goroot: str
    version: str
    env: FrozenDict[str, str]

    @property
    def go(self) -> str:
        return f"{self.goroot}/bin/go"


def _version_dir(version: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", version)


@rule(desc="Set up the Go toolchain for k4s", level=LogLevel.DEBUG)
async def go_toolchain(goroot: GoRoot, k4s_go: K4sGo, ln: LnBinary) -> GoToolchain:
    passed = await Get(EnvironmentVars, EnvironmentVarsRequest(k4s_go.env_vars))
    link = f"{GOROOT_CACHE[1]}/{_version_dir(goroot.full_version)}"
    # Point this machine's link at this machine's GOROOT, once per Pants session.
    await Get(
        ProcessResult,
        Process(
            argv=(ln.path, "-sfn", goroot.path, link),
            append_only_caches={GOROOT_CACHE[0]: GOROOT_CACHE[1]},
            description=f"Link {goroot.full_version} at {goroot.path} for k4s",
            level=LogLevel.DEBUG,
            cache_scope=ProcessCacheScope.PER_SESSION,
        ),
    )
    sandbox_goroot = "{chroot}/" + link
    env = {
        **passed,
        "GOROOT": sandbox_goroot,
        "GOCACHE": "{chroot}/" + GO_BUILD_CACHE[1],
    }
    return GoToolchain(goroot=sandbox_goroot, version=goroot.full_version, env=FrozenDict(env))


def rules():
    return collect_rules()
