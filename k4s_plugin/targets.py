"""Target types of k4s: `go_busybox` (one busybox binary of many Go commands),
`initramfs` (a bootable newc cpio around one), `oci_image` (a container image of one)
and `linux_kernel` (a pinned kernel package), with their fields: help, defaults and
validation. A field whose every element one `grammar` rule checks says so in
`check_element` (see `_EachElementChecked`); the loop over the elements is in `_coded`."""

from __future__ import annotations

import functools
import os.path
import re
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, Mapping, Optional, Tuple

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    AsyncFieldMixin,
    BoolField,
    Dependencies,
    DictStringToStringField,
    IntField,
    InvalidFieldException,
    MultipleSourcesField,
    NestedDictStringToStringField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.frozendict import FrozenDict
from pants.util.strutil import softwrap

from k4s_plugin import grammar


def _check(
    problem: str | None, field: str, address: Address, value: Any, fix: str, because: str = ""
) -> None:
    """Raises the error for a bad BUILD value if a `grammar` rule found a problem."""
    if problem:
        raise _invalid(field, address, value, problem + because, fix)


# The code every error about a BUILD value starts with (`k4s: E_BAD_FIELD: The ...`).
BAD_FIELD = "E_BAD_FIELD"


def _invalid(field: str, address: Address, value: Any, reason: str, fix: str) -> InvalidFieldException:
    """The error for a bad BUILD value: the target, the field, the value, why, and the fix."""
    return InvalidFieldException(
        f"k4s: {BAD_FIELD}: The `{field}` field of {address} has {_show(value)}: {reason}.\n\nFix: {fix}"
    )


def _show(value: Any) -> str:
    """A value for a message, cut to a readable length (a 100,000-character value is
    named, not printed)."""
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:120]}... ({len(text):,} characters)"


@dataclass(frozen=True)
class _Rule:
    """A `grammar` rule one element (or a dict's key or value) of a field obeys, and the
    fix its error gives."""

    problem: Callable[[str], Optional[str]]
    fix: str
    because: str = ""

    def check(self, field: str, address: Address, value: str) -> None:
        _check(self.problem(value), field, address, value, self.fix, self.because)


class _EachElementChecked:
    """A sequence or dict field whose every element (a dict: every `(key, value)` item)
    is checked by `check_element`, then the whole value by `check_value`; `_coded` runs
    them after Pants' own conversion, for every field of this module that has them. Most
    fields only name their `grammar` rule: `element_rule`, or `key_rule`/`value_rule`."""

    element_rule: ClassVar[Optional[_Rule]] = None
    key_rule: ClassVar[Optional[_Rule]] = None
    value_rule: ClassVar[Optional[_Rule]] = None
    alias: ClassVar[str]

    @classmethod
    def check_element(cls, element: Any, address: Address) -> None:
        if isinstance(element, tuple):
            key, value = element
            for rule, part in ((cls.key_rule, key), (cls.value_rule, value)):
                if rule:
                    rule.check(cls.alias, address, part)
        elif cls.element_rule:
            cls.element_rule.check(cls.alias, address, element)

    @classmethod
    def check_value(cls, value: Any, address: Address) -> None:
        """Checks of the whole value, after every element passed (none by default)."""


def _check_elements(cls: type, value: Any, address: Address) -> None:
    """The one loop over a `_EachElementChecked` field's elements."""
    if not issubclass(cls, _EachElementChecked) or value is None:
        return
    for element in value.items() if isinstance(value, Mapping) else value:
        cls.check_element(element, address)
    cls.check_value(value, address)


def _coded(cls: type) -> type:
    """Makes every error `cls.compute_value` raises a coded k4s error: Pants' own checks
    (types, `valid_choices`) say "The 'goos' field in target p:t must be one of ..."; with
    the code in front, every bad BUILD value fails the same recognisable way. Runs the
    element checks of a `_EachElementChecked` field too."""
    compute = cls.__dict__.get("compute_value")
    inner = compute.__func__ if compute is not None else None

    def compute_value(c, raw_value, address):
        try:
            if inner is not None:
                value = inner(c, raw_value, address)
            else:
                value = super(cls, c).compute_value(raw_value, address)
            _check_elements(c, value, address)
            return value
        except InvalidFieldException as e:
            if str(e).startswith("k4s: E_"):
                raise
            raise InvalidFieldException(f"k4s: {BAD_FIELD}: {e}") from None

    # Pants' help reads `raw_value`'s type from the method's annotations.
    original = inner if inner is not None else super(cls, cls).compute_value.__func__
    functools.update_wrapper(compute_value, original)
    cls.compute_value = classmethod(compute_value)
    return cls


def _check_target_name(address: Address) -> None:
    """A k4s target's name becomes file names (its default `output_path`, an image's
    `var/lib/k4s/images/<name>.tar`): checked like an explicit path."""
    _check(
        grammar.target_name_problem(address.target_name), "name", address, address.target_name,
        "Rename the target to a plain name such as 'initramfs' or 'bb'.",
    )

# ---------------------------------------------------------------------------------------
# go_busybox
# ---------------------------------------------------------------------------------------


class GoBusyboxCommandsField(_EachElementChecked, StringSequenceField):
    alias = "commands"
    required = True
    help = softwrap(
        """
        The Go commands (`package main`) to build into the busybox, as Go import paths,
        exactly as gobusybox's `makebb` accepts them:

        - a package path: `github.com/u-root/u-root/cmds/core/ls`;
        - a glob on the last elements: `github.com/u-root/u-root/cmds/core/*`
          (packages that are not commands, or whose files build constraints exclude,
          are skipped for globs);
        - an exclusion, with a leading `-`: `-github.com/u-root/u-root/cmds/core/bind`.

        Every module these packages import must be pinned in this target's `go.sum`
        (`pants k4s-tidy` derives the directory's `tools.go` from this field and tidies
        go.mod and go.sum with the `patches` applied). A command's name,
        and so its `bbin/<name>` link, is the last element of its path, or the one
        before a major-version suffix like `/v3`; see `command_names`.
        """
    )

    element_rule = _Rule(
        grammar.command_pattern_problem,
        "Write commands as import paths (e.g. 'github.com/u-root/u-root/cmds/core/ls'), "
        "optionally with a glob in the last elements or one leading '-' to exclude.",
        ", so it is not a Go import path",
    )

    @classmethod
    def check_value(cls, value: Tuple[str, ...], address: Address) -> None:
        if not any(not p.startswith("-") for p in value):
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} has only exclusions. Add at least one "
                "command import path."
            )


