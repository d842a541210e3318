"""The initramfs layout: the manifest records of the image, checked, then written as
the manifest the cpio step packs (the "manifest" of rules_pkg). Pure functions: the
rules (initramfs.py, cpio.py) gather the inputs and run the step.

Each record keeps the field it came from, so that `check_layout` can tell whether
the records make a bootable tree: each path relative and inside the image, each path
used once, nothing placed under a file or a link, no user file where u-root's base
layout has a directory. A problem names the entry, the field it came from and what it
clashes with; the rule turns it into a target error.
"""

from __future__ import annotations

import json
import os.path
from dataclasses import dataclass
from typing import Iterable, Mapping

from k4s_plugin import grammar

# The directories of u-root's base layout (mkuimage's DefaultRamfs), with their parents.
BASE_LAYOUT_DIRS = frozenset(
    "bin dev env etc lib64 proc sys tcz tmp ubin usr usr/lib var var/log var/lock".split()
)

# The files and device nodes of that layout: nothing goes below them; the device nodes
# are never replaced (a file at dev/console is not a console); the files
# (etc/resolv.conf, etc/localtime) are the image's defaults, and a user file wins.
BASE_LAYOUT_DEVICES = frozenset("dev/console dev/tty dev/null dev/port dev/urandom".split())
BASE_LAYOUT_FILES = frozenset({"etc/resolv.conf", "etc/localtime"})
# World-writable directories of that layout, with the sticky bit (mkuimage makes them
# 0777: anyone could delete anyone's files in /tmp).
STICKY_DIRS = ("tmp", "var/lock", "var/log")
BASE_LAYOUT = "base_layout"

# Where an entry came from: the field that put it there ("busybox" for the layout the
# busybox itself implies: bbin/, /init, the shell and uinit links).
BUSYBOX = "busybox"

# Where the node finds OCI image archives to import (k4s-node, images.go).
IMAGES_DIR = "var/lib/k4s/images"
# The node supervisor's component list (`node_components`; k4s-node, main.go).
NODE_COMPONENTS = "etc/k4s/components"


@dataclass(frozen=True)
class LayoutEntry:
    path: str
    kind: str  # "file", "symlink", "dir"
    origin: str  # the field that put it there, or BUSYBOX
    what: str  # for messages: the source file, or what the link is


@dataclass(frozen=True)
class Record:
    """One manifest record: a file copied from `src` in the sandbox, a symlink to
    `target`, or a file k4stool writes from `argv` (etc/uinit.flags); with the field
    it came from (`origin`) and what it is (`what`), for check_layout."""

    path: str
    type: str  # "file", "symlink", "argv", "dir"
    origin: str
    what: str
    src: str | None = None
    target: str | None = None
    argv: tuple[str, ...] | None = None
    mode: int | None = None

    def entry(self) -> LayoutEntry:
        return LayoutEntry(self.path, "file" if self.type in ("file", "argv") else self.type, self.origin, self.what)


    def manifest_json(self) -> dict:
        record: dict = {"path": self.path, "type": self.type}
        if self.src is not None:
            record["src"] = self.src
        if self.target is not None:
            record["target"] = self.target
        if self.argv is not None:
            record["argv"] = list(self.argv)
        if self.mode is not None:
            record["mode"] = self.mode
        return record


def base_layout_records(base_layout: bool) -> list[Record]:
    """What k4s changes in u-root's base layout (which k4stool adds): the sticky bit on
    its world-writable directories."""
    if not base_layout:
        return []
    return [Record(d, "dir", BASE_LAYOUT, f"the base layout's {d}/", mode=0o1777) for d in STICKY_DIRS]


def file_record(path: str, src: str, origin: str, what: str, mode: int = 0o644) -> Record:
    return Record(path, "file", origin, what, src=src, mode=mode)


def _link(path: str, target: str) -> Record:
    return Record(path, "symlink", BUSYBOX, f"the link {path} -> {target}", target=target)


def busybox_records(
    bb_src: str,
    commands: Iterable[str],
    init: str,
    shell: str | None,
    uinit: str | None,
    uinit_args: tuple[str, ...],
    components_src: str | None,
) -> list[Record]:
    """What the busybox implies: bbin/bb and a link per command, /init, the shell and
    uinit links, etc/uinit.flags, and the node supervisor's component list."""
    records = [file_record("bbin/bb", bb_src, BUSYBOX, "the busybox's bbin/bb", mode=0o755)]
    records += [_link(f"bbin/{name}", "bb") for name in commands if name != "bb"]
    records.append(_link("init", f"bbin/{init}"))
    if shell:
        for link in ("bin/sh", "bin/defaultsh"):
            records.append(_link(link, f"../bbin/{shell}"))
    if uinit is not None:
        records.append(_link("bin/uinit", f"../bbin/{uinit}"))
        if uinit_args:
            records.append(Record(
                "etc/uinit.flags", "argv", BUSYBOX, "the busybox's etc/uinit.flags", argv=uinit_args, mode=0o644
            ))
    if components_src is not None:
        records.append(file_record(NODE_COMPONENTS, components_src, BUSYBOX, f"the busybox's {NODE_COMPONENTS}"))
    return records


