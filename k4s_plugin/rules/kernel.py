"""This machine's kernel: the one `pants run` boots (`/boot/vmlinuz-<version>`) and
whose modules an image carries (`/lib/modules/<version>`), picked once, so that the two
never belong to different kernels.

Both live outside the build root, so they are listed by a process that is never
cached (`ProcessCacheScope.PER_SESSION`).
"""

from __future__ import annotations

import os.path
from dataclasses import dataclass

from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths
from pants.engine.addresses import Address
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import Get, collect_rules, rule

from k4s_plugin.rules.errors import target_error


@dataclass(frozen=True)
class HostKernelRequest:
    """`field` of `address` needs this machine's kernel (named in errors)."""

    address: Address
    field: str


@dataclass(frozen=True)
class HostKernel:
    """The newest kernel version installed here, by version order (6.1.0-10 after 6.1.0-9):
    its image and its module tree, each None when this machine lacks it."""

    version: str
    image: str | None
    modules_dir: str | None


def version_key(version: str) -> list:
    parts = version.replace("-", ".").split(".")
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def pick(paths: list[str]) -> HostKernel | None:
    """The newest version among `/boot/vmlinuz-<v>` and `/lib/modules/<v>/modules.dep`."""
    images = {os.path.basename(p)[len("vmlinuz-"):]: p for p in paths if os.path.basename(p).startswith("vmlinuz-")}
    trees = {os.path.basename(os.path.dirname(p)): os.path.dirname(p) for p in paths if p.endswith("/modules.dep")}
    versions = set(images) | set(trees)
    if not versions:
        return None
    newest = max(versions, key=version_key)
    return HostKernel(newest, images.get(newest), trees.get(newest))


@rule(desc="Find this machine's kernel")
async def host_kernel(request: HostKernelRequest) -> HostKernel:
    find = await Get(BinaryPaths, BinaryPathRequest(binary_name="find", search_path=("/usr/bin", "/bin")))
    if not find.first_path:
        raise target_error(
            request.address, request.field, "needs this machine's kernel, and finding it needs "
            "`find`, which is not in /usr/bin or /bin.", "Install findutils.",
        )
    # A missing /boot or /lib/modules makes find exit 1; what it lists still counts.
    listing = await Get(
        FallibleProcessResult,
        Process(
            (find.first_path.path, "/boot", "/lib/modules", "-maxdepth", "2",
             "(", "-name", "vmlinuz-*", "-o", "-name", "modules.dep", ")"),
            description="Find the kernels of this machine",
            cache_scope=ProcessCacheScope.PER_SESSION,
        ),
    )
    kernel = pick(listing.stdout.decode().split())
    if kernel is None:
        raise target_error(
            request.address, request.field, "needs this machine's kernel, and there is no "
            "/boot/vmlinuz-* or /lib/modules/*/modules.dep.",
            "Install a kernel (Debian: `apt-get install linux-image-amd64`) or set the field "
            "to your own.",
        )
    return kernel


def rules():
    return collect_rules()