class GoBusyboxModSourcesField(MultipleSourcesField):
    alias = "sources"
    default = ("go.mod", "go.sum", "**/*.go", "!**/*_test.go")
    # Any file: first-party commands embed files (`//go:embed`), which must be here.
    expected_file_extensions = None
    help = softwrap(
        """
        The Go module of this busybox, relative to the BUILD file: exactly one `go.mod`
        and the `go.sum` next to it, plus the Go files of any first-party commands in
        that module (listed in `commands` by their import path under the module path).

        `go.mod` names the modules the commands come from (with `replace` directives if
        needed); `go.sum` is the authority for their content: modules are downloaded
        through `GOPROXY` and verified against it, and a build that needs a module
        `go.sum` does not list fails. Add files that first-party commands embed
        (`//go:embed`) here too.
        """
    )

    def validate_resolved_files(self, files) -> None:
        super().validate_resolved_files(files)
        mods = [f for f in files if os.path.basename(f) == "go.mod"]
        sums = [f for f in files if os.path.basename(f) == "go.sum"]
        if len(mods) != 1 or len(sums) != 1 or os.path.dirname(mods[0]) != os.path.dirname(sums[0]):
            raise InvalidFieldException(
                f"k4s: {BAD_FIELD}: The `{self.alias}` field of {self.address} must match exactly one go.mod "
                f"and the go.sum next to it, but matched go.mod files {mods} and go.sum "
                f"files {sums}. Create go.sum next to go.mod (an empty file will do) and run "
                "`pants k4s-tidy` on this target to fill it."
            )
        top = os.path.dirname(mods[0])
        outside = [f for f in files if top and not f.startswith(top + "/")]
        if outside:
            raise InvalidFieldException(
                f"k4s: {BAD_FIELD}: The `{self.alias}` field of {self.address} has files outside the module "
                f"directory {top}: {outside}."
            )


class GoBusyboxGoosField(StringField):
    alias = "goos"
    default = "linux"
    help = "The `GOOS` to build for. k4s images are Linux initramfs images, so keep `linux`."
    valid_choices = ("linux",)


class GoBusyboxGoarchField(StringField):
    alias = "goarch"
    default = "amd64"
    help = softwrap(
        """
        The `GOARCH` to build for (`amd64`, `arm64`, ...). Use `parametrize` to build
        several: `goarch=parametrize("amd64", "arm64")`.
        """
    )
    valid_choices = ("amd64", "arm64", "386", "arm", "riscv64", "ppc64le", "s390x", "loong64")


class GoBusyboxBuildTagsField(_EachElementChecked, StringSequenceField):
    alias = "build_tags"
    default = ()
    help = softwrap(
        """
        Go build tags, used both when resolving and rewriting the commands and when
        compiling (`-tags`). For example `["netgo", "osusergo"]`, or the tags a project
        uses to drop cgo or optional features.
        """
    )

    @classmethod
    def check_element(cls, tag: str, address: Address) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.]+", tag):
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} has {tag!r}, which is not a Go "
                "build tag (letters, digits, '_' and '.'). Give one tag per string."
            )
        _check(
            grammar.build_tag_problem(tag), cls.alias, address, tag,
            "Drop it: set the platform with `goos`/`goarch`; k4s always builds without cgo.",
        )


class GoBusyboxLdflagsField(_EachElementChecked, StringSequenceField):
    alias = "ldflags"
    default = ("-s", "-w")
    help = softwrap(
        """
        Flags for the Go linker (`go build -ldflags`). The default, `-s -w`, strips the
        symbol table and DWARF data. `-buildid=` is always added so that the binary is
        reproducible; `-X importpath.name=value` sets version strings.

        Only `-s`, `-w` and `-X importpath.name=value` (one string each, the value
        without blanks or quotes) are accepted: other linker flags such as `-o` or
        `-tmpdir` write files outside the build's sandbox.
        """
    )

    element_rule = _Rule(
        grammar.ldflag_problem,
        "Keep to `-s`, `-w` and `-X importpath.name=value`, "
        'e.g. `ldflags=["-s", "-w", "-X main.version=1.0"]`.',
    )


class GoBusyboxCommandNamesField(_EachElementChecked, DictStringToStringField):
    alias = "command_names"
    default = None
    help = softwrap(
        """
        Explicit command names, as `{import path: name}`, for commands that would
        otherwise get the same name. By default a command is named as `go build` names
        it: the last element of its import path, or the element before a major-version
        suffix (`go.etcd.io/etcd/etcdctl/v3` is `etcdctl`, `go.etcd.io/etcd/server/v3`
        is `server`). Example: `command_names={"go.etcd.io/etcd/server/v3": "etcd"}`.
        The name is what `bbin/<name>` links to and what `bb <name>` runs: one path
        element (letters, digits, `._+-`, not starting with `.` or `-`).
        """
    )

    key_rule = _Rule(
        grammar.import_path_problem,
        "Key each name by the import path of one of the `commands`.",
        ", so it is not a Go import path",
    )
    value_rule = _Rule(grammar.command_name_problem, "Use a plain name such as 'etcd'.")


