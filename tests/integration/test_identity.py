"""`cluster_identity`: operator credentials for `pants run` of an appliance, made on the
host outside Pants' caches (k4s_plugin/tools/k4stool/internal/identity), like `talosctl gen
config`: a CA and an admin kubeconfig in .k4s/clusters/<target>, and the CA handed to
the node in a second cpio appended to the image at boot."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pants.engine.addresses import Address
from pants.testutil.rule_runner import RuleRunner

from k4s_plugin import register
from k4s_plugin.rules.run import API_PORT, RunInitramfsFieldSet, identity_dir_name
from k4s_plugin.targets import InitramfsClusterIdentityField, InitramfsTarget

from ..conftest import REPO, go_test, require_tool
from ..qemu import k4stool as built_k4stool
from ..qemu import qemu_argv

TOOLS = REPO / "k4s_plugin" / "tools"


def test_k4stool_identity() -> None:
    """identity_test.go: the CA and admin certificate verify as a chain (ClientAuth,
    O=system:masters), key files are 0600, the CA is reused and `-new-identity`
    replaces it, the kubeconfig names the host port forwarded to 6443 (a later
    `-forward 16443:6443` wins), identity.cpio holds exactly etc/k4s/identity/ca.{crt,key} and join-token
    and its directories, and initrd.img is the image, zeros to a multiple of 4, then it."""
    go_test(TOOLS, "./k4stool/internal/identity", run="Identity")


def test_k4stool_join_and_machine_configs() -> None:
    """identity_test.go: an agent's initrd holds the server's CA certificate, join token
    and URL and never the CA key; `-lan` is a UDP socket netdev with a MAC per port;
    `-machine-config` hands one Talos-style file (the CA key only to a control plane)."""
    go_test(TOOLS, "./k4stool/internal/...", run="JoinArchive|LanNetdev|MachineConfigs|Forwards")


def test_cluster_identity_field() -> None:
    field = InitramfsClusterIdentityField
    assert field.alias == "cluster_identity"
    assert field.default is False
    assert field.help and ".k4s/clusters" in field.help and "-new-identity" in field.help
    assert field in InitramfsTarget.core_fields
    # Only `pants run` reads it: the built image does not depend on it.
    assert "cluster_identity" in RunInitramfsFieldSet.__dataclass_fields__

    runner = RuleRunner(target_types=register.target_types())
    runner.write_files({
        "p/go.mod": "module example.com/p\n\ngo 1.24\n",
        "p/go.sum": "",
        "p/BUILD": 'go_busybox(name="bb", commands=["example.com/p/cmd"])\n'
        'initramfs(name="plain", busybox=":bb")\n'
        'initramfs(name="id", busybox=":bb", cluster_identity=True)\n',
    })
    assert runner.get_target(Address("p", target_name="plain"))[field].value is False
    assert runner.get_target(Address("p", target_name="id"))[field].value is True


def test_identity_dir_name() -> None:
    assert identity_dir_name(Address("distros/kubesolo-like", target_name="initramfs")) == (
        "distros.kubesolo-like.initramfs"
    )
    assert identity_dir_name(Address("", target_name="img")) == "img"
    parametrized = Address("distros/k3s-like", target_name="initramfs", parameters={"goarch": "amd64"})
    name = identity_dir_name(parametrized)
    assert "/" not in name and name not in (".", "..") and name.startswith("distros.k3s-like.initramfs")
    assert API_PORT == 6443


def run_args(cluster_identity: bool) -> tuple[list[str], str]:
    """The k4stool arguments of `pants run` (run_initramfs with its Gets mocked)."""
    from types import SimpleNamespace

    from pants.base.build_root import BuildRoot
    from pants.core.util_rules.source_files import SourceFiles, SourceFilesRequest
    from pants.core.util_rules.system_binaries import BinaryPath, BinaryPathRequest, BinaryPaths
    from pants.engine.addresses import AddressInput
    from pants.engine.fs import EMPTY_DIGEST, Digest, MergeDigests
    from pants.engine.target import WrappedTarget, WrappedTargetRequest
    from pants.testutil.rule_runner import MockGet, run_rule_with_mocks

    from k4s_plugin.rules.busybox import GoBusyboxFieldSet
    from k4s_plugin.rules.cpio import Archive
    from k4s_plugin.rules.initramfs import InitramfsKernel, InitramfsRequest
    from k4s_plugin.rules.run import run_initramfs
    from k4s_plugin.rules.tools import K4sVmTool, K4sVmToolRequest

    runner = RuleRunner(target_types=register.target_types())
    runner.write_files({
        "distros/d/go.mod": "module example.com/d\n\ngo 1.24\n",
        "distros/d/go.sum": "",
        "distros/d/BUILD": 'go_busybox(name="bb", commands=["example.com/d/cmd"])\n'
        f'initramfs(name="img", busybox=":bb", vm_port_forwards=["6443:6443"], '
        f"cluster_identity={cluster_identity})\n",
    })
    tgt = runner.get_target(Address("distros/d", target_name="img"))
    build_root = BuildRoot()
    request = run_rule_with_mocks(
        run_initramfs,
        rule_args=[RunInitramfsFieldSet.create(tgt), build_root],
        mock_gets=[
            MockGet(K4sVmTool, (K4sVmToolRequest,), lambda _: K4sVmTool(EMPTY_DIGEST)),
            MockGet(Archive, (InitramfsRequest,), lambda _: Archive(EMPTY_DIGEST, "img.cpio")),
            MockGet(GoBusyboxFieldSet, (InitramfsRequest,),
                    lambda _: SimpleNamespace(goarch=SimpleNamespace(value="amd64"))),
            MockGet(BinaryPaths, (BinaryPathRequest,),
                    lambda _: BinaryPaths("qemu", [BinaryPath("/usr/bin/qemu-system-x86_64")])),
            *(MockGet(t, (i,), lambda _: pytest.fail("no kernel field here"))
              for t, i in ((Address, AddressInput), (WrappedTarget, WrappedTargetRequest),
                           (SourceFiles, SourceFilesRequest))),
            MockGet(Digest, (MergeDigests,), lambda _: EMPTY_DIGEST),
            MockGet(InitramfsKernel, (InitramfsRequest,),
                    lambda _: InitramfsKernel(SimpleNamespace(image=EMPTY_DIGEST, image_path="__k4s_kernel/amd64/index/vmlinuz"))),
        ],
    )
    return list(request.args), build_root.path


def test_run_passes_identity() -> None:
    args, root = run_args(True)
    i = args.index("-identity")
    assert args[i + 1] == f"{root}/.k4s/clusters/distros.d.img"
    assert args[args.index("-api-port") + 1] == "6443"
    assert args[args.index("-target") + 1] == "distros/d:img"
    args, _ = run_args(False)
    assert "-identity" not in args and "-new-identity" not in args
    # The kernel whose modules images carry (rules/kernel.py), not k4stool's own guess.
    assert args[args.index("-kernel") + 1] == "{chroot}/__k4s_kernel/amd64/index/vmlinuz"


@pytest.fixture(scope="module")
def k4stool() -> Path:
    return built_k4stool()


def vm_print(k4stool: Path, image: Path, identity: Path, *extra: str) -> subprocess.CompletedProcess:
    """The arguments run.py gives, then passthrough ones, with -print: no QEMU runs."""
    return subprocess.run(
        [str(k4stool), "vm", "-qemu", "/usr/bin/qemu-system-x86_64", "-initrd", str(image),
         "-kernel", "/dev/null", "-accel", "tcg", "-forward", "6443:6443", "-append", "",
         "-api-port", "6443", "-identity", str(identity), "-target", "p:initramfs", *extra,
         "-print"],
        capture_output=True, text=True, timeout=120,
    )


def test_vm_writes_identity_and_kubeconfig(k4stool: Path, tmp_path: Path) -> None:
    image = tmp_path / "initramfs.cpio"
    image.write_bytes(b"0707" + b"\x01" * 97)
    identity = tmp_path / "clusters" / "p.initramfs"
    r = vm_print(k4stool, image, identity, "-forward", "16443:6443")
    assert r.returncode == 0, r.stderr
    kc = identity / "admin.kubeconfig"
    # -print comes after the identity files, and QEMU boots the image with the CA.
    assert f"-initrd {identity / 'initrd.img'} " in r.stdout
    assert "restrict=on" in r.stdout
    assert "hostfwd=tcp:127.0.0.1:16443-:6443" in r.stdout
    assert "hostfwd=tcp:127.0.0.1:6443-:6443" not in r.stdout
    assert f"k4s: admin kubeconfig: {kc}\n" in r.stderr
    assert f"k4s:   export KUBECONFIG={kc}; kubectl get nodes" in r.stderr
    assert "./pants run p:initramfs -- -new-identity" in r.stderr
    assert identity.stat().st_mode & 0o777 == 0o700
    for f in ("ca.key", "admin.key", "admin.kubeconfig", "initrd.img"):
        assert (identity / f).stat().st_mode & 0o777 == 0o600, f

    config = yaml.safe_load(kc.read_text())
    assert config["kind"] == "Config"
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:16443"
    assert config["current-context"] == config["contexts"][0]["name"]
    for key in ("client-certificate-data", "client-key-data"):
        assert config["users"][0]["user"][key]
    if shutil.which("kubectl"):  # the real reader, where installed
        out = subprocess.run(
            ["kubectl", "config", "view", "--raw", "-o",
             "jsonpath={.clusters[0].cluster.server} {.current-context}"],
            env={**os.environ, "KUBECONFIG": str(kc)}, capture_output=True, text=True, check=True,
        ).stdout
        assert out == "https://127.0.0.1:16443 k4s-p.initramfs", out

    # The CA is kept across runs; -new-identity (a passthrough argument) replaces it.
    ca = (identity / "ca.crt").read_bytes()
    assert vm_print(k4stool, image, identity).returncode == 0
    assert (identity / "ca.crt").read_bytes() == ca
    r = vm_print(k4stool, image, identity, "-new-identity")
    assert r.returncode == 0, r.stderr
    assert (identity / "ca.crt").read_bytes() != ca
    assert "hostfwd=tcp:127.0.0.1:6443-:6443" in r.stdout


def test_vm_without_identity_is_unchanged(k4stool: Path, tmp_path: Path) -> None:
    image = tmp_path / "initramfs.cpio"
    image.write_bytes(b"x")
    r = subprocess.run(
        [str(k4stool), "vm", "-qemu", "/usr/bin/qemu-system-x86_64", "-initrd", str(image),
         "-kernel", "/dev/null", "-accel", "tcg", "-api-port", "6443", "-print"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert f"-initrd {image} " in r.stdout
    assert "admin kubeconfig" not in r.stderr
    r = subprocess.run(
        [str(k4stool), "vm", "-qemu", "/usr/bin/qemu-system-x86_64", "-initrd", str(image),
         "-kernel", "/dev/null", "-accel", "tcg", "-new-identity", "-print"],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode != 0 and "cluster_identity" in r.stderr


# A static init that reports what the guest sees of the identity, then powers off.
GUEST_INIT = r'''
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"syscall"
)

func main() {
	motd, err := os.ReadFile("/etc/motd")
	fmt.Printf("K4S-IMAGE %q %v\n", motd, err)
	ca, err := os.ReadFile("/etc/k4s/identity/ca.crt")
	fmt.Printf("K4S-CA %x %v\n", sha256.Sum256(ca), err)
	for _, p := range []string{"/etc", "/etc/k4s", "/etc/k4s/identity", "/etc/k4s/identity/ca.key"} {
		if st, err := os.Stat(p); err == nil {
			fmt.Printf("K4S-MODE %s %o\n", p, st.Mode().Perm())
		}
	}
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
'''


@pytest.mark.boot
def test_guest_sees_identity(k4stool: Path, tmp_path: Path) -> None:
    """A real kernel under QEMU (TCG) unpacks initrd.img: the image (each compression
    `initramfs` offers) and then the appended identity archive."""
    import hashlib
    import json

    go = require_tool("go")
    xz = require_tool("xz")  # k4stool packs compression xz with xz-utils
    src = tmp_path / "init"
    src.mkdir()
    (src / "go.mod").write_text("module example.com/init\n\ngo 1.24\n")
    (src / "main.go").write_text(GUEST_INIT)
    subprocess.run(
        [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(tmp_path / "init.bin"), "."],
        cwd=src, env={**os.environ, "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": "amd64"},
        check=True, timeout=600,
    )
    (tmp_path / "motd").write_text("from the image\n")
    for compression in ("none", "gzip", "xz", "zstd"):
        manifest = tmp_path / f"manifest-{compression}.json"
        manifest.write_text(json.dumps({
            "base_layout": False,
            "compression": compression,
            "records": [
                {"path": "init", "type": "file", "src": str(tmp_path / "init.bin"), "mode": 0o755},
                {"path": "etc/motd", "type": "file", "src": str(tmp_path / "motd"), "mode": 0o644},
                {"path": "dev/console", "type": "chardev", "mode": 0o600, "major": 5, "minor": 1},
            ],
        }))
        image = tmp_path / f"image-{compression}"
        subprocess.run(
            [str(k4stool), "cpio", "-manifest", str(manifest), "-out", str(image), "-xz", xz],
            check=True, timeout=300,
        )
        identity = tmp_path / "clusters" / "guest"
        r = vm_print(k4stool, image, identity)
        assert r.returncode == 0, r.stderr
        initrd = identity / "initrd.img"
        assert (image.stat().st_size + 3) // 4 * 4 + (identity / "identity.cpio").stat().st_size == (
            initrd.stat().st_size
        )
        boot = subprocess.run(
            qemu_argv(initrd, memory=256, cpus=1, append="quiet"),
            stdin=subprocess.DEVNULL, capture_output=True, timeout=180,
        )
        console = boot.stdout.decode(errors="replace")
        want_ca = hashlib.sha256((identity / "ca.crt").read_bytes()).hexdigest()
        assert 'K4S-IMAGE "from the image\\n" <nil>' in console, (compression, console[-3000:])
        assert f"K4S-CA {want_ca} <nil>" in console, (compression, console[-3000:])
        for path, mode in (("/etc", "755"), ("/etc/k4s", "755"), ("/etc/k4s/identity", "700"),
                           ("/etc/k4s/identity/ca.key", "600")):
            assert f"K4S-MODE {path} {mode}" in console, (compression, console[-3000:])


def test_vm_print_is_one_command_line_for_tests_and_benchmarks(k4stool: Path, tmp_path: Path) -> None:
    """tests/qemu.py runs what `k4stool vm -print` prints: the kernel command line stays
    one argument, and k4stool vm boots nothing without a kernel (one picker: the plugin's)."""
    import shlex

    image = tmp_path / "initramfs.cpio"
    image.write_bytes(b"")
    base = [str(k4stool), "vm", "-qemu", "/usr/bin/qemu-system-x86_64", "-initrd", str(image), "-accel", "tcg"]
    r = subprocess.run([*base, "-kernel", "/boot/vmlinuz-x", "-append", "quiet k4s.node-name=it's", "-print"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    argv = shlex.split(r.stdout)
    assert argv[argv.index("-append") + 1] == "console=ttyS0 panic=-1 quiet k4s.node-name=it's"
    r = subprocess.run([*base, "-print"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "-kernel is required" in r.stderr, r.stderr


def test_k4stool_vm_disk() -> None:
    """vmdisk_test.go: `k4stool vm -disk <image>` makes a missing image sparse at
    -disk-size (refusing sizes under 1 GiB), leaves an existing one as it is, attaches it
    as a virtio disk and adds k4s.disk=/dev/vda unless the command line names a disk."""
    go_test(TOOLS, "./k4stool/internal/vm", run="VMDisk")
