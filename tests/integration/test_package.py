"""Through real Pants (./pants package): binaries that run, archives that independent
readers agree on, errors that name the target, the field and the fix, and no-op
rebuilds that run no step."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from ..conftest import REPO, checkout, fresh_dist, require_tool, run_pants

SMALL = "tests/testprojects/small"
SMALL_DIST = "tests.testprojects.small"


@pytest.fixture(scope="module")
def dist() -> Path:
    d = fresh_dist("integration")
    r = run_pants(
        f"--pants-distdir={d}", "package", f"{SMALL}:bb", f"{SMALL}:initramfs",
        f"{SMALL}:bb_renamed", f"{SMALL}:bb_patched",
    )
    assert r.returncode == 0, r.output
    return d


def test_bb_runs_commands(dist: Path, tmp_path: Path) -> None:
    bb = dist / SMALL_DIST / "bb"
    assert os.access(bb, os.X_OK)
    out = subprocess.run([bb, "echo", "hi"], capture_output=True, text=True, check=True)
    assert out.stdout == "hi\n"
    (tmp_path / "ls").symlink_to(bb)
    (tmp_path / "some-file").write_text("x")
    out = subprocess.run([tmp_path / "ls", tmp_path], capture_output=True, text=True, check=True)
    assert "some-file" in out.stdout.split()
    out = subprocess.run([bb, "hello", "world"], capture_output=True, text=True, check=True)
    assert out.stdout == "hello from k4s world\n"


def test_bb_has_no_build_id_or_sandbox_paths(dist: Path) -> None:
    bb = dist / SMALL_DIST / "bb"
    data = bb.read_bytes()
    assert b"pants-sandbox" not in data
    assert str(REPO).encode() not in data
    buildid = subprocess.run(["go", "tool", "buildid", bb], capture_output=True, text=True, check=True)
    assert buildid.stdout.strip() == ""


def test_renamed_commands(dist: Path) -> None:
    bb = dist / "renamed" / "bb"
    assert subprocess.run([bb, "atool"], capture_output=True, text=True).stdout == "tool a\n"
    assert subprocess.run([bb, "tool"], capture_output=True, text=True).stdout == "tool b\n"


def test_patched_module(dist: Path) -> None:
    """`patches` changes a third-party module's code in the bb (and only there)."""
    patched = subprocess.run([dist / "patched" / "bb", "echo", "hi"], capture_output=True, text=True)
    assert patched.stdout == "patched by k4s: hi\n"
    plain = subprocess.run([dist / SMALL_DIST / "bb", "echo", "hi"], capture_output=True, text=True)
    assert plain.stdout == "hi\n"


def _parse_listing(out: str) -> dict[str, tuple[str, str]]:
    """`ls -l`-style lines (every mtime is 1970) -> {path: (mode, link target)}."""
    entries = {}
    for line in out.splitlines():
        assert " 1970 " in line, line
        name, target = line.split(" 1970 ", 1)[1], ""
        if " -> " in name:
            name, target = name.split(" -> ")
        entries[name] = (line.split()[0], target)
    return entries


def _gnu_cpio_listing(path: Path) -> dict[str, tuple[str, str]]:
    """path -> (mode string, link target) from GNU cpio."""
    require_tool("cpio")
    out = subprocess.run(
        ["cpio", "-itv", "--quiet"], stdin=path.open("rb"), capture_output=True, text=True, check=True
    ).stdout
    return _parse_listing(out)


def _bsdtar_listing(path: Path) -> dict[str, tuple[str, str]]:
    require_tool("bsdtar")
    out = subprocess.run(["bsdtar", "-tvf", path], capture_output=True, text=True, check=True).stdout
    return _parse_listing(out)


