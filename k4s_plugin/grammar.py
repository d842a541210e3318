"""The rules every BUILD value of k4s obeys, as pure functions.

Each returns `None` when the value is fine, or a short reason why it is not; the
fields in `targets.py` turn a reason into an error naming the target, the field,
the value and the fix. The same rules are enforced again inside k4stool (defence
in depth), so a value that slips past here still cannot reach outside a sandbox.
"""

from __future__ import annotations

import os.path
import re

# Go's import-path grammar (golang.org/x/mod/module.CheckImportPath): elements of
# ASCII letters, digits and `-._~+`, no empty element, none made only of dots, none
# starting or ending with a dot. `commands` also allows glob characters in an
# element, as gobusybox does.
_ELEM = re.compile(r"[A-Za-z0-9._~+-]+")
_GLOB_ELEM = re.compile(r"[A-Za-z0-9._~+*?\[\]-]+")
# A command name, `bbin/<name>`: one path element, no leading dot or dash.
_NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9._+-]*")
# `-X importpath.name=value`: the variable by Go syntax, a value without blanks,
# control characters or quotes (it is passed through `go build -ldflags`, which splits on blanks).
_LDFLAG_X = re.compile(r"-X [A-Za-z0-9._~+/-]+\.[A-Za-z_][A-Za-z0-9_]*=[^\s'\"\\`\x00-\x1f\x7f]*")
LDFLAGS_ALLOWED = "`-s`, `-w` and `-X importpath.name=value` (one string each)"
# A kernel module name as modules.dep spells it.
_KMOD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")  # not a flag of insmod

# Linux's limits (NAME_MAX, PATH_MAX): a longer name or path is packed into a cpio the
# kernel cannot unpack, and cannot be written under dist/.
NAME_MAX = 255
PATH_MAX = 4095
# Names the image and the multicall binary need for themselves: `bbin/bb` is the binary,
# and `bb <cmd>` runs <cmd> only if no command is itself called `bb`.
RESERVED_COMMAND_NAMES = frozenset({"bb"})
# k4s target names become file names (dist/<dir>/<name>..., images/<name>.tar): one path
# element, leaving room for the longest suffix k4s adds (`.cpio.zst.cdx.json`).
_TARGET_NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9._+-]*")
TARGET_NAME_MAX = NAME_MAX - len(".cpio.zst.cdx.json")


def import_path_problem(path: str, *, globs: bool = False) -> str | None:
    """Why `path` is not a Go import path (with glob elements if `globs`), or None."""
    if not path:
        return "it is empty"
    if path.startswith("-"):
        return "it starts with '-' (a flag, not an import path)"
    if path.startswith("/") or path.endswith("/"):
        return "it starts or ends with '/'"
    if len(path.encode()) > PATH_MAX:
        return f"it is {len(path.encode())} bytes long, over Linux's {PATH_MAX}"
    pattern = _GLOB_ELEM if globs else _ELEM
    for elem in path.split("/"):
        if not elem:
            return "it has an empty element ('//')"
        if not pattern.fullmatch(elem):
            return f"its element {elem!r} has characters outside letters, digits and '-._~+'" + (
                " (and the glob characters '*?[]')" if globs else ""
            )
        if elem.strip(".") == "" or elem.startswith(".") or elem.endswith("."):
            return f"its element {elem!r} starts or ends with '.'"
        if len(elem) > NAME_MAX:
            return f"its element {elem[:20]!r}... is {len(elem)} bytes long, over Linux's {NAME_MAX}"
    return None


def command_pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is not a gobusybox command pattern: an import path, a glob on
    its elements, or either with one leading `-` (an exclusion)."""
    bare = pattern[1:] if pattern.startswith("-") else pattern
    return import_path_problem(bare, globs=True)


def command_name_problem(name: str) -> str | None:
    """Why `name` cannot be a command name (one element of `bbin/<name>`), or None."""
    if not _NAME.fullmatch(name or ""):
        return "a command name is one path element of letters, digits and '._+-', not starting with '.' or '-'"
    if len(name) > NAME_MAX:
        return f"it is {len(name)} bytes long, over Linux's {NAME_MAX} for a file name (bbin/<name>)"
    if name in RESERVED_COMMAND_NAMES:
        return (
            f"{name!r} is reserved: bbin/{name} is the busybox binary itself, "
            f"and `{name} <cmd>` would run this command instead of <cmd>"
        )
    return None


def target_name_problem(name: str) -> str | None:
    """Why a k4s target's name cannot be used for the files k4s derives from it
    (`dist/<dir>/<name>`, `var/lib/k4s/images/<name>.tar`), or None."""
    if not _TARGET_NAME.fullmatch(name or ""):
        return (
            "a k4s target name is one path element of letters, digits and '._+-', "
            "not starting with '.' or '-' (it names files k4s writes)"
        )
    if len(name.encode()) > TARGET_NAME_MAX:
        return (
            f"it is {len(name.encode())} bytes long; k4s derives file names from it "
            f"and allows at most {TARGET_NAME_MAX}"
        )
    return None


def relative_path_problem(path: str) -> str | None:
    """Why `path` is not a relative path that stays inside the tree it is in."""
    if not path:
        return "it is empty"
    if path.startswith("/"):
        return "it is absolute"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return "it holds a control character (NUL, newline, ...)"
    if len(path.encode()) > PATH_MAX:
        return f"it is {len(path.encode())} bytes long, over Linux's {PATH_MAX}"
    long = [e for e in path.split("/") if len(e.encode()) > NAME_MAX]
    if long:
        return f"its element {long[0][:20]!r}... is {len(long[0].encode())} bytes long, over Linux's {NAME_MAX}"
    norm = os.path.normpath(path)
    if norm == "." or norm == ".." or norm.startswith("../"):
        return "it leaves the directory it is relative to ('..')"
    if ".." in path.split("/"):
        return "it has a '..' element"
    return None


# An image's user: numeric, as the layer has no /etc/passwd to resolve a name in.
_IMAGE_USER = re.compile(r"([0-9]{1,10})(?::([0-9]{1,10}))?")
# The largest ID Linux gives a user or group ((uid_t)-1 means "no change").
MAX_ID = 2**32 - 2


def image_user_problem(user: str) -> str | None:
    """Why `user` cannot be an image config's User here (`UID` or `UID:GID`), or None."""
    m = _IMAGE_USER.fullmatch(user or "")
    if not m:
        return (
            "it is not UID or UID:GID in numbers (the image has no /etc/passwd or /etc/group "
            "in which a name would resolve)"
        )
    if any(int(i) > MAX_ID for i in m.groups() if i is not None):
        return f"an ID is over {MAX_ID}, the largest Linux gives"
    return None


