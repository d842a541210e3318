"""Turning k4stool's error codes into messages that name the target, the field and
the fix."""

from __future__ import annotations

from pants.engine.addresses import Address


class K4sStepError(Exception):
    """A k4s build step failed because of the target's input."""


class K4sTargetError(Exception):
    """A k4s target's fields are inconsistent (checked before any step runs)."""


# code -> (field or None, fix)
_FIXES: dict[str, tuple[str | None, str]] = {
    "E_GOSUM_MISSING": (
        "sources",
        "go.sum does not pin every module the commands need. Run `pants k4s-tidy` on "
        "this target (it regenerates tools.go from `commands` and tidies go.mod and "
        "go.sum with the `patches` applied) and commit go.mod, go.sum and tools.go.",
    ),
    "E_NO_GOSUM": ("sources", "Add the go.sum next to go.mod: run `pants k4s-tidy` on this target."),
    "E_CHECKSUM": (
        "sources",
        "A downloaded module does not match go.sum. Check GOPROXY/GOSUMDB; if the "
        "go.sum line is wrong, regenerate it with `go mod tidy`.",
    ),
    "E_DOWNLOAD": (
        "sources",
        "Check that go.mod is valid and that the module proxy is reachable with the "
        "GOPROXY/GONOSUMDB/GOPRIVATE settings passed by `[k4s-go].env_vars`.",
    ),
    "E_PATCH": (
        "patches",
        "Regenerate the patch against the module version go.mod pins (file names "
        "`a/<module path>/<file>`), or drop it.",
    ),
    "E_PATCH_IMPORTS": (
        "patches",
        "The patch named above changes the imports of the module it patches: the packages "
        "it now imports are not pinned in go.sum (or no module provides them). Run `pants "
        "k4s-tidy` on this target (it tidies go.mod and go.sum with the patches applied) "
        "and commit go.mod and go.sum, or fix the patch.",
    ),
    "E_UNKNOWN_PACKAGE": (
        "commands",
        "Fix the import path, or add the module that provides it: `go get "
        "<module>@<version>` next to go.mod, then `pants k4s-tidy` on this target.",
    ),
    "E_RESOLVE": ("commands", "Fix or remove the failing import path or glob."),
    "E_TIDY": (
        "commands",
        "`go mod tidy` failed on the commands with the `patches` applied (see its output "
        "above): fix the import path, or the patch that leaves an import no module provides.",
    ),
    "E_NOT_MAIN": (
        "commands",
        "Only commands (`package main`) can go into a busybox. Remove the package, or "
        "name the command that uses it.",
    ),
    "E_CGO": (
        "commands",
        "k4s builds with CGO_ENABLED=0 into one static binary. Remove the command, or "
        "use a pure-Go variant of it (often selected with a tag in `build_tags`).",
    ),
    "E_BUILD_CONSTRAINTS": (
        "commands",
        "The package named above (a command, or a package it imports) has no Go files for "
        "this GOOS/GOARCH and `build_tags`; k4s builds with CGO_ENABLED=0, so files that "
        "import \"C\" do not count. Remove the command that needs it, use a pure-Go variant "
        "(often a tag in `build_tags`), or change `goarch`.",
    ),
    "E_EMBED": (
        "sources",
        "A first-party command embeds files (`//go:embed`) that this target's `sources` do "
        "not hold: add them to `sources` (e.g. `sources=[\"go.mod\", \"go.sum\", "
        "\"**/*.go\", \"!**/*_test.go\", \"cmds/x/static/*\"]`).",
    ),
    "E_DUPLICATE_NAME": (
        "commands",
        "Give one of the commands another name, e.g. "
        "`command_names={\"<import path>\": \"<new name>\"}`, or drop one of them.",
    ),
    "E_NAME_UNKNOWN": (
        "command_names",
        "Each key must be the import path of one of the resolved commands.",
    ),
    "E_BAD_NAME": ("command_names", "Use plain names without '/' or spaces."),
    "E_NO_COMMANDS": ("commands", "List at least one command."),
    "E_BAD_PATTERN": (
        "commands",
        "Write commands as Go import paths, globs on their elements, or either with "
        "one leading '-' to exclude.",
    ),
    "E_LDFLAGS": ("ldflags", "Keep to `-s`, `-w` and `-X importpath.name=value`."),
    "E_REPLACE_OUTSIDE": (
        "local_modules",
        "Replace modules with module@version, or with a directory of this repository "
        "whose `files` target (go.mod, go.sum, Go files) is listed in `local_modules`.",
    ),
    "E_REPLACE_MISSING": (
        "local_modules",
        "List the `files` target of the replacing module (its go.mod, go.sum and Go "
        "files) in `local_modules`, or fix the `replace` directory in go.mod.",
    ),
    "E_MODCACHE": (
        None,
        "A module zip in k4s's module proxy cache is damaged. Delete the named cache "
        "`kuties_go_mod_proxy` (by default ~/.cache/pants/named_caches/kuties_go_mod_proxy) "
        "and build again; everything in it is re-downloaded and checked against go.sum.",
    ),
    "E_REWRITE": (
        "commands",
        "gobusybox could not rewrite a command (see its output above). Remove the "
        "command or report it to gobusybox.",
    ),
    "E_COMPILE": (
        "commands",
        "The rewritten busybox does not compile (see the go output above). Check "
        "`build_tags`, `goarch` and `ldflags`, or remove the command that fails.",
    ),
    # The kernel steps (k4stool kernel-index / kernel-modules) of a linux_kernel target.
    "E_KERNEL_NOT_DEB": (
        "debian_packages",
        "The file apt-get downloaded is not a Debian package. Pin a `linux-image-*` package "
        "(`apt-cache search linux-image`), with its version and the SHA-256 of its .deb.",
    ),
    "E_KERNEL_NOT_KERNEL": (
        "debian_packages",
        "Pin a kernel image package, `linux-image-<release>` (`apt-cache search "
        "linux-image-`): one with boot/vmlinuz-<release> and lib/modules/<release>/, not a "
        "meta-package, headers or firmware.",
    ),
    "E_KERNEL_ARCH": (
        "debian_packages",
        "Pin, under each architecture, a package built for it (`linux-image-<release>-arm64` "
        "under \"arm64\", `...-amd64` under \"amd64\").",
    ),
    # The UKI steps (k4stool uefi-stub / uki) of a uefi_stub or uki target.
    "E_UKI_NOT_STUB": (
        "debian_packages",
        "Pin systemd's UEFI stub package, `systemd-boot-efi` (`apt-cache policy systemd-boot-efi`), "
        "with its version and the SHA-256 of its .deb.",
    ),
    "E_UKI_STUB_ARCH": (
        "debian_packages",
        "Pin, under each architecture, the systemd-boot-efi package of that architecture "
        "(`systemd-boot-efi:arm64` under \"arm64\", `systemd-boot-efi:amd64` under \"amd64\").",
    ),
    "E_UKI_STUB": (
        "uefi_stub",
        "Name a `uefi_stub` that pins Debian's unsigned systemd-boot-efi (its stub has room for "
        "the UKI's sections and no signature); sign the UKI afterwards if your firmware needs it.",
    ),
    "E_UKI_KERNEL": (
        "initramfs",
        "The initramfs's `linux_kernel` must be a kernel built with the EFI stub "
        "(CONFIG_EFI_STUB, as Debian's are) for the busybox's architecture.",
    ),
    "E_UKI_TOO_BIG": (
        "initramfs",
        "A PE image is at most 4 GiB: make the initramfs smaller (fewer `images`, compression).",
    ),
}


def explain(address: Address, step: str, code: str, detail: str) -> str:
    field, fix = _FIXES.get(code, (None, "This looks like a bug in k4s; please report it."))
    if code in _FIXES and field is None:
        return f"k4s: {code}: the {step} failed for {address}:\n\n{detail}\n\nFix: {fix}"
    where = f"the `{field}` field of {address}" if field else str(address)
    return f"k4s: {code}: the {step} failed for {address}, caused by {where}:\n\n{detail}\n\nFix: {fix}"


# Codes of the errors the rules raise about a target's input (before or between steps).
BAD_INPUT = "E_BAD_INPUT"  # a field's value, as the rules read it (names, files, addresses)
LAYOUT = "E_LAYOUT"  # the image's layout (layout.check_layout)
OUTPUT = "E_OUTPUT"  # where `package` would write


def target_error(address: Address, field: str, problem: str, fix: str, code: str = BAD_INPUT) -> K4sTargetError:
    return K4sTargetError(f"k4s: {code}: The `{field}` field of {address} {problem}\n\nFix: {fix}")
