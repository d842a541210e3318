"""Bad input, table-driven: every field of `go_busybox` and `initramfs`, and k4stool's
own checks (the image layout's rows are k4s_plugin/rules/layout_test.py's). Each row is one bad value with the field the error
must name and a piece of its text; add a row to cover a new case.

All fast (no build step runs): fields through Pants' own target parsing, k4stool
through `go test`. The end-to-end rows (a real
`pants package` of bad targets) are in test_package.py's `BAD`.
"""

from __future__ import annotations

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from k4s_plugin import register

from ..conftest import REPO, go_test

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
    (BB, "build_tags", '["ignore"]', "a tag the go command sets itself (or `ignore`"),
    (BB, "build_tags", '["netgo", "cgo"]', "a tag the go command sets itself"),
    (BB, "build_tags", '["arm64"]', "a tag the go command sets itself"),
    (BB, "build_tags", '["go1.21"]', "a tag the go command sets itself"),
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
    # Round two (#26): reserved names, Linux's limits, control and non-ASCII characters,
    # lax values.
    (BB, "command_names", '{"a.b/c": "bb"}', "'bb' is reserved"),
    (BB, "command_names", '{"a.b/c": "' + "x" * 300 + '"}', "over Linux's 255"),
    (BB, "commands", '["a.b/' + "x" * 300 + '"]', "over Linux's 255"),
    (BB, "output_path", '"."', "leaves the directory"),
    (BB, "output_path", '"x/./bb"', "not a normal path"),
    (BB, "output_path", '"x/"', "not a normal path"),
    (BB, "output_path", '"a\\tb"', "control character"),
    (BB, "output_path", '"' + "x/" * 2100 + 'bb"', "over Linux's 4095"),
    (IR, "files_mapping", '{"p/motd": "etc/' + "m" * 256 + '"}', "over Linux's 255"),
    (IR, "files_mapping", '{"p/motd": "etc/mo\\x1btd"}', "control character"),
    (IR, "init", '"bb"', "'bb' is reserved"),
    (IR, "node_components", '["kubelet", "kine", "kubelet"]', "more than once"),
    (IR, "max_size", '"\\uff14\\uff10MiB"', "not a size"),
    (IR, "max_size", '"\\u0664\\u0660"', "not a size"),
    (IR, "max_size", '" 40MiB"', "not a size"),
    (IR, "compression", '"none "', "zstd"),
    (BB, "goarch", '"amd64\\n"', "arm64"),
    (BB, "local_modules", '"//:a"', "string"),
    ("oci_image", "image_name", '"K4S.local/X"', "not an image reference"),
    ("oci_image", "env", '["=x"]', "not NAME=value"),
    ("oci_image", "output_path", '"../x.tar"', "leaves the directory"),
    ("oci_image", "command_links", '{"bin/sh": "sh"}', "under bin/"),
    ("oci_image", "command_links", '{"/agnhost": "agnhost"}', "it is absolute"),
    ("oci_image", "command_links", '{"agnhost": "bb"}', "'bb' is reserved"),
    # user: numeric (no /etc/passwd in the layer), within Linux's IDs.
    ("oci_image", "user", '"nobody"', "not UID or UID:GID in numbers"),
    ("oci_image", "user", '"1234:nogroup"', "not UID or UID:GID in numbers"),
    ("oci_image", "user", '"4294967295"', "the largest Linux gives"),
    # files: relative paths in the image, outside what it lays out; sources in the repository.
    ("oci_image", "files", '{"/data.json": "p/data.json"}', "it is absolute"),
    ("oci_image", "files", '{"bbin/sh": "p/sh"}', "under bbin/"),
    ("oci_image", "files", '{"data.json": "../../etc/shadow"}', "leaves the directory"),
    # file_modes: octal.
    ("oci_image", "file_modes", '{"bbin/bb": "rwsr-xr-x"}', "not an octal mode"),
    ("oci_image", "file_modes", '{"bbin/bb": "0o4755"}', "not an octal mode"),
    ("oci_image", "file_modes", '{"../x": "0644"}', "leaves the directory"),
]


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    from pants.core.target_types import FilesGeneratorTarget, FileTarget, RelocatedFiles

    return RuleRunner(
        target_types=[*register.target_types(), FilesGeneratorTarget, FileTarget, RelocatedFiles]
    )


def parse_error(rule_runner: RuleRunner, kind: str, field: str | None = None, value: str | None = None,
                name: str = "t") -> str:
    """The error of parsing `<kind>(name=<name>, <field>=<value>)` (with the kind's
    required field) in p/BUILD; fails the test if it parses."""
    required = 'commands=["a.b/c"]' if kind == BB else 'busybox=":bb"'
    if field in ("commands", "busybox"):
        required = ""
    given = f"{field}={value}" if field else ""
    build = f"{kind}(name={name!r}, {', '.join(x for x in (required, given) if x)})"
    rule_runner.write_files(
        {"p/go.mod": "module example.com/p\n\ngo 1.24\n", "p/go.sum": "", "p/BUILD": build}
    )
    with pytest.raises(ExecutionError) as exc:
        rule_runner.get_target(Address("p", target_name=name))
    return str(exc.value)