class GoBusyboxPatchesField(_EachElementChecked, StringSequenceField, AsyncFieldMixin):
    alias = "patches"
    default = ()
    help = softwrap(
        """
        Patch files for third-party modules, like `go_repository(patches=...)` in
        rules_go: git-style unified diffs (`git diff --no-index`, `diff -u`) whose file
        names start with the module path, e.g. `a/github.com/flannel-io/flannel/main.go`.
        Paths are relative to this BUILD file's directory, or to the build root when they
        start with `//`. They are applied in the download step, after the module is
        verified against `go.sum` and before its imports are resolved, so a patch can
        drop an import that needs cgo or a module the proxy does not serve. A patch that
        no longer applies (e.g. after a version bump in go.mod) fails the build, naming
        the patch and the file.
        """
    )

    def paths(self) -> tuple[str, ...]:
        out = []
        for p in self.value or ():
            if p.startswith("//"):
                out.append(os.path.normpath(p[2:]))
            else:
                out.append(os.path.normpath(os.path.join(self.address.spec_path, p)))
        return tuple(out)

    @classmethod
    def check_element(cls, p: str, address: Address) -> None:
        if not (p.endswith(".patch") or p.endswith(".diff")):
            raise _invalid(
                cls.alias, address, p, "patch files must end in `.patch` or `.diff`",
                "Name the patch file `<something>.patch`.",
            )
        rooted = p[2:] if p.startswith("//") else os.path.join(address.spec_path, p)
        _check(
            "it is absolute" if p.startswith("/") and not p.startswith("//") else grammar.relative_path_problem(rooted),
            cls.alias, address, p,
            "Give a path relative to the BUILD file, or `//`-rooted at the build root.",
            ": patches must be files in this repository",
        )


class GoBusyboxLocalModulesField(StringSequenceField, AsyncFieldMixin):
    alias = "local_modules"
    default = ()
    help = softwrap(
        """
        Addresses of `files` targets holding first-party Go modules that this busybox's
        `go.mod` replaces with a relative directory, e.g. `replace k4s.dev/node =>
        ../../node` with `local_modules=["//node"]`: several profiles can then build
        the same first-party commands (list them in `commands` by import path). Each
        target's files (its `go.mod`, `go.sum` and Go sources) join the module download
        and the rewrite at their paths in the repository, so the `replace` resolves
        inside the sandbox; a `replace` that points at a directory no listed target
        provides fails the build. Inferred dependencies, like an initramfs's `busybox`.
        """
    )


class _RelativeOutputPathField(OutputPathField):
    """`output_path`, checked to stay under `dist/` (Pants itself panics and retries
    forever on an absolute one, or on a default derived from a target named `..`).
    Every k4s target type has one, so the target's name is checked here too."""

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        _check_target_name(address)
        if value is not None:
            _check(
                grammar.relative_path_problem(value) or _not_normal(value),
                cls.alias, address, value,
                "Give a relative path without '..', e.g. 'images/bb', or drop the field.",
                ", but it must be a path under `dist/`",
            )
        else:
            # The default, derived as Pants derives it (the directory with dots, the name,
            # the parameters), must be a path under dist/ like an explicit one.
            default = OutputPathField.value_or_default(_Unset(address), file_ending=None)  # type: ignore[arg-type]
            _check(
                grammar.relative_path_problem(default) or _not_normal(default),
                cls.alias, address, default,
                "Rename the target, or set `output_path` to a relative path such as 'images/bb'.",
                f" (the default derived from the target {address}), but it must be a path under `dist/`",
            )
        return value


class _Unset:
    """An unset `output_path` of `address`, for deriving its default."""

    value = None

    def __init__(self, address: Address) -> None:
        self.address = address


def _not_normal(path: str) -> str | None:
    """A path with `.` elements, `//` or a trailing `/` names a directory or another
    path than it says (`dist/x/.` is written as the file `dist/x`)."""
    return None if os.path.normpath(path) == path else "it is not a normal path (a '.' element, '//' or a trailing '/')"


class GoBusyboxOutputPathField(_RelativeOutputPathField):
    help = softwrap(
        """
        Where `pants package` writes the binary, relative to `dist/`. Defaults to
        `<path.to.dir>/<target name>`, e.g. `distros.uroot/bb`.
        """
    )


class GoBusyboxTarget(Target):
    alias = "go_busybox"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        GoBusyboxCommandsField,
        GoBusyboxModSourcesField,
        GoBusyboxGoosField,
        GoBusyboxGoarchField,
        GoBusyboxBuildTagsField,
        GoBusyboxLdflagsField,
        GoBusyboxCommandNamesField,
        GoBusyboxPatchesField,
        GoBusyboxLocalModulesField,
        GoBusyboxOutputPathField,
    )
    help = softwrap(
        """
        One busybox-style Go binary, `bb`, built from many Go commands with u-root's
        gobusybox: each command's `main` package is rewritten into a library that
        registers itself, and all of them are compiled together, so they share one Go
        runtime and one copy of every common dependency. `bb <cmd> args...` runs a
        command, and so does a symlink named `<cmd>` pointing at `bb`.

        `pants package` runs four cached, sandboxed steps: download the modules
        (verified against `go.sum`), rewrite with gobusybox, compile with the Go SDK
        (`CGO_ENABLED=0`, `-trimpath`, no build id), and writes the binary.

        Example:

            go_busybox(
                name="bb",
                commands=["github.com/u-root/u-root/cmds/core/*"],
            )
        """
    )


# ---------------------------------------------------------------------------------------
# initramfs
# ---------------------------------------------------------------------------------------


class InitramfsBusyboxField(StringField, AsyncFieldMixin):
    alias = "busybox"
    required = True
    help = softwrap(
        """
        The address of the `go_busybox` whose `bb` goes into the image, e.g. `:bb`. It is
        written to `bbin/bb`, with a link `bbin/<cmd> -> bb` for each of its commands.
        """
    )


class _CommandNameField(StringField):
    """A field naming one command of the busybox: one path element (`""` only where
    the field says it means none)."""

    empty_means_none = False

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value or (value == "" and not cls.empty_means_none):
            _check(
                grammar.command_name_problem(value),
                cls.alias, address, value,
                "Give the name of one of the busybox's commands.",
            )
        return value


class InitramfsInitField(_CommandNameField):
    alias = "init"
    default = "init"
    help = softwrap(
        """
        The command the kernel runs first: `/init` links to `bbin/<init>`. Must be one of
        the busybox's commands. u-root's `init` sets up the system and then runs
        `uinit` (or the shell).
        """
    )


class InitramfsUinitField(_CommandNameField):
    alias = "uinit"
    default = None
    help = softwrap(
        """
        The command u-root's `init` runs after setting up (`bin/uinit -> ../bbin/<uinit>`),
        instead of an interactive shell. Must be one of the busybox's commands.
        """
    )


