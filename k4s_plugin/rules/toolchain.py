"""The Go toolchain as the k4s steps see it, where they run, and the Pants named caches
they share."""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.util_rules.environments import (
    EnvironmentNameRequest,
    EnvironmentTarget,
    RemoteEnvironmentTarget,
)
from pants.core.util_rules.system_binaries import UnzipBinary
from pants.engine.env_vars import EnvironmentVars, EnvironmentVarsRequest
from pants.engine.environment import ChosenLocalEnvironmentName, EnvironmentName
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    DigestSubset,
    DownloadFile,
    FileContent,
    FileDigest,
    MergeDigests,
    PathGlobs,
    RemovePrefix,
)
from pants.engine.platform import Platform
from pants.engine.process import Process, ProcessResult
from pants.engine.rules import Get, collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from k4s_plugin.rules.errors import K4sStepError
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

# Where the Go SDK (a GOROOT) sits in every step's sandbox: an immutable input digest,
# which Pants symlinks into local sandboxes (materialized once per run, not copied per
# step) and sends to remote executors as part of the input root.
GO_SDK_DIR = "__k4s_go"

_GO_PLATFORMS = {
    Platform.linux_x86_64: "linux-amd64",
    Platform.linux_arm64: "linux-arm64",
    Platform.macos_x86_64: "darwin-amd64",
    Platform.macos_arm64: "darwin-arm64",
}
_DEFAULT_GOPROXY = "https://proxy.golang.org"
_SDK_OUT = "__k4s_go_sdk"


@dataclass(frozen=True)
class GoToolchain:
    """The Go SDK the steps run, as a digest, and their environment.

    Every path in `env` is relative to the sandbox (`GOROOT=__k4s_go`,
    `GOCACHE=.cache/kuties_go_build`): Pants 2.17 substitutes `{chroot}` only for
    processes it runs on this machine, so k4stool (and the shell line that runs the
    k4stool build) makes them absolute against its working directory, wherever that is.
    """

    version: str  # e.g. go1.26.8
    sdk: Digest
    env: FrozenDict[str, str]

    go = f"{GO_SDK_DIR}/bin/go"

    @property
    def immutable_input_digests(self) -> FrozenDict[str, Digest]:
        return FrozenDict({GO_SDK_DIR: self.sdk})


@dataclass(frozen=True)
class K4sStepEnvironment:
    """Where k4s's steps run (`[k4s-go].environment`) and this machine's environment,
    where what describes the build is read: the Go env vars and the SDK download."""

    name: EnvironmentName
    local: EnvironmentName
    # Steps run on REAPI executors (a `remote_environment`, with remote execution on):
    # then an infrastructure failure may fall back here (steps.py, K4sProcess).
    remote: bool = False


@rule(desc="Resolve the environment of k4s's steps", level=LogLevel.DEBUG)
async def k4s_step_environment(k4s_go: K4sGo) -> K4sStepEnvironment:
    local = await Get(ChosenLocalEnvironmentName)
    name = await Get(
        EnvironmentName,
        EnvironmentNameRequest(k4s_go.environment, description_of_origin="the option `[k4s-go].environment`"),
    )
    # With remote execution off, a remote_environment resolves to its fallback (here).
    target = await Get(EnvironmentTarget, EnvironmentName, name)
    return K4sStepEnvironment(name, local.val, remote=isinstance(target.val, RemoteEnvironmentTarget))


@dataclass(frozen=True)
class GoSdkRequest:
    url: str
    sha256: str
    size: int
    root: str  # the GOROOT's directory inside the zip


@dataclass(frozen=True)
class GoSdk:
    digest: Digest


