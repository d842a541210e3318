"""Kernel modules for an initramfs: from the pinned kernel of its `linux_kernel`
(kernel.py; cached steps, the same bytes on every machine), or, when the target asks
for it with `kernel_modules_dir`, from a module tree on this machine.

A tree on this machine is outside the build root, so it is read by processes that are
never cached (`ProcessCacheScope.PER_SESSION`): their outputs (the module files) are
what the cacheable cpio step depends on, so a changed tree changes the image.
"""

from __future__ import annotations

import os.path
from dataclasses import dataclass

from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPaths
from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope, ProcessResult
from pants.engine.rules import Get, MultiGet, collect_rules, rule

from k4s_plugin import grammar
from k4s_plugin.rules.errors import target_error
from k4s_plugin.rules.kernel import LinuxKernel
from k4s_plugin.rules.steps import K4sStep, K4sStepResult
from k4s_plugin.rules.tools import K4sKernelTool, K4sKernelToolRequest

KMODS_DIR = "__k4s_kmods"


@dataclass(frozen=True)
class KernelModulesRequest:
    address: Address
    names: tuple[str, ...]
    modules_dir: str | None
    kernel: LinuxKernel | None = None


@dataclass(frozen=True)
class KernelModules:
    """Files under KMODS_DIR/<module tree path>, and cpio records for them."""

    digest: Digest
    records: tuple[tuple[str, str], ...]  # (image path, sandbox path)
    load_order: tuple[str, ...]  # module files, relative to the tree, dependencies first


async def _binary(address: Address, name: str) -> str:
    paths = await Get(BinaryPaths, BinaryPathRequest(binary_name=name, search_path=("/usr/bin", "/bin")))
    if not paths.first_path:
        raise target_error(
            address, "kernel_modules", f"is set, and reading kernel modules needs `{name}`, "
            "which is not in /usr/bin or /bin.", "Install coreutils and findutils.",
        )
    return paths.first_path.path


def _norm(name: str) -> str:
    return name.replace("-", "_")


def _softdeps(softdep_text: str, alias_text: str) -> dict[str, list[str]]:
    """Each module's `softdep ... pre:` modules (modules.softdep), aliases resolved to
    module names (modules.alias): e.g. libcrc32c needs a crc32c implementation loaded
    first, which modprobe would load and a plain insmod does not."""
    aliases: dict[str, list[str]] = {}
    for line in alias_text.splitlines():
        f = line.split()
        if len(f) == 3 and f[0] == "alias":
            aliases.setdefault(f[1], []).append(_norm(f[2]))
    pre: dict[str, list[str]] = {}
    for line in softdep_text.splitlines():
        f = line.split()
        if len(f) < 3 or f[0] != "softdep":
            continue
        names, take = [], False
        for word in f[2:]:
            if word.endswith(":"):
                take = word == "pre:"
            elif take:
                names += aliases.get(word, [_norm(word)])
        pre[_norm(f[1])] = names
    return pre