def test_initramfs_layout_two_readers(dist: Path) -> None:
    path = dist / SMALL_DIST / "initramfs.cpio"
    gnu, bsd = _gnu_cpio_listing(path), _bsdtar_listing(path)
    assert gnu == bsd
    assert gnu["init"] == ("lrwxrwxrwx", "bbin/init")
    assert gnu["bbin/bb"][0] == "-rwxr-xr-x"
    for cmd in ("cat", "echo", "gosh", "hello", "init", "ls", "poweroff"):
        assert gnu[f"bbin/{cmd}"] == ("lrwxrwxrwx", "bb")
    assert gnu["bin/sh"] == ("lrwxrwxrwx", "../bbin/gosh")
    assert gnu["bin/defaultsh"] == ("lrwxrwxrwx", "../bbin/gosh")
    assert gnu["bin/uinit"] == ("lrwxrwxrwx", "../bbin/hello")
    assert gnu["dev/console"][0] == "crw-------"
    assert gnu["dev/null"][0] == "crw-rw-rw-"
    assert gnu["dev/tty"][0] == "crw-rw-rw-"
    assert gnu["dev/urandom"][0] == "crw-rw-rw-"
    assert gnu["tmp"][0] == "drwxrwxrwt"  # sticky, as on any Linux system
    assert "etc/resolv.conf" in gnu
    # files_mapping and relocated_files
    assert gnu["etc/motd"][0] == "-rw-r--r--"
    assert "usr/share/k4s/extra.txt" in gnu
    assert "tests/testprojects/small/motd.txt" not in gnu
    # sorted, parents first
    names = list(gnu)
    assert names == sorted(names)


