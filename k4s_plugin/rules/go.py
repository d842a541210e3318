"""The Go toolchain as the k4s steps see it, and running k4stool steps."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from dataclasses import dataclass

from pants.backend.go.util_rules.goroot import GoRoot
from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.fs import Digest, DigestContents, DigestEntries, FileDigest, FileEntry
from pants.core.util_rules.system_binaries import LnBinary
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule
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


@dataclass(frozen=True)
class VerifiedProcess:
    """A Process whose output files are checked against their digests.

    Pants 2.17 serves blobs from its local store without re-hashing them: a
    corrupted entry (disk fault, a killed writer, tampering) would be copied into
    dist/ or into the next step's sandbox. k4s re-hashes every output it gets; on a
    mismatch it runs the process again under a changed key, which rewrites the
    store entry, and checks again.
    """

    process: Process


def file_digests(entries: DigestEntries) -> dict[str, FileDigest]:
    """Path -> digest (SHA-256 `fingerprint`, `serialized_bytes_length`) of every file."""
    return {e.path: e.file_digest for e in entries if isinstance(e, FileEntry)}


async def _corrupt_outputs(digest: Digest) -> list[str]:
    entries, contents = await MultiGet(
        Get(DigestEntries, Digest, digest), Get(DigestContents, Digest, digest)
    )
    expected = file_digests(entries)
    bad = []
    for fc in contents:
        want = expected.get(fc.path)
        if want is not None and (
            len(fc.content) != want.serialized_bytes_length
            or hashlib.sha256(fc.content).hexdigest() != want.fingerprint
        ):
            bad.append(fc.path)
    return bad


@rule
async def run_verified_process(req: VerifiedProcess) -> FallibleProcessResult:
    result = await Get(FallibleProcessResult, Process, req.process)
    if result.exit_code != 0:
        return result
    bad = await _corrupt_outputs(result.output_digest)
    if not bad:
        return result
    logger.warning(
        f"k4s: the local store returned corrupted {', '.join(bad)} for "
        f"'{req.process.description}'; running it again."
    )
    repaired = await Get(
        FallibleProcessResult,
        Process,
        dataclasses.replace(
            req.process, env=FrozenDict({**req.process.env, "K4S_STORE_REPAIR": "1"})
        ),
    )
    bad = await _corrupt_outputs(repaired.output_digest) if repaired.exit_code == 0 else []
    if bad:
        raise K4sStepError(
            f"The Pants local store keeps returning corrupted {', '.join(bad)} for "
            f"'{req.process.description}'. Delete the local store (~/.cache/pants/lmdb_store "
            "or [GLOBAL].local_store_dir) and build again."
        )
    return repaired


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
    stdout: str = ""


logger = logging.getLogger(__name__)

_CODE = re.compile(r"^k4s: (E_[A-Z_]+): ", re.M)


@rule
async def run_k4s_step(req: K4sStep, toolchain: GoToolchain) -> K4sStepResult:
    result = await Get(
        FallibleProcessResult,
        VerifiedProcess(Process(
            argv=req.argv,
            input_digest=req.input_digest,
            output_files=req.output_files,
            env={**toolchain.env, **req.extra_env},
            append_only_caches={
                GO_BUILD_CACHE[0]: GO_BUILD_CACHE[1],
                GOROOT_CACHE[0]: GOROOT_CACHE[1],
                **req.caches,
            },
            description=req.description,
            level=LogLevel.INFO,
        )),
    )
    stderr = result.stderr.decode(errors="replace")
    if result.exit_code != 0:
        m = _CODE.search(stderr)
        code = m.group(1) if m else "E_INTERNAL"
        detail = stderr[m.end():].strip() if m else (stderr + result.stdout.decode(errors="replace")).strip()
        raise K4sStepError(explain(req.address, req.step, code, detail))
    return K4sStepResult(result.output_digest, stderr, result.stdout.decode(errors="replace"))


def rules():
    return collect_rules()