def _closure(
    dep_text: str, names: tuple[str, ...], softdeps: dict[str, list[str]] | None = None
) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """(module files in load order, names not found, each file's dependencies) from
    modules.dep, with each module's soft pre-dependencies (that exist) loaded before it."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in dep_text.splitlines():
        mod, sep, rest = line.partition(":")
        if not sep:
            continue
        deps[mod] = rest.split()
        base = os.path.basename(mod)
        by_name[_norm(base.split(".ko")[0])] = mod
    order: list[str] = []
    missing = []
    active: list[str] = []  # the path of modules being visited: a cycle if one comes back

    def visit(mod: str) -> None:
        if mod in order:
            return
        if mod in active:
            # Without this, a modules.dep cycle was a RecursionError. (A soft dependency
            # cycle is not an error: the module loads without its soft pre-dependency.)
            raise ValueError(" -> ".join(active[active.index(mod):] + [mod]))
        active.append(mod)
        name = _norm(os.path.basename(mod).split(".ko")[0])
        for soft in (softdeps or {}).get(name, ()):
            if soft in by_name and by_name[soft] != mod and by_name[soft] not in active:
                visit(by_name[soft])
        for d in deps.get(mod, ()):
            visit(d)
        active.pop()
        if mod not in order:
            order.append(mod)

    for n in names:
        mod = by_name.get(_norm(n))
        if mod is None:
            missing.append(n)
        else:
            visit(mod)
    return order, missing, deps


def _kmod_records(digest_prefix: str, release: str, order: list[str], deps: dict[str, list[str]]):
    """The dependency-closure's modules.dep and load-order list, and the cpio records of
    the module files (under `digest_prefix` in the sandbox) and of those two."""
    image_dir = f"lib/modules/{release}"
    dep_lines = [f"{m}: {' '.join(deps[m])}".rstrip() + "\n" for m in order]
    contents = [
        FileContent(f"{KMODS_DIR}/k4s/modules.dep", "".join(dep_lines).encode()),
        FileContent(f"{KMODS_DIR}/k4s/k4s.conf", "".join(f"{image_dir}/{m}\n" for m in order).encode()),
    ]
    records = [(f"{image_dir}/{m}", f"{digest_prefix}/{m}") for m in order]
    records += [
        (f"{image_dir}/modules.dep", f"{KMODS_DIR}/k4s/modules.dep"),
        ("etc/modules-load.d/k4s.conf", f"{KMODS_DIR}/k4s/k4s.conf"),
    ]
    return contents, records


def _builtin(builtin_text: str) -> set[str]:
    return {_norm(line.rsplit("/", 1)[-1].split(".ko")[0]) for line in builtin_text.split()}


async def _from_kernel(request: KernelModulesRequest, kernel: LinuxKernel) -> KernelModules:
    """The modules from the pinned kernel package (k4stool kernel-modules)."""
    softdeps = _softdeps(kernel.modules_softdep, kernel.modules_alias)
    order, missing, deps = _closure(kernel.modules_dep, request.names, softdeps)
    if missing:
        builtin = _builtin(kernel.modules_builtin)
        inside = [n for n in missing if _norm(n) in builtin]
        why = f" ({', '.join(inside)} built into that kernel)" if inside else " (misspelt?)"
        raise target_error(
            request.address, "kernel_modules", f"names {', '.join(missing)}, which "
            f"{kernel.pin.package} {kernel.pin.version} ({kernel.pin.arch}, from "
            f"{kernel.pin.address}) has no module for{why}.",
            "Drop built-in modules and fix misspelt names (`lsmod` names; the kernel's "
            "modules are listed by `dpkg -c` of its package), or pin a kernel that has them.",
            code="E_KERNEL_MODULE_MISSING",
        )
    tools = await Get(K4sKernelTool, K4sKernelToolRequest())
    out = f"{KMODS_DIR}/{kernel.release}"
    result = await Get(
        K4sStepResult,
        K4sStep(
            address=kernel.pin.address,
            step="kernel-modules",
            argv=(tools.k4stool, "kernel-modules", "-deb", kernel.pin.deb, "-out", out, "--", *order),
            input_digest=await Get(Digest, MergeDigests([tools.digest, kernel.deb])),
            output_files=(),
            output_directories=(out,),
            description=f"Unpack {len(order)} modules of {kernel.pin.package} ({kernel.pin.arch})",
        ),
    )
    contents, records = _kmod_records(out, kernel.release, order, deps)
    digest = await Get(Digest, MergeDigests([result.output_digest, await Get(Digest, CreateDigest(contents))]))
    return KernelModules(digest, tuple(records), tuple(order))
async def _inside_tree(address: Address, modules_dir: str, paths: list[str]) -> None:
    """No module file is a link out of the tree (`kernel/x.ko -> /etc/hostname` put the
    machine's file into the image): each resolves to a file inside the tree's own
    resolved path. A link inside the tree is fine; a loop of links is an error."""
    realpath = await _binary(address, "realpath")
    resolved = await Get(
        FallibleProcessResult,
        Process(
            (realpath, "-e", "--", modules_dir, *(f"{modules_dir}/{m}" for m in paths)),
            description=f"Resolve {len(paths)} paths in {modules_dir}",
            cache_scope=ProcessCacheScope.PER_SESSION,
        ),
    )
    if resolved.exit_code != 0:
        raise target_error(
            address, "kernel_modules_dir", f"is {modules_dir}, where {', '.join(paths[:3])}"
            f"{' ...' if len(paths) > 3 else ''} cannot be resolved: "
            f"{resolved.stderr.decode(errors='replace').strip()}",
            "Point it at a complete module tree (no dangling or looping links), or run `depmod`.",
        )
    root, *real = resolved.stdout.decode(errors="replace").splitlines()
    outside = [m for m, p in zip(paths, real) if not p.startswith(root.rstrip("/") + "/")]
    if outside or len(real) != len(paths):
        raise target_error(
            address, "kernel_modules_dir", f"is {modules_dir}, whose files "
            f"{', '.join(outside) or '(unreadable)'} are links out of the tree: the image would "
            "carry files of this machine that are not kernel modules.",
            "Replace the links with the module files, or point `kernel_modules_dir` at a real module tree.",
        )


@rule(desc="Collect kernel modules for an initramfs")
async def collect_kernel_modules(request: KernelModulesRequest) -> KernelModules:
    if not request.names:
        return KernelModules(await Get(Digest, MergeDigests([])), (), ())
    if not request.modules_dir:
        if request.kernel is None:
            raise target_error(
                request.address, "kernel_modules", "is set, and the target names no kernel to take "
                "them from: neither `linux_kernel` nor `kernel_modules_dir` is set.",
                "Set `linux_kernel` to a `linux_kernel` target (this repository's: "
                "\"//distros/kernel:debian\"), or `kernel_modules_dir` to a module tree of this machine.",
                code="E_KERNEL_NONE",
            )
        return await _from_kernel(request, request.kernel)
    modules_dir = os.path.normpath(request.modules_dir)

    # modules.dep itself is read only if it is the tree's own (its lines end up in messages).
    await _inside_tree(request.address, modules_dir, ["modules.dep"])
    cat = await _binary(request.address, "cat")
    # modules.softdep and modules.alias may be missing from a hand-made tree: optional.
    dep, softdep, alias = await MultiGet(
        Get(
            FallibleProcessResult,
            Process(
                (cat, f"{modules_dir}/{f}"),
                description=f"Read {modules_dir}/{f}",
                cache_scope=ProcessCacheScope.PER_SESSION,
            ),
        )
        for f in ("modules.dep", "modules.softdep", "modules.alias")
    )
    if dep.exit_code != 0:
        raise target_error(
            request.address, "kernel_modules_dir", f"is {modules_dir}, which has no readable "
            f"modules.dep: {dep.stderr.decode(errors='replace').strip()}",
            "Point it at a kernel's module tree, or run `depmod` for that kernel.",
        )
    optional = [r.stdout.decode() if r.exit_code == 0 else "" for r in (softdep, alias)]
    try:
        order, missing, deps = _closure(dep.stdout.decode(errors="replace"), request.names, _softdeps(*optional))
    except ValueError as cycle:
        raise target_error(
            request.address, "kernel_modules_dir", f"is {modules_dir}, whose modules.dep has a "
            f"dependency cycle: {cycle}.", "Regenerate modules.dep with `depmod` (it refuses cycles).",
        )
    bad = [
        m for m in order if grammar.relative_path_problem(m) or not m.endswith((".ko", ".ko.xz", ".ko.zst", ".ko.gz"))
    ]
    if bad:
        raise target_error(
            request.address, "kernel_modules_dir", f"is {modules_dir}, whose modules.dep names "
            f"{', '.join(bad)}: not module files inside that tree.",
            "Point `kernel_modules_dir` at a kernel's module tree (with a modules.dep made by depmod).",
        )
    if missing:
        raise target_error(
            request.address, "kernel_modules", f"names {', '.join(missing)}, not in "
            f"{modules_dir}/modules.dep (built into the kernel, or misspelt?).",
            f"Drop built-in modules (see {modules_dir}/modules.builtin) or fix the names.",
        )
    await _inside_tree(request.address, modules_dir, order)
    cp = await _binary(request.address, "cp")
    copied = await Get(
        ProcessResult,
        Process(
            (cp, "--parents", "-t", KMODS_DIR, *(f"{modules_dir}/{m}" for m in order)),
            description=f"Copy {len(order)} kernel modules from {modules_dir}",
            output_directories=(KMODS_DIR,),
            cache_scope=ProcessCacheScope.PER_SESSION,
            # cp --parents needs the destination directory to exist.
            input_digest=await Get(Digest, CreateDigest([FileContent(f"{KMODS_DIR}/.keep", b"")])),
        ),
    )
    contents, records = _kmod_records(f"{KMODS_DIR}{modules_dir}", os.path.basename(modules_dir), order, deps)
    digest = await Get(Digest, MergeDigests([copied.output_digest, await Get(Digest, CreateDigest(contents))]))
    return KernelModules(digest, tuple(records), tuple(order))


def rules():
    return collect_rules()