def test_initramfs_contents_and_metadata(dist: Path, tmp_path: Path) -> None:
    """Extract with GNU cpio and check device numbers, file contents, uinit flags."""
    path = dist / SMALL_DIST / "initramfs.cpio"
    out = subprocess.run(
        ["cpio", "-itv", "--quiet", "--numeric-uid-gid"], stdin=path.open("rb"), capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        fields = line.split()
        assert fields[2] == "0" and fields[3] == "0", line  # uid, gid
        assert "1970" in line, line  # mtime 0
    assert re.search(r"^crw-------\s+1\s+0\s+0\s+5,\s+1 .* dev/console$", out, re.M)
    assert re.search(r"^crw-rw-rw-\s+1\s+0\s+0\s+1,\s+3 .* dev/null$", out, re.M)
    if os.geteuid() == 0:  # extracting device nodes needs root (CI runs as root)
        subprocess.run(
            ["cpio", "-idm", "--quiet", "--no-absolute-filenames"], stdin=path.open("rb"), cwd=tmp_path, check=True
        )
        assert (tmp_path / "etc/motd").read_text() == (REPO / SMALL / "motd.txt").read_text()
        assert (tmp_path / "etc/uinit.flags").read_text() == '"boot"\n"ok"'
        assert stat.S_ISCHR((tmp_path / "dev/console").lstat().st_mode)
        assert (tmp_path / "bbin/bb").read_bytes() == (dist / SMALL_DIST / "bb").read_bytes()


def test_noop_rebuild_runs_no_step(dist: Path, tmp_path: Path) -> None:
    r = run_pants(f"--pants-distdir={dist}", "--stats-log", "package", f"{SMALL}:initramfs")
    assert r.returncode == 0, r.output
    for step in ("Download Go modules", "Rewrite commands", "Compile", "Pack "):
        assert f"Starting: {step}" not in r.output, r.output
    # The k4s steps (2 tool builds, download, rewrite, compile, cpio) came from the cache.
    cached = int(re.search(r"local_cache_requests_cached: (\d+)", r.output).group(1))
    assert cached >= 6, r.output


BAD = [
    (f"{SMALL}:bad_unknown", "commands", "example.com/no/such/cmd"),
    (f"{SMALL}:bad_not_main", "commands", "not a command"),
    (f"{SMALL}:bad_duplicate", "commands", 'same name: "tool"'),
    (f"{SMALL}:bad_cgo", "commands", "needs cgo"),
    (f"{SMALL}:bad_patch_stale", "patches", "does not apply to github.com/u-root/u-root/cmds/core/echo/echo.go"),
    (f"{SMALL}:bad_patch_module", "patches", "does not start with the path of a module"),
    (f"{SMALL}:bad_patch_missing", "patches", "no-such.patch"),
    ("tests/testprojects/nosum:bad_gosum", "sources", "missing go.sum entry"),
    (f"{SMALL}:bad_destination", "files_mapping", "../etc/motd"),
    (f"{SMALL}:bad_absolute_destination", "files_mapping", "/etc/motd"),
    (f"{SMALL}:bad_init", "init", "'systemd'"),
    (f"{SMALL}:bad_shell", "shell", "'bash'"),
    (f"{SMALL}:bad_kernel_module", "kernel_modules", "no_such_module_k4s"),
    (f"{SMALL}:bad_patch_escape", "patches", "not a clean relative path"),
    (f"{SMALL}:bad_flag_command", "commands", "-out=/tmp/k4s-escape/modules.tar"),
    (f"{SMALL}:bad_ldflags", "ldflags", "-o /tmp/k4s-escape/bb"),
    (f"{SMALL}:bad_output_path", "output_path", "/tmp/k4s-escape/abs.cpio"),
    (f"{SMALL}:bad_onto_bbin", "files_mapping", "cannot hold other entries"),
    (f"{SMALL}:bad_over_budget", "max_size", "65,536 B (0.1 MiB), and the packed image is"),
    # Round two (#26): coded errors (`k4s: E_...`) end to end.
    (f"{SMALL}:..", "name", "k4s: E_BAD_FIELD"),
    (f"{SMALL}:bad_reserved_bb", "command_names", "'bb' is reserved"),
    (f"{SMALL}:bad_onto_console", "files_mapping", "k4s: E_LAYOUT"),
    (f"{SMALL}:bad_patch_symlink", "patches", "git mode 120000 is not a regular file"),
]


@pytest.fixture(scope="module")
def bad_checkout(tmp_path_factory) -> Path:
    """A scratch checkout with the bad targets installed as BUILD files."""
    root = checkout(tmp_path_factory.mktemp("bad") / "k4s")
    for fixture in (root / "tests" / "testprojects").rglob("bad_targets.build"):
        fixture.rename(fixture.with_name("BUILD.bad"))
    return root


@pytest.mark.parametrize("address,field,detail", BAD, ids=[b[0].split(":")[1].replace("..", "dotdot") for b in BAD])
def test_bad_input(bad_checkout: Path, address: str, field: str, detail: str) -> None:
    dist = fresh_dist("bad", root=bad_checkout)
    r = run_pants(f"--pants-distdir={dist}", "package", address, cwd=bad_checkout)
    assert r.returncode != 0
    assert f"`{field}` field of {address}" in r.output, r.output
    assert detail in r.output, r.output
    assert "Fix:" in r.output or "must be a relative path" in r.output or "a destination must" in r.output
    assert "pants-sandbox" not in r.output.split("Engine traceback")[-1]
    assert "k4s: E_" in r.output and "bug in k4s" not in r.output and "Traceback" not in r.output, r.output
    # Nothing escaped the sandbox, and nothing (partial or not) is written to dist/.
    assert not Path("/tmp/k4s-escape").exists() and not Path("/tmp/k4s-escape-pwned.txt").exists()
    assert not dist.exists() or not any(p.is_file() for p in dist.rglob("*"))


def test_pex_cli_comes_from_local_pex() -> None:
    """[pex-cli] points at the pex ./pants built from PyPI; packaging a pex_binary uses it."""
    dist = fresh_dist("pex")
    r = run_pants(
        "--pants-config-files=+['pants.python.toml']", f"--pants-distdir={dist}", "package", "build-support:lock"
    )
    assert r.returncode == 0, r.output
    pex = dist / "build-support" / "lock.pex"
    out = subprocess.run(
        [pex, "-c", "import lock; print(lock.PANTS)"],
        env={**os.environ, "PEX_INTERPRETER": "1"}, capture_output=True, text=True, check=True,
    )
    assert "pantsbuild.pants==2.17.1" in out.stdout


def test_busybox_is_an_inferred_dependency() -> None:
    """`busybox=":bb"` makes the go_busybox a dependency of the initramfs."""
    r = run_pants("dependencies", f"{SMALL}:initramfs")
    assert r.returncode == 0, r.output
    deps = r.stdout.split()
    assert f"{SMALL}:bb" in deps and f"{SMALL}:relocated" in deps
    r = run_pants("dependents", "distros/uroot:bb")
    assert r.returncode == 0, r.output
    assert "distros/uroot:initramfs" in r.stdout.split()
    assert "tests/boot:initramfs@compression=xz" in r.stdout.split()


def test_profiles_are_parametrized_and_read_like_the_table() -> None:
    """Every Kubernetes profile has amd64 and arm64 variants of its bb (parametrize)
    and images for both; its commands come from the shared groups in
    distros/command_groups.py (the BUILD prelude)."""
    r = run_pants("list", "distros::")
    assert r.returncode == 0, r.output
    listed = set(r.stdout.split())
    for p in ("k3s-like", "k0s-like", "kubesolo-like", "talos-like", "k4s-stack"):
        for arch in ("amd64", "arm64"):
            assert f"distros/{p}:bb@goarch={arch}" in listed
        assert {f"distros/{p}:initramfs", f"distros/{p}:initramfs-arm64"} <= listed
    r = run_pants("peek", "distros/k3s-like:bb@goarch=arm64", "distros/kubesolo-like:bb@goarch=amd64")
    assert r.returncode == 0, r.output
    k3s, kubesolo = json.loads(r.stdout)
    assert k3s["goarch"] == "arm64" and kubesolo["goarch"] == "amd64"
    assert "k8s.io/kubernetes/cmd/kube-scheduler" in k3s["commands"]
    # The appliance schedules with kube-scheduler (docs/appliance.md: why not KubeSolo's webhook)
    # and proxies Services with kube-proxy on the pure-Go nft.
    assert "k8s.io/kubernetes/cmd/kube-scheduler" in kubesolo["commands"]
    assert "k4s.dev/node/cmd/nft" in kubesolo["commands"]
    # A node carries only the u-root commands it runs (UROOT_NODE_CORE), no shell.
    assert "github.com/u-root/u-root/cmds/core/mount" in kubesolo["commands"]
    assert not any(c.endswith(("/core/*", "/core/gosh", "/core/sshd")) for c in kubesolo["commands"] + k3s["commands"])
    assert k3s["command_names"] == {
        "github.com/flannel-io/flannel": "flanneld",
        # kube-network-policies' main package is .../cmd (NetworkPolicy, #27).
        "sigs.k8s.io/kube-network-policies/cmd": "kube-network-policies",
    }
    assert "//distros/patches/runc-purego.patch" in k3s["patches"]
    assert "-X k8s.io/component-base/version.gitVersion=v1.37.2" in k3s["ldflags"]


def test_every_node_profile_has_its_node_for_arm64() -> None:
    """`:initramfs-arm64` of each node profile is `:initramfs` for arm64
    (distros/command_groups.py arm64_node_image): the same node fields, the arm64 bb, the
    arm64 pod images, the node's kernel modules less those built into Debian's arm64
    kernel plus the virt machine's power button."""
    profiles = ("k3s-like", "k0s-like", "kubesolo-like", "talos-like")
    r = run_pants("peek", *(f"distros/{p}:{t}" for p in profiles for t in ("initramfs", "initramfs-arm64")))
    assert r.returncode == 0, r.output
    peeked = {t["address"]: t for t in json.loads(r.stdout)}
    for p in profiles:
        amd64, arm64 = peeked[f"distros/{p}:initramfs"], peeked[f"distros/{p}:initramfs-arm64"]
        assert (amd64["busybox"], arm64["busybox"]) == (":bb@goarch=amd64", ":bb@goarch=arm64")
        assert amd64["images"] == ["//distros/pod-images:pause", "//distros/pod-images:demo"]
        assert arm64["images"] == ["//distros/pod-images:pause-arm64", "//distros/pod-images:demo-arm64"]
        assert "button" in amd64["kernel_modules"]
        assert arm64["kernel_modules"] == [m for m in amd64["kernel_modules"] if m != "button"] + ["gpio_keys"]
        for field in ("node_components", "uinit", "shell", "cluster_identity", "linux_kernel", "kernel_args",
                      "vm_memory", "vm_port_forwards", "max_size"):
            assert arm64[field] == amd64[field], (p, field)
    r = run_pants("peek", "distros/pod-images:pause-arm64", "distros/pod-images:demo-arm64")
    assert r.returncode == 0, r.output
    pause, demo = sorted(json.loads(r.stdout), key=lambda t: t["address"] != "distros/pod-images:pause-arm64")
    assert (pause["busybox"], pause["image_name"]) == (":pod-bb@goarch=arm64", "k4s.local/pause:v1")
    assert (demo["busybox"], demo["image_name"]) == (":pod-bb@goarch=arm64", "k4s.local/demo:v1")


def test_node_components_are_in_their_busybox_and_known_to_k4s_node() -> None:
    """Every image that boots as a node (`uinit="k4s-node"`) declares components that
    its busybox's `commands` provide (by the name the command gets, or `command_names`)
    and that k4s-node knows how to run (its component table); the build checks the
    first against the resolved commands (test_rules: a wrong declaration fails naming
    the field)."""
    import re

    known = re.search(r"var allComponents = \[\]string\{([^}]*)\}",
                      (REPO / "node/cmd/k4s-node/main.go").read_text())
    assert known
    known_names = set(re.findall(r'"([^"]+)"', known.group(1)))
    r = run_pants("peek", "distros::")
    assert r.returncode == 0, r.output
    targets = {t["address"]: t for t in json.loads(r.stdout)}
    nodes = [t for t in targets.values() if t["target_type"] == "initramfs" and t.get("uinit") == "k4s-node"]
    assert {t["address"] for t in nodes} >= {
        "distros/kubesolo-like:initramfs", "distros/k3s-like:initramfs", "distros/k3s-like:initramfs-agent",
        "distros/talos-like:initramfs", "distros/k0s-like:initramfs",
    }
    for t in nodes:
        spec, _, name = t["address"].partition(":")
        bb = targets[f"{spec}:{t['busybox'].lstrip(':')}"]
        names = {path.rstrip("/").split("/")[-1] for path in bb["commands"]} | set((bb["command_names"] or {}).values())
        names |= {"k4s-node", "nft"}  # from k4s.dev/node/cmd/*
        components = t["node_components"]
        assert components, t["address"]
        assert set(components) <= known_names, (t["address"], set(components) - known_names)
        assert set(components) <= names, (t["address"], set(components) - names)
        assert "k4s.dev/node/cmd/k4s-node" in bb["commands"] and bb["local_modules"] == ["//node"]


@pytest.mark.parametrize("bad", ["", " ", "/dev/vda extra", 7])
def test_node_appliance_refuses_a_bad_data_disk_with_a_coded_error(bad) -> None:
    """The BUILD prelude's node_appliance(data_disk=) goes on the kernel command line:
    anything but one word is refused with the coded message users see from Pants."""
    prelude: dict = {}
    exec(compile((REPO / "distros/command_groups.py").read_text(), "command_groups.py", "exec"), prelude)
    with pytest.raises(ValueError, match=r"^k4s: E_BAD_FIELD: node_appliance\(data_disk=.*fix the value"):
        prelude["node_appliance"](["kubelet"], data_disk=bad)
    ok = prelude["node_appliance"](["kubelet"], data_disk="LABEL=k4s-data")
    assert "k4s.disk=LABEL=k4s-data" in ok["kernel_args"]