class InitramfsUinitArgsField(StringSequenceField):
    alias = "uinit_args"
    default = ()
    help = softwrap(
        """
        Arguments for `uinit`, written to `etc/uinit.flags` where u-root's `init` reads
        them. Requires `uinit`.
        """
    )


class InitramfsShellField(_CommandNameField):
    alias = "shell"
    default = "gosh"
    empty_means_none = True
    help = softwrap(
        """
        The default shell, linked at `bin/sh` and `bin/defaultsh`; u-root's `init` runs it
        when there is no `uinit` or it exits. Must be one of the busybox's commands; set
        to `""` for no shell links.
        """
    )


class InitramfsDependenciesField(Dependencies):
    help = softwrap(
        """
        `files` and `relocated_files` targets whose files go into the image at their
        path relative to the build root (after relocation). Use `relocated_files` or
        `files_mapping` to choose the destination.
        """
    )


class InitramfsFilesMappingField(_EachElementChecked, DictStringToStringField):
    alias = "files_mapping"
    default = None
    help = softwrap(
        """
        Extra files as `{source: destination}`. The source is a path relative to the
        build root of a file owned by a target in `dependencies`; the destination is a
        relative path inside the image (no leading `/`, no `..`), e.g.
        `{"distros/uroot/motd": "etc/motd"}`. A mapped file goes only to its destination.
        """
    )

    key_rule = _Rule(
        grammar.relative_path_problem,
        "Give the source relative to the build root, e.g. 'distros/uroot/motd'.",
        ", but a source is a file in this repository",
    )
    value_rule = _Rule(
        grammar.relative_path_problem,
        "Give a relative path without a leading '/' or '..', e.g. 'etc/motd'.",
        ", but a destination must be a relative path inside the image",
    )


class InitramfsBaseLayoutField(BoolField):
    alias = "base_layout"
    default = True
    help = softwrap(
        """
        Add u-root's base layout (as `mkuimage` does): directories `bin dev env etc lib64
        proc sys tcz tmp ubin usr/lib var/log var/lock`, device nodes `dev/console`,
        `dev/tty`, `dev/null`, `dev/port`, `dev/urandom`, and `etc/resolv.conf`,
        `etc/localtime`. Files you add win on the same path.
        """
    )


COMPRESSIONS = {"none": "cpio", "gzip": "cpio.gz", "xz": "cpio.xz", "zstd": "cpio.zst"}


class InitramfsCompressionField(StringField):
    alias = "compression"
    default = "none"
    valid_choices = tuple(COMPRESSIONS)
    help = softwrap(
        """
        Compress the cpio for the kernel: `none`, `gzip`, `xz` (with CRC32 checks, the
        only kind the kernel's XZ decoder accepts) or `zstd`. The kernel must have the
        matching `CONFIG_RD_*` option (Debian's has all of them).
        """
    )


class InitramfsMaxSizeField(StringField):
    alias = "max_size"
    default = None
    help = softwrap(
        """
        A size budget for the packed (compressed) image, e.g. `"40MiB"` for a 64 MiB
        flash part that must also hold a kernel; units B, KiB, MiB, GiB, kB, MB, GB
        (a bare number is bytes). A bigger image fails the build, with its size, the
        budget and the biggest contributors: the files of the image and the Go
        modules in `bb` (the size report of `build-support/bb-size`). Unset: no budget.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            _check(grammar.size_problem(value), cls.alias, address, value,
                   'Write a size such as "40MiB" or "41943040".')
        return value

    def bytes(self) -> Optional[int]:
        return None if self.value is None else grammar.size_bytes(self.value)


class InitramfsOutputPathField(_RelativeOutputPathField):
    help = softwrap(
        """
        Where `pants package` writes the archive, relative to `dist/`. Defaults to
        `<path.to.dir>/<target name>.cpio` (`.cpio.gz`, `.cpio.xz`, `.cpio.zst` when
        compressed).
        """
    )


class InitramfsKernelModulesField(_EachElementChecked, StringSequenceField):
    alias = "kernel_modules"
    default = ()
    help = softwrap(
        """
        Linux kernel modules to carry in the image, by name (`overlay`, `br_netfilter`,
        `veth`, ...), with every module they depend on (from `modules.dep`). They are
        copied from `kernel_modules_dir` to the same path under `lib/modules/`, with a
        `modules.dep` for just those, and listed in load order in
        `etc/modules-load.d/k4s.conf` for the image's init to load (`insmod` each line).
        """
    )

    element_rule = _Rule(grammar.kernel_module_problem, "Name modules as `lsmod` shows them, e.g. 'br_netfilter'.")


class InitramfsKernelModulesDirField(StringField):
    alias = "kernel_modules_dir"
    default = None
    help = softwrap(
        """
        A module tree on this machine that `kernel_modules` come from instead of
        `linux_kernel`'s, e.g. `/lib/modules/6.1.0-57-amd64` (it needs a `modules.dep`).
        The image then depends on what is installed here: it is read on every Pants run
        (a process that is never cached). Leave it unset to take the modules of
        `linux_kernel`, the same bytes on every machine.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            if not value.startswith("/") or ".." in value.split("/") or "\n" in value:
                raise _invalid(
                    cls.alias, address, value, "it must be an absolute directory path without '..'",
                    "Give a module tree such as '/lib/modules/6.1.0-57-amd64', or drop the field.",
                )
        return value


class InitramfsLinuxKernelField(StringField, AsyncFieldMixin):
    alias = "linux_kernel"
    default = None
    help = softwrap(
        """
        The address of a `linux_kernel` target: the kernel this image is built for.
        `kernel_modules` come from its package's module tree (for the busybox's
        architecture), `pants package` writes its image beside the initramfs
        (`<output_path stem>.vmlinuz`), and `pants run` boots it. Needed when
        `kernel_modules` is set (unless `kernel_modules_dir` names a tree) and for
        `pants run` (unless `kernel` names an image).
        """
    )


# Fields for `pants run` of an initramfs: boot it in QEMU.


class InitramfsKernelField(StringField, AsyncFieldMixin):
    alias = "kernel"
    default = None
    help = softwrap(
        """
        For `pants run`: the address of a `file` target holding a Linux kernel image
        (bzImage / vmlinuz) to boot this initramfs with instead of `linux_kernel`'s
        (whose modules `kernel_modules` carries; a kernel given here should be the same
        one).
        """
    )


class InitramfsVmMemoryField(IntField):
    alias = "vm_memory"
    default = 2048
    help = "For `pants run`: the VM's memory in MiB."

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> int:
        value = super().compute_value(raw_value, address)
        if value < 64:
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} is {value}: give at least 64 (MiB)."
            )
        return value