@pytest.mark.parametrize(
    "kind,field,value,expected", FIELD_ROWS, ids=[f"{r[1]}={r[2][:40]}" for r in FIELD_ROWS]
)
def test_bad_field_value(rule_runner: RuleRunner, kind: str, field: str, value: str, expected: str) -> None:
    msg = parse_error(rule_runner, kind, field, value)
    # Ours: "The `field` field of p:t has ...". Pants' own (valid_choices): "the 'field'
    # field in target p:t must be one of ...".
    assert f"`{field}` field of p:t" in msg or f"'{field}' field in target p:t" in msg, msg
    assert expected in msg, msg
    assert "k4s: E_BAD_FIELD: " in msg, msg
    assert "bug in k4s" not in msg


# A target's name makes file names: its default `output_path` (dist/<dir>/<name>), an
# image's var/lib/k4s/images/<name>.tar. `..` made Pants panic and retry forever; `.`
# wrote dist/<dir> as a file.
BAD_NAMES = ["..", ".", "-x", "a b", "a\tb", "é", "x" * 238]


@pytest.mark.parametrize("kind", [BB, IR, "oci_image"])
@pytest.mark.parametrize("name", BAD_NAMES, ids=[n[:8] for n in BAD_NAMES])
def test_bad_target_name(rule_runner: RuleRunner, kind: str, name: str) -> None:
    msg = parse_error(rule_runner, kind, name=name)
    assert "k4s: E_BAD_FIELD: The `name` field of p:" in msg and "Fix: Rename the target" in msg, msg


def test_good_target_names(rule_runner: RuleRunner) -> None:
    for name in ("bb", "initramfs-xz", "a.b_c+d", "x" * 237):
        rule_runner.write_files(
            {"p/go.mod": "module example.com/p\n\ngo 1.24\n", "p/go.sum": "",
             "p/BUILD": f'go_busybox(name="{name}", commands=["a.b/c"])'}
        )
        rule_runner.get_target(Address("p", target_name=name))


# Names the commands get from their import paths (the rewrite plan's), checked before
# the image takes them: a first-party directory `bb` took over `bb <cmd>`.
@pytest.mark.parametrize("names,given,field,expected", [
    ({"bb": "example.com/p/cmds/bb"}, {}, "commands", "'bb' is reserved"),
    ({"bb": "example.com/p/cmds/x"}, {"example.com/p/cmds/x": "bb"}, "command_names", "'bb' is reserved"),
    ({"a~b": "example.com/p/cmds/a~b"}, {}, "commands", "one path element of letters"),
])
def test_bad_derived_command_name(names, given, field, expected) -> None:
    from pants.util.frozendict import FrozenDict

    from k4s_plugin.rules.rewrite import check_command_names

    with pytest.raises(Exception) as exc:
        check_command_names(Address("p", target_name="bb"), names, FrozenDict(given))
    msg = str(exc.value)
    assert f"k4s: E_BAD_INPUT: The `{field}` field of p:bb" in msg and expected in msg and "Fix:" in msg, msg
    check_command_names(Address("p", target_name="bb"), {"echo": "a.b/echo"}, FrozenDict())


def test_modules_dep_cycle_is_an_error() -> None:
    """A modules.dep cycle was a RecursionError; soft dependency cycles are not errors."""
    from k4s_plugin.rules.kmods import _closure

    dep = "kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko: kernel/a.ko\n"
    with pytest.raises(ValueError, match="kernel/a.ko -> kernel/b.ko -> kernel/c.ko -> kernel/a.ko"):
        _closure(dep, ("a",))
    order, missing, _ = _closure("kernel/a.ko:\nkernel/b.ko:\n", ("a", "b"), {"a": ["b"], "b": ["a"]})
    assert sorted(order) == ["kernel/a.ko", "kernel/b.ko"] and not missing


def test_k4stool_refuses_escapes() -> None:
    """k4stool's defence in depth (k4s_plugin/tools/k4stool/internal/*/: cli_test.go, compile_test.go, tar_test.go, download/safety_test.go): patterns
    that are flags, linker flags that write files, patch names with `..` (a new-file
    and a delete hunk), tars that write through their own symlinks, go.mod `replace`
    directories outside the module."""
    go_test(REPO / "k4s_plugin" / "tools", "./k4stool/...", run="Check|Patch|Unpack|Replace")


def test_damaged_module_cache_names_the_cache() -> None:
    """A damaged zip in the module proxy named cache: the error says which cache to
    delete (k4stool classifies it, TestCheckModcacheDamage), not "a bug in k4s"."""
    from k4s_plugin.rules.errors import explain

    msg = explain(Address("p", target_name="t"), "module download", "E_MODCACHE", "zip: not a valid zip file")
    assert "kuties_go_mod_proxy" in msg and "Fix:" in msg and "bug in k4s" not in msg