@rule(desc="Fetch the Go SDK for k4s", level=LogLevel.DEBUG)
async def fetch_go_sdk(request: GoSdkRequest, unzip: UnzipBinary) -> GoSdk:
    # DownloadFile checks sha256 and size, and downloads nothing when the local store
    # already has that digest; the unpacking is an ordinary cached Process.
    archive = await Get(Digest, DownloadFile(request.url, FileDigest(request.sha256, request.size)))
    zip_name = request.url.rsplit("/", 1)[-1]
    unpacked = await Get(
        ProcessResult,
        Process(
            # Without what no build reads: the go command's own sources (src/cmd: the
            # tools are pkg/tool's binaries) and test data (testdata directories are never
            # packages). 5,100 of 11,500 files stay (160 of 240 MB): Pants materializes an
            # immutable input once per run (per pantsd), so this halves that cost (uroot,
            # no pantsd: +3.5 s of CPU with the whole SDK, +1 s so), and a remote cache
            # takes half as many blobs when it stores this Process's result.
            argv=(unzip.path, "-q", zip_name, "-d", _SDK_OUT, "-x", f"{request.root}/src/cmd/*", "*/testdata/*"),
            input_digest=archive,
            output_directories=(_SDK_OUT,),
            description=f"Unpack the Go SDK {zip_name}",
            level=LogLevel.DEBUG,
        ),
    )
    sdk = await Get(Digest, RemovePrefix(unpacked.output_digest, f"{_SDK_OUT}/{request.root}"))
    # A module zip may not hold go.mod files below its root, so the toolchain zips name
    # GOROOT's (src/go.mod, ...) `_go.mod`; the go command copies each back to `go.mod`
    # when it installs a toolchain (cmd/go/internal/toolchain), and so does this: without
    # src/go.mod the standard library is not the `std` module.
    renamed = await Get(DigestContents, DigestSubset(sdk, PathGlobs(["**/_go.mod"])))
    go_mods = await Get(
        Digest, CreateDigest([FileContent(f.path[: -len("_go.mod")] + "go.mod", f.content) for f in renamed])
    )
    return GoSdk(await Get(Digest, MergeDigests([sdk, go_mods])))


def _proxy(goproxy: str | None) -> str:
    """The first http(s) entry of GOPROXY (entries are separated by `,` or `|`)."""
    if not goproxy:
        return _DEFAULT_GOPROXY
    for entry in goproxy.replace("|", ",").split(","):
        if entry.strip().startswith(("https://", "http://")):
            return entry.strip().rstrip("/")
    raise K4sStepError(
        f"k4s fetches the Go SDK from the Go module proxy, and GOPROXY={goproxy} names none "
        "(no http:// or https:// entry). Set GOPROXY to include a proxy, e.g. "
        f"GOPROXY={_DEFAULT_GOPROXY},direct."
    )


def sdk_request(k4s_go: K4sGo, platform: Platform, goproxy: str | None) -> GoSdkRequest:
    goos_arch = _GO_PLATFORMS[platform]
    for entry in k4s_go.known_versions:
        fields = [f.strip() for f in entry.split("|")]
        if len(fields) != 4:
            raise K4sStepError(
                f"[k4s-go].known_versions has `{entry}`, not `version|platform|sha256|size`."
            )
        version, plat, sha256, size = fields
        if version == k4s_go.version and plat == platform.value:
            name = f"v0.0.1-go{version}.{goos_arch}"
            return GoSdkRequest(
                url=f"{_proxy(goproxy)}/golang.org/toolchain/@v/{name}.zip",
                sha256=sha256,
                size=int(size),
                root=f"golang.org/toolchain@{name}",
            )
    raise K4sStepError(
        f"[k4s-go].version is {k4s_go.version}, and [k4s-go].known_versions has no entry for it "
        f"on {platform.value}, where k4s's steps run. Add `{k4s_go.version}|{platform.value}|"
        "<sha256>|<size>` (see `./pants help-advanced k4s-go`)."
    )


@rule(desc="Set up the Go toolchain for k4s", level=LogLevel.DEBUG)
async def go_toolchain(k4s_go: K4sGo, platform: Platform, where: K4sStepEnvironment) -> GoToolchain:
    # The platform is the steps' (this rule runs in their environment); the Go env vars
    # are this machine's, whatever the environment: they describe the build and are
    # part of each step's key, so a remote step gets them as a local one does.
    passed = await Get(
        EnvironmentVars, {EnvironmentVarsRequest(k4s_go.env_vars): EnvironmentVarsRequest, where.local: EnvironmentName}
    )
    sdk = await Get(
        GoSdk, {sdk_request(k4s_go, platform, passed.get("GOPROXY")): GoSdkRequest, where.local: EnvironmentName}
    )
    env = {**passed, "GOROOT": GO_SDK_DIR, "GOCACHE": GO_BUILD_CACHE[1]}
    return GoToolchain(version=f"go{k4s_go.version}", sdk=sdk.digest, env=FrozenDict(env))


def rules():
    return collect_rules()
