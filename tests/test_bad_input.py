"""Bad input, table-driven: every field of `go_busybox` and `initramfs`, the image
layout, and k4stool's own checks. Each row is one bad value with the field the error
must name and a piece of its text; add a row to cover a new case.

All fast (no build step runs): fields through Pants' own target parsing, the layout
through `check_layout`, k4stool through `go test`. The end-to-end rows (a real
`pants package` of bad targets) are in test_integration.py's `BAD`.
"""

from __future__ import annotations


import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from k4s_plugin import register
from k4s_plugin.rules.layout import BUSYBOX, LayoutEntry, check_layout

from .conftest import REPO, go_test

# (target kind, field, BUILD value as Python source, text the error must contain)
BB = "go_busybox"
IR = "initramfs"
FIELD_ROWS = [
    # commands: flags, paths and junk are not import paths (the -out=/-gomod=/-dlcache=
    # rows reached k4stool as its own flags and wrote outside the sandbox).
    (BB, "commands", '["-out=/tmp/x/modules.tar"]', "not a Go import path"),
    (BB, "commands", '["-gomod=/etc", "a.b/c"]', "not a Go import path"),
    (BB, "commands", '["a.b/c", "-dlcache=/tmp/x"]', "not a Go import path"),
    (BB, "commands", '["--out", "a.b/c"]', "starts with '-'"),
    (BB, "commands", '["-"]', "it is empty"),
    (BB, "commands", '["/abs/path"]', "starts or ends with '/'"),
    (BB, "commands", '["./rel"]', "starts or ends with '.'"),
    (BB, "commands", '["a.b/../c"]', "starts or ends with '.'"),
    (BB, "commands", '["a.b//c"]', "empty element"),
    (BB, "commands", '["with space"]', "characters outside"),
    (BB, "commands", '["a.b/c;rm"]', "characters outside"),
    (BB, "commands", '["-a.b/c"]', "only exclusions"),
    # ldflags: only -s, -w, -X (`-o` wrote a bb outside the sandbox).
    (BB, "ldflags", '["-o /tmp/x/bb"]', "only `-s`, `-w` and `-X"),
    (BB, "ldflags", '["-s", "-o", "/tmp/x/bb"]', "only `-s`, `-w` and `-X"),
    (BB, "ldflags", '["-tmpdir=/tmp/x"]', "only `-s`, `-w` and `-X"),
    (BB, "ldflags", '["-cpuprofile=/tmp/x"]', "only `-s`, `-w` and `-X"),
    (BB, "ldflags", '["-memprofile /tmp/x"]', "only `-s`, `-w` and `-X"),
    (BB, "ldflags", '["-X main.v=a b"]', "only `-s`, `-w` and `-X"),
    (BB, "ldflags", '["-X main.v=\'q\'"]', "only `-s`, `-w` and `-X"),
    (BB, "ldflags", '["-linkmode=external"]', "only `-s`, `-w` and `-X"),
    # command_names: one path element (`..` passed and died later as "a bug in k4s").
    (BB, "command_names", '{"a.b/c": ".."}', "one path element"),
    (BB, "command_names", '{"a.b/c": "x/y"}', "one path element"),
    (BB, "command_names", '{"a.b/c": "-x"}', "one path element"),
    (BB, "command_names", '{"a.b/c": ""}', "one path element"),
    (BB, "command_names", '{"../c": "c"}', "not a Go import path"),
    # patches: files in this repository.
    (BB, "patches", '["x.txt"]', "must end in `.patch`"),
    (BB, "patches", '["../../../../etc/x.patch"]', "leaves the directory"),
    (BB, "patches", '["/etc/x.patch"]', "it is absolute"),
    (BB, "patches", '["//../x.patch"]', "leaves the directory"),
    # output_path: under dist/ (an absolute one made Pants panic and retry forever).
    (BB, "output_path", '"/tmp/x/bb"', "it is absolute"),
    (BB, "output_path", '"../bb"', "leaves the directory"),
    (BB, "build_tags", '["a,b"]', "one tag per string"),
    (BB, "build_tags", '["-o"]', "not a Go build tag"),
    (BB, "goarch", '"sparc"', "arm64"),
    (BB, "goos", '"darwin"', "linux"),
    (BB, "local_modules", '["//:a", 1]', "string"),
    # initramfs
    (IR, "init", '"../bin/sh"', "one path element"),
    (IR, "uinit", '"a/b"', "one path element"),
    (IR, "shell", '".."', "one path element"),
    (IR, "files_mapping", '{"p/motd": "/etc/motd"}', "it is absolute"),
    (IR, "files_mapping", '{"p/motd": "../etc/motd"}', "leaves the directory"),
    (IR, "files_mapping", '{"p/motd": "a/../../b"}', "leaves the directory"),
    (IR, "files_mapping", '{"p/motd": "etc/../motd"}', "'..' element"),
    (IR, "files_mapping", '{"p/motd": ""}', "it is empty"),
    (IR, "files_mapping", '{"/etc/passwd": "etc/motd"}', "it is absolute"),
    (IR, "output_path", '"/tmp/x/abs.cpio"', "it is absolute"),
    (IR, "output_path", '"a/../../x.cpio"', "leaves the directory"),
    (IR, "kernel_modules", '["../../etc/x"]', "kernel module name"),
    (IR, "kernel_modules", '["a b"]', "kernel module name"),
    (IR, "kernel_modules_dir", '"lib/modules"', "absolute directory path"),
    (IR, "kernel_modules_dir", '"/lib/modules/../../etc"', "absolute directory path"),
    (IR, "kernel_args", '["a b"]', "one word"),
    (IR, "node_components", '["../bin/sh"]', "one path element"),
    (IR, "images", '["//:a", 1]', "string"),
    (IR, "vm_port_forwards", '["6443"]', "<host port>:<guest port>"),
    (IR, "vm_port_forwards", '["70000:1"]', "<host port>:<guest port>"),
    (IR, "vm_memory", "32", "64"),
    (IR, "vm_cpus", "0", "at least 1"),
    (IR, "vm_accel", '"hvf"', "tcg"),
    (IR, "compression", '"lz4"', "zstd"),
    (IR, "max_size", '"forty megs"', "not a size"),
    (IR, "max_size", '"40 MiBs"', "not a size"),
    (IR, "max_size", '"0MiB"', "it is zero"),
]


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    from pants.core.target_types import FilesGeneratorTarget, FileTarget, RelocatedFiles

    return RuleRunner(
        target_types=[*register.target_types(), FilesGeneratorTarget, FileTarget, RelocatedFiles]
    )


