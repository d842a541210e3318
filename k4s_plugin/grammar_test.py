"""k4s_plugin/grammar.py, the rules BUILD values obey, as the pure functions they are
(named after the module, as Pants keeps `<module>_test.py`): each rule's accepted and
refused values directly, without a RuleRunner or a target around them. The field rows
of tests/integration/test_bad_input*.py check that every field uses its rule and says the fix."""

from __future__ import annotations

import pytest

from k4s_plugin import grammar


@pytest.mark.parametrize("path", ["github.com/u-root/u-root/cmds/core/ls", "go.etcd.io/etcd/server/v3", "a/b~c+d"])
def test_import_paths_accepted(path: str) -> None:
    assert grammar.import_path_problem(path) is None


@pytest.mark.parametrize(
    "path, why",
    [
        ("", "empty"),
        ("-o/x", "starts with '-'"),
        ("/abs", "starts or ends with '/'"),
        ("a/", "starts or ends with '/'"),
        ("a//b", "empty element"),
        ("a/../b", "starts or ends with '.'"),
        ("a/.hidden", "starts or ends with '.'"),
        ("a/b c", "characters outside"),
        ("a/" + "x" * 256, "over Linux's 255"),
        ("a" + "/b" * 2100, "over Linux's 4095"),
    ],
)
def test_import_paths_refused(path: str, why: str) -> None:
    assert why in (grammar.import_path_problem(path) or "")


def test_command_patterns_take_globs_and_one_exclusion() -> None:
    assert grammar.command_pattern_problem("github.com/u-root/u-root/cmds/core/*") is None
    assert grammar.command_pattern_problem("-github.com/u-root/u-root/cmds/core/b[ai]nd") is None
    assert "starts with '-'" in grammar.command_pattern_problem("--github.com/x")
    assert "glob characters" in grammar.import_path_problem("a/b!", globs=True)
    assert grammar.import_path_problem("a/*") is not None  # no globs where a path is exact


@pytest.mark.parametrize("name, ok", [("etcd", True), ("kube-apiserver", True), ("a.b+c", True), ("bb", False),
                                      ("-x", False), (".x", False), ("a/b", False), ("", False), ("x" * 256, False)])
def test_command_names(name: str, ok: bool) -> None:
    assert (grammar.command_name_problem(name) is None) == ok


def test_target_names_leave_room_for_the_longest_file_k4s_derives() -> None:
    longest = "x" * grammar.TARGET_NAME_MAX
    assert grammar.target_name_problem(longest) is None
    assert len((longest + ".cpio.zst.cdx.json").encode()) == grammar.NAME_MAX
    assert "at most" in grammar.target_name_problem(longest + "x")
    assert grammar.target_name_problem("..") is not None


@pytest.mark.parametrize("path, why", [("", "empty"), ("/etc/motd", "absolute"), ("../x", "leaves"),
                                       ("a/../../x", "leaves"), ("a/../b", "'..' element"),
                                       ("a\nb", "control character"), ("a\0b", "control character")])
def test_relative_paths_refused(path: str, why: str) -> None:
    assert why in (grammar.relative_path_problem(path) or "")


def test_relative_paths_accepted() -> None:
    assert grammar.relative_path_problem("etc/motd") is None
    assert grammar.relative_path_problem("distros/uroot/./motd") is None


def test_build_tags_the_go_command_sets_are_refused() -> None:
    for tag in ("ignore", "cgo", "linux", "arm64", "go1.21"):
        assert grammar.build_tag_problem(tag), tag
    assert grammar.build_tag_problem("netgo") is None
    assert grammar.build_tag_problem("go1.x") is None


@pytest.mark.parametrize("flag, ok", [("-s", True), ("-w", True), ("-X main.version=1.0", True),
                                      ("-X k8s.io/component-base/version.gitVersion=v1.37.2", True),
                                      ("-X main.v=a b", False), ("-X main.v='x'", False), ("-o", False),
                                      ("-tmpdir=/tmp", False), ("-X main.v=\x00", False), ("-X =1", False)])
def test_ldflags(flag: str, ok: bool) -> None:
    assert (grammar.ldflag_problem(flag) is None) == ok


def test_kernel_module_names() -> None:
    assert grammar.kernel_module_problem("br_netfilter") is None
    assert grammar.kernel_module_problem("nf-conntrack") is None
    assert grammar.kernel_module_problem("-f") is not None
    assert grammar.kernel_module_problem("a" * (grammar.KMOD_NAME_MAX + 1)) is not None


@pytest.mark.parametrize("value, n", [("40MiB", 40 << 20), ("41943040", 41943040), ("1.5 GiB", 3 << 29),
                                      ("200MB", 200_000_000), ("4kB", 4000), ("7B", 7)])
def test_sizes(value: str, n: int) -> None:
    assert grammar.size_bytes(value) == n and grammar.size_problem(value) is None


@pytest.mark.parametrize("value", ["", "40 mib", "-1", "40MiBs", "\uff14\uff10MiB", "0", "0KiB"])
def test_sizes_refused(value: str) -> None:
    assert grammar.size_problem(value)


def test_format_size() -> None:
    assert grammar.format_size(41943040) == "41,943,040 B (40.0 MiB)"


def test_debian_pins() -> None:
    good = {"package": "linux-image-6.1.0-57-amd64", "version": "6.1.192-3", "sha256": "a" * 64}
    assert grammar.debian_pin_problem("amd64", good) is None
    for arch, pin in [("i386", good), ("amd64", {**good, "package": "-linux"}), ("amd64", {**good, "version": "-1"}),
                      ("amd64", {**good, "sha256": "A" * 64}), ("amd64", {k: v for k, v in good.items() if k != "sha256"}),
                      ("amd64", {**good, "extra": "x"})]:
        assert grammar.debian_pin_problem(arch, pin), (arch, pin)


@pytest.mark.parametrize(
    "user, ok",
    [("1234", True), ("65534:65534", True), ("0", True), ("4294967294:0", True),
     ("4294967295", False), ("nobody", False), ("1234:nogroup", False), ("", False), ("1:2:3", False),
     ("-1", False), (" 1", False), ("\uff11", False)],
)
def test_image_users(user: str, ok: bool) -> None:
    assert (grammar.image_user_problem(user) is None) == ok


@pytest.mark.parametrize(
    "mode, ok",
    [("0644", True), ("644", True), ("4755", True), ("04755", True), ("0755", True),
     ("", False), ("0o644", False), ("rwx", False), ("8644", False), ("107555", False), ("75", False)],
)
def test_file_modes(mode: str, ok: bool) -> None:
    assert (grammar.file_mode_problem(mode) is None) == ok
