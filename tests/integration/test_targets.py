"""Field validation of go_busybox and initramfs, through Pants' own target parsing."""

from __future__ import annotations

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from k4s_plugin import register
from k4s_plugin.targets import (
    GoBusyboxBuildTagsField,
    GoBusyboxCommandNamesField,
    GoBusyboxGoarchField,
    GoBusyboxGoosField,
    GoBusyboxLdflagsField,
    GoBusyboxTarget,
    InitramfsBaseLayoutField,
    InitramfsCompressionField,
    InitramfsInitField,
    InitramfsShellField,
    InitramfsTarget,
    InitramfsUinitField,
)


@pytest.fixture
def rule_runner() -> RuleRunner:
    from pants.core.target_types import FilesGeneratorTarget, FileTarget, RelocatedFiles

    return RuleRunner(
        target_types=[*register.target_types(), FilesGeneratorTarget, FileTarget, RelocatedFiles]
    )


GOOD_MOD = {"p/go.mod": "module example.com/p\n\ngo 1.24\n", "p/go.sum": ""}


def get(rule_runner: RuleRunner, build: str, name: str):
    rule_runner.write_files({**GOOD_MOD, "p/BUILD": build})
    return rule_runner.get_target(Address("p", target_name=name))


def error_of(rule_runner: RuleRunner, build: str, name: str) -> str:
    with pytest.raises(ExecutionError) as exc:
        get(rule_runner, build, name)
    return str(exc.value)


def test_every_field_has_help() -> None:
    for tgt in (GoBusyboxTarget, InitramfsTarget):
        assert tgt.help and len(tgt.help) > 100
        for field in tgt.core_fields:
            assert field.help, f"{tgt.alias}.{field.alias} has no help"


def test_go_busybox_defaults(rule_runner: RuleRunner) -> None:
    tgt = get(rule_runner, 'go_busybox(name="bb", commands=["example.com/p/cmd"])', "bb")
    assert tgt[GoBusyboxGoosField].value == "linux"
    assert tgt[GoBusyboxGoarchField].value == "amd64"
    assert tgt[GoBusyboxLdflagsField].value == ("-s", "-w")
    assert tgt[GoBusyboxBuildTagsField].value == ()
    assert tgt[GoBusyboxCommandNamesField].value is None


@pytest.mark.parametrize("bad", ["/abs/path", "./rel", "with space", "-"])
def test_commands_must_be_import_paths(rule_runner: RuleRunner, bad: str) -> None:
    msg = error_of(rule_runner, f'go_busybox(name="bb", commands=["{bad}"])', "bb")
    assert "`commands` field of p:bb" in msg
    assert "import path" in msg


def test_commands_need_an_inclusion(rule_runner: RuleRunner) -> None:
    msg = error_of(rule_runner, 'go_busybox(name="bb", commands=["-example.com/x"])', "bb")
    assert "only exclusions" in msg and "p:bb" in msg


def test_build_tags_are_single_tags(rule_runner: RuleRunner) -> None:
    msg = error_of(
        rule_runner, 'go_busybox(name="bb", commands=["a.b/c"], build_tags=["a,b"])', "bb"
    )
    assert "`build_tags` field of p:bb" in msg and "one tag per string" in msg


def test_goarch_choices(rule_runner: RuleRunner) -> None:
    msg = error_of(rule_runner, 'go_busybox(name="bb", commands=["a.b/c"], goarch="sparc")', "bb")
    assert "goarch" in msg and "arm64" in msg


@pytest.mark.parametrize("dst", ["/etc/motd", "../etc/motd", "a/../../b", ""])
def test_files_mapping_destination_inside_image(rule_runner: RuleRunner, dst: str) -> None:
    msg = error_of(
        rule_runner,
        f'initramfs(name="i", busybox=":bb", files_mapping={{"p/motd": "{dst}"}})',
        "i",
    )
    assert "`files_mapping` field of p:i" in msg
    assert "relative path inside the image" in msg


def test_compression_choices(rule_runner: RuleRunner) -> None:
    msg = error_of(rule_runner, 'initramfs(name="i", busybox=":bb", compression="lz4")', "i")
    assert "compression" in msg and "zstd" in msg


def test_initramfs_defaults(rule_runner: RuleRunner) -> None:
    tgt = get(rule_runner, 'initramfs(name="i", busybox=":bb")', "i")
    assert tgt[InitramfsInitField].value == "init"
    assert tgt[InitramfsShellField].value == "gosh"
    assert tgt[InitramfsUinitField].value is None
    assert tgt[InitramfsBaseLayoutField].value is True
    assert tgt[InitramfsCompressionField].value == "none"


def test_vm_fields(rule_runner: RuleRunner) -> None:
    from k4s_plugin.targets import (
        InitramfsVmAccelField,
        InitramfsVmCpusField,
        InitramfsVmMemoryField,
        InitramfsVmPortForwardsField,
    )

    tgt = get(rule_runner, 'initramfs(name="i", busybox=":bb", vm_port_forwards=["6443:6443"])', "i")
    assert tgt[InitramfsVmMemoryField].value == 2048
    assert tgt[InitramfsVmCpusField].value == 2
    assert tgt[InitramfsVmAccelField].value == "auto"
    assert tgt[InitramfsVmPortForwardsField].value == ("6443:6443",)
    msg = error_of(rule_runner, 'initramfs(name="i", busybox=":bb", vm_port_forwards=["6443"])', "i")
    assert "vm_port_forwards" in msg and "<host port>:<guest port>" in msg
    msg = error_of(rule_runner, 'initramfs(name="i", busybox=":bb", vm_memory=32)', "i")
    assert "vm_memory" in msg and "64" in msg
    msg = error_of(rule_runner, 'initramfs(name="i", busybox=":bb", vm_accel="hvf")', "i")
    assert "vm_accel" in msg
