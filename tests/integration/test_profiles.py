"""Every Kubernetes distro profile under distros/: `pants package` builds its
initramfs, and every command in its one `bb` starts on this host and prints what
it should (`--version`, or `--help` where there is no version).

Each profile is a cold build of tens of minutes and several GB of memory, so
these tests are `slow`: CI's default run skips them; run them with
`./run-tests -m slow tests/integration/test_profiles.py`.
"""

from __future__ import annotations

import ast
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import REPO, fresh_dist, require_tool, run_pants
from ..qemu import qemu_argv

K8S = r"Kubernetes v1\.37\.2"

# name in bbin/ -> (arguments, what the output must match)
CHECKS: dict[str, tuple[list[str], str]] = {
    "kube-apiserver": (["--version"], K8S),
    "kube-scheduler": (["--version"], K8S),
    "kube-controller-manager": (["--version"], K8S),
    "kubelet": (["--version"], K8S),
    "kube-proxy": (["--version"], K8S),
    "kubectl": (["version", "--client"], r"Client Version: v1\.37\.2"),
    "kine": (["--version"], r"v0\.17\.5"),
    "etcd": (["--version"], r"etcd Version: 3\.7\.3"),
    "etcdctl": (["version"], r"etcdctl version: 3\.7\.3"),
    "containerd": (["--version"], r"containerd .*v2\.4\.2"),
    "containerd-shim-runc-v2": (["-v"], r"v2\.4\.2"),
    "runc": (["--version"], r"runc version 1\.5\.3"),
    "flanneld": (["--version"], r"v0\.28\.10"),
    "kube-router": (["--version"], r"v2\.1\.0"),
    "coredns": (["-version"], r"CoreDNS-1\.15\.0"),
    "crictl": (["--version"], r"crictl version v1\.37\.0"),
    "bridge": ([], r"CNI bridge plugin v1\.10\.0"),
    "loopback": ([], r"CNI loopback plugin v1\.10\.0"),
    "host-local": ([], r"CNI host-local plugin v1\.10\.0"),
    "nft": (["--version"], r"nftables v1\.1\.0 \(k4s pure-Go nft\)"),
}

def _profile_boot_literal(name: str):
    """A literal assigned in tests/profile_boot/BUILD (the boot images' source)."""
    tree = ast.parse((REPO / "tests" / "profile_boot" / "BUILD").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"tests/profile_boot/BUILD assigns no {name}")


# profile -> the Kubernetes-side commands its bbin/ must hold: the list the boot images
# in tests/profile_boot run, read from that BUILD file (one list, not two).
PROFILES: dict[str, set[str]] = {p: set(c) for p, c in _profile_boot_literal("PROFILE_COMMANDS").items()}


def test_boot_images_run_the_checked_version_commands() -> None:
    """The boot images call each component as CHECKS does (fast: reads BUILD only)."""
    version_args = _profile_boot_literal("VERSION_ARGS")
    assert set(PROFILES) == {"k3s-like", "k0s-like", "kubesolo-like", "talos-like", "k4s-stack"}
    for cmd in set().union(*PROFILES.values()):
        assert version_args[cmd] == " ".join(CHECKS[cmd][0]), cmd


# The Kubernetes node profiles, whose bb has only UROOT_NODE_CORE of u-root's commands.
NODE_PROFILES = {"k3s-like", "k0s-like", "kubesolo-like", "talos-like"}
NODE_CORE = {"init", "dhclient", "ip", "mount", "umount"}

# u-root commands that reboot or power off whatever their arguments.
REBOOTERS = {"poweroff", "shutdown", "sluinit"}


def bbin_names(cpio: Path) -> set[str]:
    listing = subprocess.run(
        [require_tool("cpio"), "-it", "--quiet"], stdin=cpio.open("rb"), capture_output=True,
        check=True, text=True,
    ).stdout.split()
    return {p.split("/", 1)[1] for p in listing if p.startswith("bbin/") and p != "bbin/bb"}