class InitramfsVmCpusField(IntField):
    alias = "vm_cpus"
    default = 2
    help = "For `pants run`: the VM's virtual CPUs."

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> int:
        value = super().compute_value(raw_value, address)
        if value < 1:
            raise InvalidFieldException(f"The `{cls.alias}` field of {address} must be at least 1.")
        return value


class InitramfsVmPortForwardsField(_EachElementChecked, StringSequenceField):
    alias = "vm_port_forwards"
    default = ()
    help = softwrap(
        """
        For `pants run`: TCP ports forwarded from the host to the VM, as
        `"<host port>:<guest port>"`, e.g. `["6443:6443"]` for a kube-apiserver. The host
        side listens on 127.0.0.1 only.
        """
    )

    @classmethod
    def check_element(cls, fwd: str, address: Address) -> None:
        host, _, guest = fwd.partition(":")
        # ASCII digits only (`"٣".isdigit()` is true).
        if not (re.fullmatch(r"[0-9]{1,5}:[0-9]{1,5}", fwd) and 0 < int(host) < 65536 and 0 < int(guest) < 65536):
            raise InvalidFieldException(
                f"The `{cls.alias}` field of {address} has {fwd!r}: write "
                f"`\"<host port>:<guest port>\"`, e.g. `\"6443:6443\"`."
            )


class InitramfsKernelArgsField(_EachElementChecked, StringSequenceField):
    alias = "kernel_args"
    default = ()
    help = softwrap(
        """
        Extra kernel command-line arguments, e.g. `["ip=dhcp"]`: for `pants run`
        (`console=ttyS0 panic=-1` are always there) and on the `.cmdline` of a `uki` of
        this image (after its consoles).
        """
    )

    @classmethod
    def check_element(cls, arg: str, address: Address) -> None:
        if not arg or any(c.isspace() for c in arg):
            raise _invalid(
                cls.alias, address, arg, "a kernel argument is one word without blanks", "Give one argument per string."
            )


class InitramfsVmAccelField(StringField):
    alias = "vm_accel"
    default = "auto"
    valid_choices = ("auto", "kvm", "tcg")
    help = softwrap(
        """
        For `pants run`: `kvm`, `tcg`, or `auto`: KVM only if it really boots the kernel
        (on some machines `/dev/kvm` exists but hangs once a kernel starts: `auto` boots
        the kernel under KVM for up to 15 s, falls back to TCG, and remembers the answer
        in `~/.cache/k4s`).
        """
    )


class InitramfsClusterIdentityField(BoolField):
    alias = "cluster_identity"
    default = False
    help = softwrap(
        """
        For `pants run`: hand the booted node a cluster identity made on this machine, so
        that you can use its Kubernetes API from outside the VM (as `talosctl gen config`
        makes a Talos cluster's CA on the operator's machine and the control-plane machine
        config carries it).

        The first `pants run` makes a CA (ECDSA P-256, `k4s-ca`, 10 years) and an admin
        client certificate (`k4s-admin`, group `system:masters`, 1 year, renewed when it
        expires within 30 days) in `.k4s/clusters/<target>/` under the build root (mode
        0700, private keys 0600; ignored by git and Pants, never in Pants' caches); later
        runs reuse them. Every run writes `admin.kubeconfig` there (kubectl format, server
        `https://127.0.0.1:<host port>`, the port forwarded to the guest's 6443; see
        `vm_port_forwards`), and boots the image with a second cpio appended that holds
        only `/etc/k4s/identity/ca.crt`, `ca.key` and `join-token` (a bootstrap token,
        made once, with which agents join); the node signs its own certificates with
        that CA. `export KUBECONFIG=.../admin.kubeconfig; kubectl get nodes`.

        An agent joins a server's cluster instead: `pants run <agent target> -- -join
        .k4s/clusters/<server target> -join-server https://<server>:6443` hands it the
        server's `ca.crt` (never the key), `join-token` and URL, and its kubelet
        bootstraps its credentials (README, "A cluster"). With `-- -machine-config
        controlplane|worker` the node gets all of it as one Talos-style machine config
        file instead (`controlplane.yaml`/`worker.yaml`, also written there).

        For a new identity: `pants run <target> -- -new-identity`, or delete the
        directory. The image that `pants package` builds stays generic and cacheable and
        never holds a private key; a real device gets its identity the same way, from
        provisioning.
        """
    )


class InitramfsNodeComponentsField(_EachElementChecked, StringSequenceField):
    alias = "node_components"
    default = ()
    help = softwrap(
        """
        For an appliance: the commands its node supervisor (`uinit`, e.g. k4s-node) starts,
        in order, as the distro's component table, e.g. `["kine", "kube-apiserver",
        "kube-controller-manager", "kube-scheduler", "containerd", "kubelet", "flanneld",
        "coredns", "kube-proxy"]` (a k3s-like server) or `["containerd", "kubelet",
        "flanneld", "kube-proxy"]` (an agent). With `flanneld`, k4s-node runs flannel's
        VXLAN network (node subnets from kube-controller-manager); without it, one CNI
        bridge. Each must be a command of the busybox: the build fails naming the missing
        one. Written to `etc/k4s/components`, one per line, where k4s-node reads them.
        """
    )

    element_rule = _Rule(grammar.command_name_problem, "Give command names of the busybox, e.g. 'kube-apiserver'.")

    @classmethod
    def check_value(cls, value: Tuple[str, ...], address: Address) -> None:
        twice = sorted({n for n in value if value.count(n) > 1})
        if twice:
            raise _invalid(
                cls.alias, address, twice, "names components more than once (the node would start them twice)",
                "List each component once.",
            )


