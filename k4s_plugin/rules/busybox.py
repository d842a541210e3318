"""A go_busybox as the build steps see it: its FieldSet, its Go module, and
`BusyboxBuildRequest`, the one place that reads the FieldSet for the steps.

Each step (download.py, rewrite.py, gobuild.py) narrows a `BusyboxBuildRequest` to
its own request with a rule, so `Get(BusyboxBinary, BusyboxBuildRequest, busybox)`
(or `..., GoBusyboxFieldSet, field_set)`) runs the whole chain.
"""

from __future__ import annotations

import os.path
import re
from dataclasses import dataclass

from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
from pants.engine.addresses import Address
from pants.engine.fs import Digest, DigestContents, DigestSubset, MergeDigests, PathGlobs
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.target import (
    FieldSet,
    SourcesField,
    WrappedTarget,
    WrappedTargetRequest,
)
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules.addresses import field_address, field_addresses
from k4s_plugin.rules.errors import target_error
from k4s_plugin.targets import (
    GoBusyboxBuildTagsField,
    GoBusyboxCommandNamesField,
    GoBusyboxCommandsField,
    GoBusyboxGoarchField,
    GoBusyboxGoosField,
    GoBusyboxLdflagsField,
    GoBusyboxLocalModulesField,
    GoBusyboxModSourcesField,
    GoBusyboxPatchesField,
    GoBusyboxTarget,
)


@dataclass(frozen=True)
class GoBusyboxFieldSet(FieldSet):
    required_fields = (GoBusyboxCommandsField, GoBusyboxModSourcesField)

    commands: GoBusyboxCommandsField
    sources: GoBusyboxModSourcesField
    goos: GoBusyboxGoosField
    goarch: GoBusyboxGoarchField
    build_tags: GoBusyboxBuildTagsField
    ldflags: GoBusyboxLdflagsField
    command_names: GoBusyboxCommandNamesField
    patches: GoBusyboxPatchesField
    local_modules: GoBusyboxLocalModulesField


@dataclass(frozen=True)
class GoBuildOptions:
    """The target platform and build tags, which every step passes to k4stool alike."""

    goos: str
    goarch: str
    build_tags: tuple[str, ...]

    def target_env(self) -> FrozenDict[str, str]:
        return FrozenDict({"GOOS": self.goos, "GOARCH": self.goarch})

    def tag_args(self) -> tuple[str, ...]:
        return tuple(a for t in self.build_tags for a in ("-tag", t))


@dataclass(frozen=True)
class BusyboxBuildRequest:
    """What the steps read of a go_busybox, taken from its FieldSet (or a subclass,
    such as the package goal's) by `from_field_set`."""

    address: Address
    sources: GoBusyboxModSourcesField
    local_modules: GoBusyboxLocalModulesField
    commands: tuple[str, ...]
    command_names: FrozenDict[str, str]  # import path -> name
    options: GoBuildOptions
    ldflags: tuple[str, ...]
    patches: tuple[str, ...]  # build-root paths, in the order the field lists them

    @classmethod
    def from_field_set(cls, field_set: GoBusyboxFieldSet) -> BusyboxBuildRequest:
        return cls(
            address=field_set.address,
            sources=field_set.sources,
            local_modules=field_set.local_modules,
            commands=tuple(field_set.commands.value),
            command_names=FrozenDict(field_set.command_names.value or {}),
            options=GoBuildOptions(
                field_set.goos.value, field_set.goarch.value, tuple(field_set.build_tags.value or ())
            ),
            ldflags=tuple(field_set.ldflags.value or ()),
            patches=field_set.patches.paths(),
        )


@rule
def busybox_build_request(field_set: GoBusyboxFieldSet) -> BusyboxBuildRequest:
    return BusyboxBuildRequest.from_field_set(field_set)