def dependency_records(
    files: Iterable[str], mapping: Mapping[str, str], mapping_field: str, dependencies_field: str,
    executable: frozenset[str] = frozenset(),
) -> list[Record]:
    """The files of `dependencies`, each at its path or where `files_mapping` maps it;
    0755 if the file is executable in the repository (`executable`), else 0644."""
    return [
        file_record(
            os.path.normpath(mapping.get(src, src)), src,
            mapping_field if src in mapping else dependencies_field, src,
            mode=0o755 if src in executable else 0o644,
        )
        for src in files
    ]


def image_record(name: str, src: str, origin: str, what: str) -> Record:
    return file_record(f"{IMAGES_DIR}/{name}", src, origin, what)


def kernel_module_records(records: Iterable[tuple[str, str]], origin: str) -> list[Record]:
    """The module files, modules.dep and modules-load.d/k4s.conf of `kernel_modules`
    ((image path, sandbox path) pairs from kmods.py)."""
    return [file_record(dst, src, origin, f"module file {os.path.basename(dst)}") for dst, src in records]


def manifest(records: Iterable[Record], base_layout: bool, compression: str) -> bytes:
    """The manifest k4stool cpio packs: the records sorted by path."""
    content = {
        "base_layout": base_layout,
        "compression": compression,
        "records": sorted((r.manifest_json() for r in records), key=lambda r: r["path"]),
    }
    return json.dumps(content, indent=1, sort_keys=True).encode()


def image_files(records: Iterable[Record]) -> tuple[tuple[str, str], ...]:
    """(path in the image, path in the sandbox) of every regular file, for the SBOM."""
    return tuple(sorted((r.path, r.src) for r in records if r.type == "file" and r.src is not None))


@dataclass(frozen=True)
class LayoutProblem:
    field: str
    problem: str
    fix: str


def check_layout(entries: list[LayoutEntry], base_layout: bool) -> LayoutProblem | None:
    """The first problem with these entries as one image, or None."""
    by_path: dict[str, LayoutEntry] = {}
    if base_layout:
        for path in BASE_LAYOUT_DEVICES | BASE_LAYOUT_FILES:
            kind = "device" if path in BASE_LAYOUT_DEVICES else "file"
            by_path[path] = LayoutEntry(path, kind, BASE_LAYOUT, f"the base layout's {kind} {path}")
    for e in entries:
        reason = grammar.relative_path_problem(e.path)
        if reason:
            return LayoutProblem(
                e.origin, f"puts {e.what} at {_cut(e.path)!r}: {reason}.",
                "Give destinations as relative paths inside the image, e.g. 'etc/motd'.",
            )
        if e.path in BASE_LAYOUT_DEVICES and base_layout:
            return LayoutProblem(
                e.origin, f"puts {e.what} at {e.path}, the base layout's device node: a "
                "regular file there would silently replace the device.",
                "Map the file elsewhere, or set `base_layout=False` and provide the "
                "image's /dev yourself.",
            )
        other = by_path.get(e.path)
        if other is not None and other.origin == BASE_LAYOUT and e.path in BASE_LAYOUT_FILES:
            other = None  # the user's etc/resolv.conf wins over the base layout's
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
                if above.origin == BASE_LAYOUT:
                    return LayoutProblem(
                        e.origin,
                        f"puts {e.what} at {e.path}, inside {above.what}: a file or device "
                        "cannot hold other entries.",
                        f"Map {e.what} to another destination with `files_mapping`.",
                    )
                blame = above if above.origin != BUSYBOX else e
                return LayoutProblem(
                    blame.origin,
                    f"puts {above.what} at {above.path}, but {e.what} must go inside "
                    f"{above.path}/ ({e.path}): a file or link cannot hold other entries.",
                    f"Map {blame.what} to another destination with `files_mapping`.",
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
    if e.origin == BASE_LAYOUT:
        return e.what
    return "the busybox layout" if e.origin == BUSYBOX else f"{e.what} (from `{e.origin}`)"


def _cut(path: str) -> str:
    return path if len(path) <= 200 else f"{path[:120]}...({len(path):,} characters)"
