"""k4s_plugin/rules/layout.py, the image's layout, as the pure functions it is:
`check_layout`'s table of bad layouts (each row: the entries, the field the problem
must name and a piece of its text; add a row to cover a new case) and the layouts it
accepts, and the modes `dependency_records` and `base_layout_records` give."""

from __future__ import annotations

import pytest

from k4s_plugin.rules.layout import (
    BUSYBOX,
    LayoutEntry,
    base_layout_records,
    check_layout,
    dependency_records,
)


def f(path: str, origin: str = "files_mapping", what: str = "p/motd.txt") -> LayoutEntry:
    return LayoutEntry(path, "file", origin, what)


BUSYBOX_LAYOUT = [
    LayoutEntry("bbin/bb", "file", BUSYBOX, "the busybox's bbin/bb"),
    LayoutEntry("bbin/ls", "symlink", BUSYBOX, "the link bbin/ls -> bb"),
    LayoutEntry("init", "symlink", BUSYBOX, "the link init -> bbin/init"),
    LayoutEntry("bin/sh", "symlink", BUSYBOX, "the link bin/sh -> ../bbin/gosh"),
]

# (extra entries, base_layout, field the error must name, text it must contain)
LAYOUT_ROWS = [
    ([f("bbin")], True, "files_mapping", "a file or link cannot hold other entries"),
    ([f("bin")], False, "files_mapping", "a file or link cannot hold other entries"),
    ([f("tmp")], True, "files_mapping", "a directory of u-root's base layout"),
    ([f("var/log", "dependencies")], True, "dependencies", "a directory of u-root's base layout"),
    ([f("bbin/ls")], True, "files_mapping", "which the busybox layout already uses"),
    ([f("init")], True, "files_mapping", "which the busybox layout already uses"),
    ([f("etc/motd"), f("etc/motd/x", what="p/x")], True, "files_mapping", "cannot hold other entries"),
    ([f("etc/a"), f("etc/a", "dependencies", "p/b")], True, "dependencies", "already uses"),
    ([f("lib/modules/x.ko", "kernel_modules"), f("lib/modules/x.ko")], True, "files_mapping", "already uses"),
    ([f("/etc/motd")], True, "files_mapping", "it is absolute"),
    # Below a file or device node of the base layout; onto a device node; too long.
    ([f("etc/localtime/x")], True, "files_mapping", "inside the base layout's file etc/localtime"),
    ([f("dev/null/x")], True, "files_mapping", "inside the base layout's device dev/null"),
    ([f("dev/console")], True, "files_mapping", "silently replace the device"),
    ([f("dev/urandom", "dependencies")], True, "dependencies", "silently replace the device"),
    ([f("etc/" + "n" * 256)], True, "files_mapping", "over Linux's 255"),
    ([f("a/" * 2048 + "x")], True, "files_mapping", "over Linux's 4095"),
    ([f("etc/../../motd")], True, "files_mapping", "leaves the directory"),
]


@pytest.mark.parametrize("extra,base_layout,field,expected", LAYOUT_ROWS)
def test_bad_layout(extra, base_layout: bool, field: str, expected: str) -> None:
    problem = check_layout(BUSYBOX_LAYOUT + extra, base_layout)
    assert problem is not None
    assert problem.field == field, problem
    assert expected in problem.problem, problem
    assert problem.fix


def test_good_layout() -> None:
    extra = [f("etc/motd"), f("etc/resolv.conf"), f("usr/share/k4s/x", "dependencies")]
    assert check_layout(BUSYBOX_LAYOUT + extra, True) is None
    # The user's etc/localtime wins over the base layout's; without the base layout,
    # dev/console is the user's to provide.
    assert check_layout(BUSYBOX_LAYOUT + [f("etc/localtime"), f("dev/console", what="p/c")], False) is None
    assert check_layout(BUSYBOX_LAYOUT + [f("etc/localtime")], True) is None


def test_dependency_modes_are_kept() -> None:
    """An executable file stays executable in the image (it landed 0644)."""
    records = dependency_records(["p/run.sh", "p/motd"], {"p/run.sh": "bin/run"}, "files_mapping",
                                 "dependencies", frozenset({"p/run.sh"}))
    assert {r.path: r.mode for r in records} == {"bin/run": 0o755, "p/motd": 0o644}


def test_base_layout_dirs_are_sticky() -> None:
    modes = {r.path: r.mode for r in base_layout_records(True)}
    assert modes == {"tmp": 0o1777, "var/log": 0o1777, "var/lock": 0o1777}
    assert base_layout_records(False) == []
