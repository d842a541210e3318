"""The kernel an image is built for: a `linux_kernel` target, a Debian kernel package
pinned by name, version and SHA-256 per architecture.

1. `apt-get download <package>:<arch>=<version>` in a Process (this machine's apt and
   its configured sources; always run here, cacheable: its output is pinned), whose
   one `.deb` must have the pinned SHA-256 (checked on the digest, before anything
   reads it);
2. `k4stool kernel-index` (a k4s step): the kernel image, the package's control
   fields, and `modules.dep`/`modules.softdep`/`modules.alias` computed from the
   modules' `.modinfo` (Debian's package has none: its postinst runs depmod);
3. `k4stool kernel-modules` (kmods.py): the module files an image carries.

Nothing here reads the machine's `/boot` or `/lib/modules`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths
from pants.engine.addresses import Address, AddressInput
from pants.engine.environment import EnvironmentName
from pants.engine.fs import (
    CreateDigest,
    Digest,
    DigestContents,
    DigestEntries,
    DigestSubset,
    FileEntry,
    MergeDigests,
    PathGlobs,
)
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import Target, WrappedTarget, WrappedTargetRequest
from pants.util.logging import LogLevel

from k4s_plugin.grammar import DEBIAN_ARCHES
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.toolchain import K4sStepEnvironment
from k4s_plugin.rules.tools import K4sKernelTool, K4sKernelToolRequest
from k4s_plugin.targets import LinuxKernelDebianPackagesField, LinuxKernelTarget

KERNEL_DIR = "__k4s_kernel"
PACKAGES_FIELD = LinuxKernelDebianPackagesField.alias


@dataclass(frozen=True)
class LinuxKernelRequest:
    """The kernel `field` of `address` names (an address, relative to it), for `goarch`."""

    address: Address
    field: str
    kernel: str
    goarch: str


@dataclass(frozen=True)
class DebianPin:
    """One architecture's pin of a `debian_packages` field: a kernel's, or (with `what`)
    another pinned package's, such as a `uefi_stub`'s."""

    address: Address  # the linux_kernel (or uefi_stub) target
    package: str
    version: str
    arch: str
    sha256: str
    what: str = "kernel"

    @property
    def deb(self) -> str:
        return f"{KERNEL_DIR}/{self.arch}/{self.package}.deb"

    def purl(self) -> str:
        return f"pkg:deb/debian/{self.package}@{self.version}?arch={self.arch}"


@dataclass(frozen=True)
class DebianPackage:
    """A digest holding `pin.deb`, verified against `pin.sha256`."""

    pin: DebianPin
    digest: Digest


@dataclass(frozen=True)
class LinuxKernel:
    """A pinned kernel, unpacked and indexed: `image` (a digest holding `image_path`),
    the package itself (`deb`, for kmods.py) and its module index, as depmod writes it."""

    pin: DebianPin
    release: str
    deb: Digest
    image: Digest
    image_path: str
    image_sha256: str
    modules_dep: str
    modules_softdep: str
    modules_alias: str
    modules_builtin: str


async def named_pin(
    address: Address, field: str, value: str, target_type: type[Target], goarch: str, what: str, example: str,
    codes: tuple[str, str],
) -> DebianPin:
    """The `debian_packages` pin for `goarch` of the `target_type` target (a `linux_kernel`,
    a `uefi_stub`) that `field` of `address` names (`value`, relative to it); `codes`: the
    errors' for another target type and for a missing architecture."""
    origin = f"the `{field}` field of {address}"
    named = await Get(
        Address, AddressInput, AddressInput.parse(value, relative_to=address.spec_path, description_of_origin=origin),
    )
    wrapped = await Get(WrappedTarget, WrappedTargetRequest(named, description_of_origin=origin))
    if not isinstance(wrapped.target, target_type):
        raise target_error(
            address, field, f"names {named}, a `{wrapped.target.alias}` target, not a `{target_type.alias}`.",
            f"Name a `{target_type.alias}` target (e.g. {example}).", code=codes[0],
        )
    pins = wrapped.target[LinuxKernelDebianPackagesField].value or {}
    if goarch not in pins:
        raise target_error(
            address, field, f"names {named}, which pins no {what} for {goarch} (the busybox's GOARCH), "
            f"only for {', '.join(sorted(pins))}.",
            f"Add a {goarch!r} package to the `{PACKAGES_FIELD}` of {named}, or use a busybox of an "
            "architecture it has.", code=codes[1],
        )
    pin = pins[goarch]
    return DebianPin(named, pin["package"], pin["version"], goarch, pin["sha256"], what=what)