async def busybox_of(address: Address, field) -> GoBusyboxFieldSet:
    """The go_busybox a `busybox` field (of an initramfs or oci_image) names."""
    bb_address = await field_address(field, field.value)
    wrapped = await Get(
        WrappedTarget,
        WrappedTargetRequest(bb_address, description_of_origin=f"the `{field.alias}` field of {address}"),
    )
    if not isinstance(wrapped.target, GoBusyboxTarget):
        raise target_error(
            address, field.alias,
            f"points at {bb_address}, a `{wrapped.target.alias}` target, not a `go_busybox`.",
            "Give the address of a `go_busybox` target, e.g. `busybox=\":bb\"`.",
        )
    return GoBusyboxFieldSet.create(wrapped.target)


@dataclass(frozen=True)
class GoModule:
    """The go.mod/go.sum of a go_busybox and its first-party sources, with those of its
    `local_modules` at their repository paths, in a digest; and the go.mod directory."""

    address: Address
    digest: Digest
    dir: str
    path: str  # the module path go.mod declares ("" if it declares none)
    local_modules: bool  # whether the target has `local_modules`


@rule
async def go_module(busybox: BusyboxBuildRequest) -> GoModule:
    addresses = await field_addresses(busybox.local_modules)
    origin = f"the `local_modules` field of {busybox.address}"
    wrapped = await MultiGet(
        Get(WrappedTarget, WrappedTargetRequest(a, description_of_origin=origin)) for a in addresses
    )
    local_sources = []
    for address, w in zip(addresses, wrapped):
        if not w.target.has_field(SourcesField):
            raise target_error(
                busybox.address, "local_modules", f"names {address}, a `{w.target.alias}` target "
                "without sources.", "Name a `files` target that holds the module's go.mod, go.sum "
                "and Go files.",
            )
        local_sources.append(w.target[SourcesField])
    files, *local = await MultiGet(
        Get(SourceFiles, SourceFilesRequest([busybox.sources])),
        *(Get(SourceFiles, SourceFilesRequest([s])) for s in local_sources),
    )
    gomod = next(f for f in files.files if f.endswith("go.mod"))
    for address, sources in zip(addresses, local):
        mods = [f for f in sources.files if os.path.basename(f) == "go.mod"]
        if not mods:
            raise target_error(
                busybox.address, "local_modules", f"names {address}, whose files hold no go.mod.",
                "Add the module's go.mod and go.sum to that target's `sources`.",
            )
        if gomod in mods:
            raise target_error(
                busybox.address, "local_modules", f"names {address}, whose files are this "
                f"target's own module ({gomod}): a module cannot replace itself.",
                "List only other modules that go.mod replaces with a directory; this "
                "module's own commands need no entry.",
            )
    gomod_text = (await Get(DigestContents, DigestSubset(files.snapshot.digest, PathGlobs([gomod]))))[0].content
    gomod_str = gomod_text.decode(errors="replace")
    _check_first_party_commands(busybox, gomod_str, os.path.dirname(gomod), files.files)
    digest = await Get(Digest, MergeDigests([files.snapshot.digest, *(s.snapshot.digest for s in local)]))
    m = _MODULE.search(gomod_str)
    return GoModule(busybox.address, digest, os.path.dirname(gomod) or ".", m.group(1) if m else "", bool(addresses))


_MODULE = re.compile(r'^\s*module\s+"?([^\s"]+)"?', re.M)


def _check_first_party_commands(busybox: BusyboxBuildRequest, gomod: str, moddir: str, files) -> None:
    """An explicit command of this target's own module has non-test Go files in
    `sources` (a directory of only `_test.go` files got the `go get` fix of a missing
    module)."""
    m = _MODULE.search(gomod)
    if not m:
        return
    module = m.group(1)
    for pattern in busybox.commands:
        in_module = pattern == module or pattern.startswith(module + "/")
        if pattern.startswith("-") or any(c in pattern for c in "*?[") or not in_module:
            continue
        pkg_dir = os.path.normpath(os.path.join(moddir, pattern[len(module) + 1:]))
        if not any(os.path.dirname(f) == pkg_dir and f.endswith(".go") and not f.endswith("_test.go") for f in files):
            raise target_error(
                busybox.address, "commands",
                f"names {pattern}, a package of this target's own module ({module}), but `sources` "
                f"hold no Go files (other than tests) in {pkg_dir}/.",
                "Fix the import path, or add the command's .go files to `sources` (test files "
                "are not built).",
            )


def rules():
    return collect_rules()