# Permission bits of a file in an image, with setuid (0o4000), setgid (0o2000), sticky.
SETUID_BITS = 0o6000


def file_mode_problem(mode: str) -> str | None:
    """Why `mode` is not a file mode in octal (e.g. `0644`, `4755`), or None."""
    if not re.fullmatch(r"0?[0-7]{3,4}", mode or ""):
        return "it is not an octal mode of 3 or 4 digits such as '0644', '0755' or '4755'"
    return None


# Tags the go command sets itself (or that mean "never build this file"): as a user
# tag, `ignore` pulls in generators and examples (`//go:build ignore`), `cgo` files
# that need cgo (k4s builds with CGO_ENABLED=0), a GOOS/GOARCH another platform's files.
_RESERVED_TAGS = frozenset(
    "ignore cgo gc gccgo unix linux darwin windows freebsd netbsd openbsd android ios js "
    "wasip1 plan9 solaris illumos aix dragonfly amd64 arm64 386 arm riscv64 ppc64 ppc64le "
    "s390x loong64 mips mipsle mips64 mips64le wasm".split()
)


def build_tag_problem(tag: str) -> str | None:
    """Why `tag` (a well-formed tag) must not be given in `build_tags`, or None."""
    if tag in _RESERVED_TAGS or re.fullmatch(r"go1\.[0-9]+", tag):
        return "it is a tag the go command sets itself (or `ignore`, which marks files never to build)"
    return None


def ldflag_problem(flag: str) -> str | None:
    """Why `flag` is not one of the linker flags k4s passes through, or None."""
    if flag in ("-s", "-w") or _LDFLAG_X.fullmatch(flag):
        return None
    return f"only {LDFLAGS_ALLOWED} are allowed"


# The kernel's MODULE_NAME_LEN (64 - sizeof(long) on 64-bit machines), with its NUL.
KMOD_NAME_MAX = 55


def kernel_module_problem(name: str) -> str | None:
    if not _KMOD.fullmatch(name or ""):
        return "a kernel module name has only letters, digits, '_' and '-', and does not start with '-'"
    if len(name) > KMOD_NAME_MAX:
        return f"it is {len(name)} characters long; the kernel's module names have at most {KMOD_NAME_MAX}"
    return None


# A size: a number and an optional unit, binary (KiB, MiB, GiB) or decimal (kB, MB, GB).
# ASCII digits only: `\d` would take other scripts' digits ("４０MiB").
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(?: ?(B|KiB|MiB|GiB|kB|KB|MB|GB))?")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
               "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3}


def size_bytes(value: str) -> int | None:
    """`"40MiB"` -> 41943040; None when `value` is not a size."""
    m = _SIZE.fullmatch(value)
    if not m:
        return None
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def size_problem(value: str) -> str | None:
    if size_bytes(value) is None:
        return "it is not a size (a number with an optional unit: B, KiB, MiB, GiB, kB, MB, GB)"
    if size_bytes(value) == 0:
        return "it is zero"
    return None


def format_size(n: int) -> str:
    """41943040 -> '41,943,040 B (40.0 MiB)'."""
    return f"{n:,} B ({n / (1 << 20):.1f} MiB)"


# A Debian kernel package pin (linux_kernel's `debian_packages`): Debian Policy 5.6.1
# (package names: lower-case letters, digits, '+', '-', '.'; at least two characters,
# starting alphanumeric) and 5.6.12 (versions: [epoch:]upstream[-revision] of
# alphanumerics and . + ~ -); a SHA-256 as 64 lower-case hex digits. Neither can start
# with '-', so no value reaches apt-get as an option.
DEBIAN_ARCHES = ("amd64", "arm64")
_DEB_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_DEB_VERSION = re.compile(r"([0-9]+:)?[0-9][A-Za-z0-9.+~-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def debian_pin_problem(arch: str, pin: dict) -> str | None:
    """What is wrong with one architecture's pin, {"package", "version", "sha256"}."""
    if arch not in DEBIAN_ARCHES:
        return f"{arch!r} is not an architecture k4s builds for ({', '.join(DEBIAN_ARCHES)})"
    keys = sorted(pin)
    if keys != ["package", "sha256", "version"]:
        return f"the {arch} pin has the keys {', '.join(keys) or 'none'}; it needs exactly package, version and sha256"
    if not _DEB_PACKAGE.fullmatch(pin["package"]):
        return f"the {arch} package {pin['package']!r} is not a Debian package name"
    if not _DEB_VERSION.fullmatch(pin["version"]):
        return f"the {arch} version {pin['version']!r} is not a Debian version"
    if not _SHA256.fullmatch(pin["sha256"]):
        return f"the {arch} sha256 {pin['sha256']!r} is not 64 lower-case hex digits"
    return None