@rule(desc="Resolve a linux_kernel target")
async def resolve_linux_kernel(request: LinuxKernelRequest) -> LinuxKernel:
    pin = await named_pin(
        request.address, request.field, request.kernel, LinuxKernelTarget, request.goarch, "kernel",
        "//distros/kernel:debian", ("E_KERNEL_NOT_A_KERNEL_TARGET", "E_KERNEL_ARCH"),
    )
    package = await Get(DebianPackage, DebianPin, pin)
    return await Get(LinuxKernel, DebianPackage, package)


async def _arches_having(apt_get: str, pin: DebianPin, where: K4sStepEnvironment) -> list[str]:
    """The other architectures for which apt has the pinned package and version (asked
    only once apt could not fetch it for `pin.arch`; `--print-uris` downloads nothing)."""
    others = [a for a in DEBIAN_ARCHES if a != pin.arch]
    results = await MultiGet(
        Get(
            FallibleProcessResult,
            {
                Process(
                    (apt_get, "download", "-q", "--print-uris", f"{pin.package}:{arch}={pin.version}"),
                    description=f"Ask apt for {pin.package}:{arch}={pin.version}",
                    cache_scope=ProcessCacheScope.PER_SESSION,
                ): Process,
                where.local: EnvironmentName,
            },
        )
        for arch in others
    )
    return [a for a, r in zip(others, results) if r.exit_code == 0 and r.stdout.strip()]


@rule(desc="Fetch a pinned Debian package", level=LogLevel.DEBUG)
async def fetch_debian_package(pin: DebianPin, where: K4sStepEnvironment) -> DebianPackage:
    apt_get = await Get(BinaryPaths, BinaryPathRequest(binary_name="apt-get", search_path=("/usr/bin", "/bin")))
    spec = f"{pin.package}:{pin.arch}={pin.version}"
    if not apt_get.first_path:
        raise target_error(
            pin.address, PACKAGES_FIELD, f"pins {spec}, which k4s fetches with `apt-get download`, "
            "and apt-get is not in /usr/bin or /bin.",
            "Build on a Debian or Ubuntu machine (a container will do), or fetch it once where "
            "apt-get exists and share Pants' cache (docs/remote.md, \"Remote cache\").",
            code="E_KERNEL_APT",
        )
    # Here, not on remote executors: the machine's apt sources. Cacheable: the output
    # is pinned by its SHA-256, whatever mirror served it. apt names the file
    # <package>_<version, ':' as %3a>_<arch>.deb; captured by that name (an output
    # directory "." did not come back from a remote cache: 0 files).
    deb_name = f"{pin.package}_{pin.version.replace(':', '%3a')}_{pin.arch}.deb"
    result = await Get(
        FallibleProcessResult,
        {
            Process(
                (apt_get.first_path.path, "download", "-q", spec),
                description=f"apt-get download {spec}",
                output_files=(deb_name,),
                level=LogLevel.INFO,
            ): Process,
            where.local: EnvironmentName,
        },
    )
    if result.exit_code != 0:
        elsewhere = await _arches_having(apt_get.first_path.path, pin, where)
        if elsewhere:
            raise target_error(
                pin.address, PACKAGES_FIELD, f"pins under {pin.arch!r} the package {pin.package} "
                f"{pin.version}, which apt has for {', '.join(elsewhere)}, not {pin.arch}: a {pin.what} "
                "of another architecture than the images that use this pin.",
                f"Pin a {pin.arch} {pin.what} package under {pin.arch!r} (`{_finding(pin)}`), and this "
                f"one under {elsewhere[0]!r}.",
                code="E_KERNEL_ARCH",
            )
        foreign = (
            f" For a foreign architecture, `dpkg --add-architecture {pin.arch} && apt-get update` "
            "(build-support/host-tools does this for arm64)." if pin.arch != "amd64" else ""
        )
        raise target_error(
            pin.address, PACKAGES_FIELD, f"pins {spec}, which `apt-get download` could not fetch:\n\n"
            f"{result.stderr.decode(errors='replace').strip()}",
            f"Run `apt-get update`; `apt-cache policy {pin.package}:{pin.arch}` must list version "
            f"{pin.version}. If the archive has dropped it (Debian's security archive keeps only the "
            "newest), pin the version it lists, with its .deb's sha256." + foreign,
            code="E_KERNEL_APT",
        )
    entries = await Get(DigestEntries, Digest, result.output_digest)
    debs = [e for e in entries if isinstance(e, FileEntry) and e.path.endswith(".deb")]
    if len(debs) != 1:
        raise target_error(
            pin.address, PACKAGES_FIELD, f"pins {spec}, and `apt-get download` gave "
            f"{len(debs)} .deb files ({', '.join(e.path for e in debs)}).",
            f"Pin one package (a `{_example(pin)}` package, not a pattern).", code="E_KERNEL_APT",
        )
    got = debs[0].file_digest.fingerprint
    if got != pin.sha256:
        raise target_error(
            pin.address, PACKAGES_FIELD, f"pins {spec} with sha256 {pin.sha256}, and the .deb "
            f"apt-get fetched ({debs[0].path}, {debs[0].file_digest.serialized_bytes_length} bytes) "
            f"has sha256 {got}.",
            "If you moved the pin to this package on purpose, set its sha256 to the one above "
            "after checking it (`apt-get download` and `sha256sum` on a trusted machine); "
            "otherwise your apt sources serve another file under this name and version: do not "
            "build with it.",
            code="E_KERNEL_SHA256",
        )
    digest = await Get(Digest, CreateDigest([FileEntry(pin.deb, debs[0].file_digest)]))
    return DebianPackage(pin, digest)