def run_in_namespaces(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Runs a command in fresh pid/net/uts/ipc/mount namespaces: a u-root command
    that ignores --help (init, poweroff, ...) cannot touch the host."""
    unshare = require_tool("unshare")  # never run poweroff & co. on the host itself
    return subprocess.run(
        [unshare, "--fork", "--pid", "--mount-proc", "--net", "--uts", "--ipc", *argv], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


@pytest.mark.slow
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_commands_start(profile: str, tmp_path: Path) -> None:
    dist = fresh_dist(f"profile-{profile}")
    r = run_pants(
        f"--pants-distdir={dist}", "package", f"distros/{profile}:bb@goarch=amd64",
        f"distros/{profile}:initramfs", timeout=4 * 3600,
    )
    assert r.returncode == 0, r.output
    out = dist / f"distros.{profile}"
    bb = out / "bb@goarch=amd64"
    cpio = out / "initramfs.cpio"
    assert bb.is_file() and cpio.is_file(), sorted(p.name for p in out.iterdir())

    names = bbin_names(cpio)
    assert PROFILES[profile] <= names, f"missing from bbin/: {PROFILES[profile] - names}"
    if profile in NODE_PROFILES:
        # A node image carries the u-root commands the node runs, and no shell or
        # remote access (distros/command_groups.py UROOT_NODE_CORE).
        assert NODE_CORE <= names and not ({"gosh", "sshd", "scp", "strace", "kexec", "msr", "io"} & names), names
    else:
        assert {"init", "gosh", "ls", "mount", "insmod"} <= names  # u-root core

    failures = []
    for name in sorted(names):
        args, expect = CHECKS.get(name, (["--help"], ""))
        r2 = run_in_namespaces([str(bb), name, *args], tmp_path)
        text = r2.stdout + r2.stderr
        if name in CHECKS:
            if not re.search(expect, text):
                failures.append(f"{name} {' '.join(args)}: rc={r2.returncode}\n{text[-800:]}")
        elif r2.returncode in (-signal.SIGHUP, -signal.SIGINT) and name in REBOOTERS:
            # reboot(2) in a PID namespace kills the namespace's init (this command)
            # with SIGHUP (restart) or SIGINT (power off): it ran, and the host is fine.
            continue
        elif r2.returncode < 0 or "panic:" in text or "flag redefined" in text:
            # u-root core: --help must not crash (a clash of init() side effects
            # between the commands shows up here).
            failures.append(f"{name} --help: rc={r2.returncode}\n{text[-800:]}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
@pytest.mark.boot
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_boots_and_components_print_versions(profile: str, tmp_path: Path) -> None:
    """Inside a VM (Debian's kernel, TCG), every Kubernetes-side component of the
    profile prints its version (tests/profile_boot: the profile's bb), run by the kernel
    as the first process, one boot per component (a node image has no shell)."""
    require_tool("qemu-system-x86_64")
    dist = fresh_dist(f"profile-boot-{profile}")
    r = run_pants(f"--pants-distdir={dist}", "package", f"tests/profile_boot:{profile}", timeout=4 * 3600)
    assert r.returncode == 0, r.output
    image = dist / "tests.profile_boot" / f"{profile}.cpio"
    version_args = _profile_boot_literal("VERSION_ARGS")
    start = time.monotonic()
    failures = []
    for c in sorted(PROFILES[profile]):
        append = f"rdinit=/bbin/{c}" + (f" -- {version_args[c]}" if version_args[c] else "")
        proc = subprocess.run(
            qemu_argv(image, memory=1024, cpus=2, append=append),
            stdin=subprocess.DEVNULL, capture_output=True, timeout=15 * 60,
        )
        console = proc.stdout.decode(errors="replace").replace("\r", "")
        # It ran as init and exited 0 (the kernel then panics and QEMU stops: panic=-1, -no-reboot).
        if not re.search(CHECKS[c][1], console) or "Attempted to kill init! exitcode=0x00000000" not in console:
            failures.append(f"{c} ({append}): {console[-1500:]}")
    seconds = time.monotonic() - start
    assert not failures, "\n\n".join(failures)
    print(f"\n{profile}: booted ({image.stat().st_size:,} bytes) once per component and checked "
          f"{len(PROFILES[profile])} components in {seconds:.0f} s under TCG")