class InitramfsImagesField(StringSequenceField, AsyncFieldMixin):
    alias = "images"
    default = ()
    help = softwrap(
        """
        Images to carry in the image, for a node without a registry (as k3s'
        `agent/images` tarballs): the node supervisor imports them into containerd at
        boot. Addresses of `oci_image` targets (under `var/lib/k4s/images/<target
        name>.tar`) and of `file`/`files` targets of image archives you bring (`.tar`: an
        OCI image layout, e.g. from `skopeo copy ... oci-archive:app.tar:app:v1`, or a
        `docker save` archive; under `var/lib/k4s/images/<file name>`). Inferred
        dependencies, like `busybox`.
        """
    )


class InitramfsTarget(Target):
    alias = "initramfs"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        InitramfsBusyboxField,
        InitramfsInitField,
        InitramfsUinitField,
        InitramfsUinitArgsField,
        InitramfsShellField,
        InitramfsDependenciesField,
        InitramfsFilesMappingField,
        InitramfsBaseLayoutField,
        InitramfsCompressionField,
        InitramfsKernelModulesField,
        InitramfsKernelModulesDirField,
        InitramfsLinuxKernelField,
        InitramfsImagesField,
        InitramfsNodeComponentsField,
        InitramfsMaxSizeField,
        InitramfsOutputPathField,
        InitramfsKernelField,
        InitramfsVmMemoryField,
        InitramfsVmCpusField,
        InitramfsVmPortForwardsField,
        InitramfsKernelArgsField,
        InitramfsVmAccelField,
        InitramfsClusterIdentityField,
    )
    help = softwrap(
        """
        A reproducible Linux initramfs (newc cpio) around a `go_busybox`: `bbin/bb` and a
        `bbin/<cmd> -> bb` link per command, `/init -> bbin/<init>`, the shell links,
        `bin/uinit` and `etc/uinit.flags`, extra files, and u-root's base layout. Entries
        are sorted, with mtime 0, uid/gid 0 and fixed inode numbers, so the same inputs
        give the same bytes.

        `pants package` writes the cpio; `pants run` boots it in QEMU with the serial
        console on your terminal (the `kernel`, `vm_*` and `kernel_args` fields; Ctrl-A X
        quits QEMU).

        Example:

            initramfs(
                name="initramfs",
                busybox=":bb",
                uinit="gosh",
                uinit_args=["-c", "echo hello"],
                compression="xz",
            )
        """
    )


# ---------------------------------------------------------------------------------------
# oci_image
# ---------------------------------------------------------------------------------------


class OciImageBusyboxField(StringField, AsyncFieldMixin):
    alias = "busybox"
    required = True
    help = softwrap(
        """
        The address of the `go_busybox` the image holds, e.g. `:pod-bb`: `bbin/bb` with a
        link `bbin/<cmd> -> bb` for each of its commands, and `bin -> bbin`.
        """
    )


# An image reference without a digest: [registry/]path[:tag], lower case path.
_IMAGE_REF = re.compile(
    r"[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
)