def _example(pin: DebianPin) -> str:
    """The package a pin of this kind names, for messages."""
    return "linux-image-<release>" if pin.what == "kernel" else pin.package


def _finding(pin: DebianPin) -> str:
    """How to find a package of this kind for `pin.arch`, for messages."""
    if pin.what == "kernel":
        return f"apt-cache search linux-image-.*-{pin.arch}"
    return f"apt-cache policy {pin.package}:{pin.arch}"


@rule(desc="Unpack and index a kernel package")
async def index_kernel_package(package: DebianPackage) -> LinuxKernel:
    pin = package.pin
    tools = await Get(K4sKernelTool, K4sKernelToolRequest())
    out = f"{KERNEL_DIR}/{pin.arch}/index"
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=pin.address,
            step="kernel-index",
            argv=(tools.k4stool, "kernel-index", "-deb", pin.deb, "-arch", pin.arch, "-out", out),
            input_digest=await Get(Digest, MergeDigests([tools.digest, package.digest])),
            output_files=(),
            output_directories=(out,),
            description=f"Unpack and index {pin.package} {pin.version} ({pin.arch})",
        ),
    )
    image_path = f"{out}/vmlinuz"
    texts_digest, image, entries = await MultiGet(
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([f"{out}/index.json", f"{out}/modules.*"]))),
        Get(Digest, DigestSubset(result.output_digest, PathGlobs([image_path]))),
        Get(DigestEntries, Digest, result.output_digest),
    )
    texts = {
        c.path.rsplit("/", 1)[1]: c.content.decode()
        for c in await Get(DigestContents, Digest, texts_digest)
    }
    index = json.loads(texts["index.json"])
    if index["package"] != pin.package or index["version"] != pin.version:
        raise target_error(
            pin.address, PACKAGES_FIELD, f"pins {pin.package} {pin.version} ({pin.arch}), and the "
            f"package with that sha256 is {index['package']} {index['version']}.",
            "Pin the package's own name and version with its sha256.", code="E_KERNEL_NOT_KERNEL",
        )
    image_sha256 = next(e.file_digest.fingerprint for e in entries if isinstance(e, FileEntry) and e.path == image_path)
    return LinuxKernel(
        pin=pin,
        release=index["release"],
        deb=package.digest,
        image=image,
        image_path=image_path,
        image_sha256=image_sha256,
        modules_dep=texts["modules.dep"],
        modules_softdep=texts["modules.softdep"],
        modules_alias=texts["modules.alias"],
        modules_builtin=texts.get("modules.builtin", ""),
    )


def rules():
    return collect_rules()
