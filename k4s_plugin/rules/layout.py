"""The initramfs layout, checked before the cpio step (the "manifest" of rules_pkg).

`build_initramfs` gathers every entry of the image with the field it came from; this
module decides whether those entries make a bootable tree: each path relative and
inside the image, each path used once, nothing placed under a file or a link, no user
file where u-root's base layout has a directory. A problem names the entry, the field
it came from and what it clashes with; the rule turns it into a target error.
"""

from __future__ import annotations

from dataclasses import dataclass

from k4s_plugin import grammar

# The directories of u-root's base layout (mkuimage's DefaultRamfs), with their parents.
BASE_LAYOUT_DIRS = frozenset(
    "bin dev env etc lib64 proc sys tcz tmp ubin usr usr/lib var var/log var/lock".split()
)

# Where an entry came from: the field that put it there ("busybox" for the layout the
# busybox itself implies: bbin/, /init, the shell and uinit links).
BUSYBOX = "busybox"


@dataclass(frozen=True)
class LayoutEntry:
    path: str
    kind: str  # "file", "symlink", "dir"
    origin: str  # the field that put it there, or BUSYBOX
    what: str  # for messages: the source file, or what the link is


@dataclass(frozen=True)
class LayoutProblem:
    field: str
    problem: str
    fix: str


def check_layout(entries: list[LayoutEntry], base_layout: bool) -> LayoutProblem | None:
    """The first problem with these entries as one image, or None."""
    by_path: dict[str, LayoutEntry] = {}
    for e in entries:
        reason = grammar.relative_path_problem(e.path)
        if reason:
            return LayoutProblem(
                e.origin, f"puts {e.what} at {e.path!r}: {reason}.",
                "Give destinations as relative paths inside the image, e.g. 'etc/motd'.",
            )
        other = by_path.get(e.path)
        if other is not None:
            return LayoutProblem(
                e.origin if e.origin != BUSYBOX else other.origin,
                f"puts {e.what} at {e.path}, which {_describe(other)} already uses.",
                "Map one of them elsewhere with `files_mapping` (or `relocated_files`).",
            )
        by_path[e.path] = e
    for e in entries:
        parent = e.path.rsplit("/", 1)[0] if "/" in e.path else ""
        while parent:
            above = by_path.get(parent)
            if above is not None and above.kind != "dir":
                blame = above if above.origin != BUSYBOX else e
                return LayoutProblem(
                    blame.origin,
                    f"puts {above.what} at {above.path}, but {e.what} must go inside "
                    f"{above.path}/ ({e.path}): a file or link cannot hold other entries.",
                    f"Map {above.what} to another destination with `files_mapping`.",
                )
            parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
        if base_layout and e.origin != BUSYBOX and e.kind != "dir" and e.path in BASE_LAYOUT_DIRS:
            return LayoutProblem(
                e.origin,
                f"puts {e.what} at {e.path}, a directory of u-root's base layout.",
                "Map the file inside that directory (e.g. 'etc/motd'), or set "
                "`base_layout=False` if the image really must not have it.",
            )
    return None


def _describe(e: LayoutEntry) -> str:
    return "the busybox layout" if e.origin == BUSYBOX else f"{e.what} (from `{e.origin}`)"