class OciImageNameField(StringField):
    alias = "image_name"
    default = None
    help = softwrap(
        """
        The image's reference, which pods name in `image:` (with `imagePullPolicy:
        Never` or `IfNotPresent`, since the node has no registry). Default
        `k4s.local/<target name>:latest`.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and not _IMAGE_REF.fullmatch(value):
            raise _invalid(
                cls.alias, address, value, "it is not an image reference ([registry/]path[:tag], lower-case path)",
                "Use a name such as 'k4s.local/demo:v1'.",
            )
        return value

    def value_or_default(self, address: Address) -> str:
        return self.value or f"k4s.local/{address.target_name}:latest"


class OciImageEntrypointField(StringSequenceField):
    alias = "entrypoint"
    default = ()
    help = "The image's default ENTRYPOINT, e.g. `[\"/bbin/srvfiles\"]`. Pods override it with `command`."


class OciImageCmdField(StringSequenceField):
    alias = "cmd"
    default = ()
    help = "The image's default CMD (arguments after the entrypoint). Pods override it with `args`."


class OciImageEnvField(_EachElementChecked, StringSequenceField):
    alias = "env"
    default = ("PATH=/bbin:/bin",)
    help = "The image's environment, as `NAME=value` strings."

    @classmethod
    def check_element(cls, kv: str, address: Address) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", kv, re.S):
            raise _invalid(cls.alias, address, kv, "it is not NAME=value", "Write e.g. 'PATH=/bbin'.")


class OciImageCommandLinksField(_EachElementChecked, DictStringToStringField):
    alias = "command_links"
    default = None
    help = softwrap(
        """
        More paths that run a command, as `{path in the image: command name}`: each is a
        link to `/bbin/<command>`, for programs that callers run by an absolute path
        outside `bbin/`. Example: the upstream Kubernetes e2e tests run `/agnhost`, so
        `command_links={"agnhost": "agnhost"}`. The path is relative (no leading `/`, no
        `..`) and not under `bbin/`, `bin/` or `tmp/`; the command is one of the
        busybox's.
        """
    )

    key_rule = _Rule(
        grammar.relative_path_problem,
        "Give a path relative to the image's root, e.g. 'agnhost' for /agnhost.",
        ", but a link's path must be a relative path inside the image",
    )
    value_rule = _Rule(grammar.command_name_problem, "Name one command of the busybox, e.g. 'agnhost'.")

    @classmethod
    def check_value(cls, value: Any, address: Address) -> None:
        _check_outside_image_layout(cls.alias, address, value, "bbin/<command> already runs each command")


# The top directories an oci_image lays out itself: `bbin/` (bb and the command links),
# `bin -> bbin`, `tmp/`.
_OCI_LAYOUT_TOPS = ("bbin", "bin", "tmp")


def _check_outside_image_layout(field: str, address: Address, value: Mapping[str, str], why: str) -> None:
    """Each key of `value` (a path in an oci_image) is outside what the image lays out."""
    for path in value:
        top = os.path.normpath(path).split("/")[0]
        if top in _OCI_LAYOUT_TOPS:
            raise _invalid(
                field, address, dict(value),
                f"the path {path!r} is under {top}/, which the image itself lays out "
                "(bbin/<command> links, bin -> bbin, tmp)",
                f"Drop {path!r}: {why}; or use another path.",
            )


class OciImageUserField(StringField):
    alias = "user"
    default = None
    help = softwrap(
        """
        The image config's `User`, the user its containers run as unless a pod's
        `securityContext.runAsUser` says otherwise: `UID` or `UID:GID` in numbers, e.g.
        `"1234"` or `"65534:65534"` (the image has no `/etc/passwd`, so a name would not
        resolve). Default: none, so containers run as root (UID 0), as before.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            _check(
                grammar.image_user_problem(value), cls.alias, address, value,
                "Write the numeric ID, e.g. '1234' or '65534:65534'.",
            )
        return value


class OciImageDependenciesField(Dependencies):
    help = softwrap(
        """
        `file`/`files` and `resource`/`resources` targets whose files `files` puts into
        the image (the busybox is a dependency through `busybox`). Every file they own
        must be placed by `files`.
        """
    )


class OciImageFilesField(_EachElementChecked, DictStringToStringField):
    alias = "files"
    default = None
    help = softwrap(
        """
        Extra files in the image's layer, as `{path in the image: source}`: the source
        is a path relative to the build root of a file that a target in `dependencies`
        owns; the path in the image is relative (no leading `/`, no `..`) and outside
        `bbin/`, `bin/` and `tmp/`. Mode 0644 (0755 if the file is executable in the
        repository) unless `file_modes` says otherwise; owner root. Example: the e2e
        nautilus image serves `/data.json`: `files={"data.json":
        "distros/e2e-images/nautilus/data.json"}`.
        """
    )

    key_rule = _Rule(
        grammar.relative_path_problem,
        "Give a path relative to the image's root, e.g. 'data.json' for /data.json.",
        ", but a path in the image must be relative and stay inside it",
    )
    value_rule = _Rule(
        grammar.relative_path_problem,
        "Give the source relative to the build root, e.g. 'distros/e2e-images/nautilus/data.json'.",
        ", but a source is a file in this repository",
    )

    @classmethod
    def check_value(cls, value: Any, address: Address) -> None:
        _check_outside_image_layout(cls.alias, address, value, "the image lays these out itself")


class OciImageFileModesField(_EachElementChecked, DictStringToStringField):
    alias = "file_modes"
    default = None
    help = softwrap(
        """
        Modes of files in the image, as `{path in the image: octal mode}`: a path of
        `files`, or `bbin/bb` (the busybox binary, 0755 by default). Setuid and setgid
        (`4755`, `2755`) are given only here, and only to a file that runs one program:
        `bbin/bb` only if the busybox has a single command (with more, every command,
        a shell among them, would run as root). Example: e2e's nonewprivs image
        installs its `nnp` program setuid root: `file_modes={"bbin/bb": "4755"}` on a
        busybox of that one command.
        """
    )

    key_rule = _Rule(
        grammar.relative_path_problem,
        "Name a path of `files`, or 'bbin/bb'.",
        ", but a path in the image must be relative and stay inside it",
    )
    value_rule = _Rule(grammar.file_mode_problem, "Write the mode in octal, e.g. '0644', '0755' or '4755'.")


class OciImageOutputPathField(_RelativeOutputPathField):
    help = softwrap(
        """
        Where `pants package` writes the OCI image archive, relative to `dist/`. Defaults
        to `<path.to.dir>/<target name>.tar`.
        """
    )


class OciImageTarget(Target):
    alias = "oci_image"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        OciImageBusyboxField,
        OciImageNameField,
        OciImageEntrypointField,
        OciImageCmdField,
        OciImageEnvField,
        OciImageCommandLinksField,
        OciImageUserField,
        OciImageDependenciesField,
        OciImageFilesField,
        OciImageFileModesField,
        OciImageOutputPathField,
    )
    help = softwrap(
        """
        A container image made from a `go_busybox`, as `ko` makes one from a Go binary:
        one layer with `bbin/bb`, a `bbin/<cmd>` link per command and `bin -> bbin`,
        written as a reproducible OCI image layout archive (what `ctr images import`,
        containerd and `skopeo copy oci-archive:` read). No registry, no base image.

        `pants package` writes the archive; an `initramfs` carries images in its `images`
        field, and the appliance's node imports them at boot.

        Example:

            go_busybox(name="pod-bb", commands=["github.com/u-root/u-root/cmds/core/sleep"])
            oci_image(name="pause", busybox=":pod-bb", image_name="k4s.local/pause:v1",
                      entrypoint=["/bbin/sleep"], cmd=["2147483647"])
        """
    )


# ---------------------------------------------------------------------------------------
# linux_kernel
# ---------------------------------------------------------------------------------------


class LinuxKernelDebianPackagesField(NestedDictStringToStringField):
    alias = "debian_packages"
    required = True
    example_package = "linux-image-<release>"
    help = softwrap(
        """
        The kernel as a Debian package per architecture, pinned:
        `{"amd64": {"package": "linux-image-6.1.0-57-amd64", "version": "6.1.192-3",
        "sha256": "<the .deb's SHA-256>"}, "arm64": {...}}`. The package is fetched with
        this machine's `apt-get download` (its configured sources; for arm64 on an amd64
        machine, `dpkg --add-architecture arm64` and `apt-get update` first) inside a
        Process whose output must have that SHA-256, then unpacked and indexed by
        k4stool (no dpkg, no depmod): the kernel image, the module tree, and
        `modules.dep`/`modules.softdep` computed from the modules' `.modinfo`. To find
        the values: `apt-cache policy <package>:<arch>` (version), `apt-get download
        <package>:<arch>=<version> && sha256sum *.deb` (sha256).
        """
    )

    @classmethod
    def compute_value(
        cls, raw_value: Optional[Dict[str, Dict[str, str]]], address: Address
    ) -> Optional[FrozenDict[str, FrozenDict[str, str]]]:
        value = super().compute_value(raw_value, address)
        if not value:
            raise _invalid(
                cls.alias, address, raw_value, "it names no package",
                'Give at least one architecture: {"amd64": {"package": ..., "version": ..., "sha256": ...}}.',
            )
        for arch, pin in value.items():
            _check(
                grammar.debian_pin_problem(arch, dict(pin)), cls.alias, address, dict(value),
                f"Pin each architecture as {{\"package\": \"{cls.example_package}\", \"version\": "
                "\"<apt-cache policy's version>\", \"sha256\": \"<sha256sum of the .deb>\"}.",
            )
        return value