@pytest.mark.parametrize(
    "kind,field,value,expected", FIELD_ROWS, ids=[f"{r[1]}={r[2]}" for r in FIELD_ROWS]
)
def test_bad_field_value(rule_runner: RuleRunner, kind: str, field: str, value: str, expected: str) -> None:
    required = 'commands=["a.b/c"]' if kind == BB else 'busybox=":bb"'
    if field in ("commands", "busybox"):
        required = ""
    build = f'{kind}(name="t", {required}{", " if required else ""}{field}={value})'
    rule_runner.write_files(
        {"p/go.mod": "module example.com/p\n\ngo 1.24\n", "p/go.sum": "", "p/BUILD": build}
    )
    with pytest.raises(ExecutionError) as exc:
        rule_runner.get_target(Address("p", target_name="t"))
    msg = str(exc.value)
    # Ours: "The `field` field of p:t has ...". Pants' own (valid_choices): "the 'field'
    # field in target p:t must be one of ...".
    assert f"`{field}` field of p:t" in msg or f"'{field}' field in target p:t" in msg, msg
    assert expected in msg, msg
    assert "bug in k4s" not in msg


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


def test_k4stool_refuses_escapes() -> None:
    """k4stool's defence in depth (k4s_plugin/tools/k4stool/safety_test.go): patterns
    that are flags, linker flags that write files, patch names with `..` (a new-file
    and a delete hunk), tars that write through their own symlinks, go.mod `replace`
    directories outside the module."""
    go_test(REPO / "k4s_plugin" / "tools", "./k4stool/", run="Check|Patch|Unpack|Replace")


def test_damaged_module_cache_names_the_cache() -> None:
    """A damaged zip in the module proxy named cache: the error says which cache to
    delete (k4stool classifies it, TestCheckModcacheDamage), not "a bug in k4s"."""
    from k4s_plugin.rules.errors import explain

    msg = explain(Address("p", target_name="t"), "module download", "E_MODCACHE", "zip: not a valid zip file")
    assert "kuties_go_mod_proxy" in msg and "Fix:" in msg and "bug in k4s" not in msg