class LinuxKernelTarget(Target):
    alias = "linux_kernel"
    core_fields = (*COMMON_TARGET_FIELDS, LinuxKernelDebianPackagesField)
    help = softwrap(
        """
        A Linux kernel as a pinned build input: a Debian kernel package (`linux-image-*`)
        per architecture, by name, version and SHA-256. An `initramfs` names it in
        `linux_kernel`: its `kernel_modules` come from this package (never from the
        machine's `/lib/modules`), `pants package` writes the kernel image beside the
        cpio, and `pants run` boots it, so the same commit gives the same image on
        every machine, with or without a kernel installed.

        Example:

            linux_kernel(
                name="debian",
                debian_packages={
                    "amd64": {"package": "linux-image-6.1.0-57-amd64", "version": "6.1.192-3",
                              "sha256": "14d219d0..."},
                },
            )
        """
    )

# ---------------------------------------------------------------------------------------
# uefi_stub, uki
# ---------------------------------------------------------------------------------------


class UefiStubDebianPackagesField(LinuxKernelDebianPackagesField):
    example_package = "systemd-boot-efi"
    help = softwrap(
        """
        systemd's UEFI stub as a Debian package per architecture, pinned:
        `{"amd64": {"package": "systemd-boot-efi", "version": "252.39-1~deb12u2",
        "sha256": "<the .deb's SHA-256>"}, "arm64": {...}}`. Fetched and verified like a
        `linux_kernel`'s package (this machine's `apt-get download` in a Process whose
        output must have that SHA-256); k4stool takes `usr/lib/systemd/boot/efi/
        linuxx64.efi.stub` (amd64) or `linuxaa64.efi.stub` (arm64) out of it and checks
        that it is a UEFI (PE) image of that architecture. To find the values:
        `apt-cache policy systemd-boot-efi:<arch>`, `apt-get download
        systemd-boot-efi:<arch>=<version> && sha256sum *.deb`.
        """
    )


class UefiStubTarget(Target):
    alias = "uefi_stub"
    core_fields = (*COMMON_TARGET_FIELDS, UefiStubDebianPackagesField)
    help = softwrap(
        """
        systemd's UEFI stub (systemd-stub) as a pinned build input, the front of a `uki`:
        Debian's `systemd-boot-efi` package per architecture, by name, version and
        SHA-256.

        Example:

            uefi_stub(
                name="systemd-stub",
                debian_packages={
                    "amd64": {"package": "systemd-boot-efi", "version": "252.39-1~deb12u2",
                              "sha256": "8f2b81bd..."},
                },
            )
        """
    )


class UkiInitramfsField(StringField, AsyncFieldMixin):
    alias = "initramfs"
    required = True
    help = softwrap(
        """
        The address of the `initramfs` target this UKI boots: its cpio becomes the
        `.initrd` section, its `linux_kernel`'s image (for its busybox's architecture) the
        `.linux` section, and its `kernel_args` go on the `.cmdline`.
        """
    )


class UkiUefiStubField(StringField, AsyncFieldMixin):
    alias = "uefi_stub"
    required = True
    help = "The address of a `uefi_stub` target (this repository's: `//distros/kernel:systemd-stub`)."


class UkiKernelArgsField(InitramfsKernelArgsField):
    help = softwrap(
        """
        Kernel command-line arguments for this UKI only, after the initramfs's
        `kernel_args` on its `.cmdline`: what one machine needs (`console=ttyS1,115200`,
        `k4s.disk=/dev/nvme0n1`), not every run of the image.
        """
    )


class UkiOutputPathField(_RelativeOutputPathField):
    help = softwrap(
        """
        Where `pants package` writes the UKI, relative to `dist/`. Defaults to the
        initramfs's `output_path` with `.efi` for its ending, beside it: e.g.
        `distros.k3s-like/initramfs.efi`.
        """
    )


class UkiTarget(Target):
    alias = "uki"
    core_fields = (*COMMON_TARGET_FIELDS, UkiInitramfsField, UkiUefiStubField, UkiKernelArgsField, UkiOutputPathField)
    help = softwrap(
        """
        A Unified Kernel Image: one UEFI executable holding systemd's stub (`uefi_stub`),
        the kernel, the initramfs, and the kernel command line, which UEFI firmware (x86
        PCs, arm64 boards, OVMF) boots with no boot loader. `pants package` writes it
        beside the initramfs (`<stem>.efi`); copy it to an EFI system partition as
        `EFI/BOOT/BOOTX64.EFI` (`BOOTAA64.EFI` on arm64) or add a boot entry for it
        (docs/how-it-works.md, "Booting on a machine").

        The `.cmdline` is `console=tty0 console=<serial>` (ttyS0 on amd64, ttyAMA0 on
        arm64: the kernel's messages on both, the image's console on the serial line)
        followed by the initramfs's `kernel_args` and this target's; what only `pants run` adds (`panic=-1`,
        `k4s.disk=` for `-disk`) is not in it. The UKI holds a copy of the cpio, so it is
        a target of its own: `pants package` of an `initramfs` does not write it.

        Example:

            uki(name="uki", initramfs=":initramfs", uefi_stub="//distros/kernel:systemd-stub")
        """
    )


# Every error about a BUILD value of a k4s target is coded (see `_coded`).
for _target in (GoBusyboxTarget, InitramfsTarget, OciImageTarget, LinuxKernelTarget, UefiStubTarget, UkiTarget):
    for _field in _target.core_fields:
        if _field.__module__ == __name__ and not getattr(_field, "_k4s_coded", False):
            _coded(_field)
            _field._k4s_coded = True  # type: ignore[attr-defined]
