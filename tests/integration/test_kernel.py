"""The kernel as a pinned build input (`linux_kernel`, k4s_plugin/rules/kernel.py):
a Debian package fetched with apt-get and checked against its sha256, unpacked and
indexed by k4stool (kernel.go, no dpkg or depmod), its modules in the image, its image
beside the image in dist/, and nothing read from this machine's /boot or /lib/modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from k4s_plugin import register
from k4s_plugin.rules.package import kernel_path

from ..conftest import PANTS, REPO, checkout, executed_processes, fresh_dist, kmod_pin, require_tool, run_pants, sha256

KERNEL = "//distros/kernel:debian"
AMD64 = {
    "package": "linux-image-6.1.0-57-amd64",
    "version": "6.1.192-3",
    "sha256": "14d219d01e1283261817d961dbb3895cb5b4288d0de10e0ba0632a0d993e15bf",
}
ARM64 = {
    "package": "linux-image-6.1.0-57-arm64",
    "version": "6.1.192-3",
    "sha256": "8301bd5b5b2cf8fd5e479832200c23e64eca0ae9ec45c487c5c318b1e44d4692",
}


def test_pin_matches_distros_kernel() -> None:
    """The pins these tests use are the repository's (distros/kernel/BUILD)."""
    build = (REPO / "distros" / "kernel" / "BUILD").read_text()
    for pin in (AMD64, ARM64):
        for value in pin.values():
            assert f'"{value}"' in build


KERNEL_GO = REPO / "k4s_plugin" / "tools" / "k4stool" / "internal" / "kernel" / "kernel.go"


def test_k4stool_kernel_steps() -> None:
    """kernel.go: a made-up .deb (ar, xz tars, ELF modules with .modinfo) gives
    depmod's modules.dep (transitive, reverse load order), softdep and alias; the
    module step extracts only what it is asked; bad packages are coded errors."""
    go = require_tool("go")
    r = subprocess.run(
        [go, "test", "-count=1", "-tags", "k4s_kernel", "-run", "Kernel", "./k4stool/internal/kernel"],
        cwd=REPO / "k4s_plugin" / "tools", env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
        capture_output=True, text=True, timeout=1200,
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


def test_kernel_steps_leave_the_step_tool_alone() -> None:
    """kernel.go is only in the small kernel tool (`-tags k4s_download,k4s_kernel`),
    not in the k4stool every busybox step runs, whose bytes are in every step's key."""
    source = KERNEL_GO.read_text()
    assert source.startswith("//go:build k4s_kernel\n")


def test_kernel_beside_the_image() -> None:
    assert kernel_path("distros.k3s-like/initramfs.cpio") == "distros.k3s-like/initramfs.vmlinuz"
    assert kernel_path("distros.k3s-like/initramfs-xz.cpio.xz") == "distros.k3s-like/initramfs-xz.vmlinuz"
    assert kernel_path("a/img.cpio.zst") == "a/img.vmlinuz"
    assert kernel_path("a/custom") == "a/custom.vmlinuz"


# (debian_packages value as Python source, text the error must contain)
BAD_PINS = [
    ("{}", "it names no package"),
    ('{"sparc": %r}' % AMD64, "not an architecture k4s builds for"),
    ('{"amd64": {"package": "linux-image-x", "version": "1"}}', "exactly package, version and sha256"),
    ('{"amd64": %r}' % {**AMD64, "package": "-o=APT::x"}, "not a Debian package name"),
    ('{"amd64": %r}' % {**AMD64, "version": "1 2"}, "not a Debian version"),
    ('{"amd64": %r}' % {**AMD64, "version": "-1"}, "not a Debian version"),
    ('{"amd64": %r}' % {**AMD64, "sha256": AMD64["sha256"][:-1]}, "not 64 lower-case hex digits"),
    ('{"amd64": %r}' % {**AMD64, "sha256": AMD64["sha256"].upper()}, "not 64 lower-case hex digits"),
]


@pytest.mark.parametrize("value,expected", BAD_PINS)
def test_bad_pin(value: str, expected: str) -> None:
    runner = RuleRunner(target_types=register.target_types())
    runner.write_files({"k/BUILD": f'linux_kernel(name="k", debian_packages={value})'})
    with pytest.raises(ExecutionError) as exc:
        runner.get_target(Address("k", target_name="k"))
    msg = str(exc.value)
    assert "`debian_packages` field of k:k" in msg and expected in msg and "Fix:" in msg, msg


@pytest.fixture(scope="module")
def bad_kernels(tmp_path_factory) -> Path:
    """A scratch checkout with bad kernels and images using them in tests/kernelbad; the
    images' busybox has a build tag no other build uses, so its download, rewrite and
    compile cannot come from a cache: had they run, the log would show them."""
    root = checkout(tmp_path_factory.mktemp("kernel") / "k4s")
    wrong_sha = {**AMD64, "sha256": "0" * 64}
    kmod = kmod_pin(tmp_path_factory.mktemp("kmod"))
    tag = f"k4s_kernelbad_{uuid.uuid4().hex}"
    (root / "tests" / "testprojects" / "small" / "BUILD.kernelbad").write_text(
        f"go_busybox(name='bb_kernelbad', commands=['github.com/u-root/u-root/cmds/core/echo'], build_tags=[{tag!r}])\n"
    )
    (root / "tests" / "kernelbad").mkdir()
    (root / "tests" / "kernelbad" / "BUILD").write_text(
        f"linux_kernel(name='wrong_sha', debian_packages={{'amd64': {wrong_sha!r}}})\n"
        f"linux_kernel(name='not_kernel', debian_packages={{'amd64': {kmod!r}}})\n"
        f"linux_kernel(name='wrong_arch', debian_packages={{'amd64': {ARM64!r}}})\n"
        f"linux_kernel(name='amd64_only', debian_packages={{'amd64': {AMD64!r}}})\n"
        "BB = '//tests/testprojects/small:bb_kernelbad'\n"
        "initramfs(name='img_wrong_sha', busybox=BB, linux_kernel=':wrong_sha')\n"
        "initramfs(name='img_not_kernel', busybox=BB, linux_kernel=':not_kernel')\n"
        "initramfs(name='img_wrong_arch', busybox=BB, linux_kernel=':wrong_arch')\n"
        "initramfs(name='img_no_module', busybox=BB, linux_kernel=':amd64_only', kernel_modules=['overlay', 'no_such_module_k4s'])\n"
        "initramfs(name='img_builtin', busybox=BB, linux_kernel=':amd64_only', kernel_modules=['ext4', 'unix'])\n"
        "initramfs(name='img_not_a_kernel_target', busybox=BB, linux_kernel=BB)\n"
        "initramfs(name='img_arm64', busybox='//distros/k3s-like:bb@goarch=arm64', linux_kernel=':amd64_only')\n"
        "initramfs(name='img_no_kernel', busybox=BB, kernel_modules=['overlay'])\n"
    )
    return root


K = "tests/kernelbad"
# (image address, code, target the error names, field, text)
BAD_KERNELS = [
    (f"{K}:img_wrong_sha", "E_KERNEL_SHA256", f"{K}:wrong_sha", "debian_packages", "has sha256 14d219d0"),
    (f"{K}:img_not_kernel", "E_KERNEL_NOT_KERNEL", f"{K}:not_kernel", "debian_packages", "not a kernel package"),
    (f"{K}:img_wrong_arch", "E_KERNEL_ARCH", f"{K}:wrong_arch", "debian_packages", "which apt has for arm64, not amd64"),
    (f"{K}:img_no_module", "E_KERNEL_MODULE_MISSING", f"{K}:img_no_module", "kernel_modules", "no_such_module_k4s"),
    (f"{K}:img_builtin", "E_KERNEL_MODULE_MISSING", f"{K}:img_builtin", "kernel_modules", "unix built into that kernel"),
    (f"{K}:img_not_a_kernel_target", "E_KERNEL_NOT_A_KERNEL_TARGET", f"{K}:img_not_a_kernel_target", "linux_kernel", "a `go_busybox` target"),
    (f"{K}:img_arm64", "E_KERNEL_ARCH", f"{K}:img_arm64", "linux_kernel", "pins no kernel for arm64"),
    (f"{K}:img_no_kernel", "E_KERNEL_NONE", f"{K}:img_no_kernel", "kernel_modules", "neither `linux_kernel` nor `kernel_modules_dir`"),
]


@pytest.mark.parametrize("address,code,target,field,text", BAD_KERNELS, ids=[b[0].split(":")[1] for b in BAD_KERNELS])
def test_bad_kernel(bad_kernels: Path, address: str, code: str, target: str, field: str, text: str) -> None:
    """Each a coded error naming the target, the field and the fix, before the busybox
    is rewritten or compiled (its module download may have run: it runs beside the
    kernel's steps)."""
    dist = fresh_dist("kernelbad", root=bad_kernels)
    r = run_pants(f"--pants-distdir={dist}", "--keep-sandboxes=always", "package", address, cwd=bad_kernels)
    assert r.returncode != 0
    assert code in r.output, r.output[-4000:]
    assert f"`{field}` field of {target}" in r.output, r.output[-4000:]
    assert text in r.output and "Fix:" in r.output, r.output[-4000:]
    ran = executed_processes(r.output)
    assert not [d for d in ran if d.startswith(("Rewrite", "Compile"))], ran
    assert not dist.exists() or not any(p.is_file() for p in dist.rglob("*"))


def test_the_unique_busybox_builds(bad_kernels: Path) -> None:
    """The busybox of the bad images builds, and its steps show in the log (so the
    absence of those steps above means they did not run)."""
    r = run_pants("--keep-sandboxes=always", "package", "tests/testprojects/small:bb_kernelbad", cwd=bad_kernels)
    assert r.returncode == 0, r.output[-4000:]
    ran = executed_processes(r.output)
    assert [d for d in ran if d.startswith("Compile")], ran


def test_plugin_reads_no_host_kernel_paths() -> None:
    """`git grep "/lib/modules\\|/boot/vmlinuz" k4s_plugin`: no path a default build reads,
    only help text, k4stool's paths inside a package, and the explicit
    `kernel_modules_dir` example."""
    out = subprocess.run(["git", "grep", "-n", r"/lib/modules\|/boot/vmlinuz", "k4s_plugin"], cwd=REPO,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        path = line.split(":", 1)[0]
        assert path in ("k4s_plugin/targets.py", "k4s_plugin/rules/kernel.py", "k4s_plugin/tools/k4stool/internal/kernel/kernel.go",
                        "k4s_plugin/tools/k4stool/internal/kernel/kernel_test.go"), line


def _without_host_kernel(*argv: str) -> list[str]:
    """argv run in a mount namespace where /boot and /lib/modules are empty tmpfs (as
    on a machine without a kernel package); it fails if they are not empty."""
    require_tool("unshare")
    script = (
        "set -e; for d in /boot /lib/modules; do [ -d $d ] && mount -t tmpfs k4s-empty $d; done; "
        "if find /boot /lib/modules -mindepth 1 2>/dev/null | grep -q .; then exit 97; fi; exec \"$@\""
    )
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    return [*unshare, "sh", "-c", script, "sh", *argv]


def _package_without_host_kernel(target: str, dist: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        _without_host_kernel(str(PANTS), "--no-pantsd", f"--pants-distdir={dist}", *flags, "package", target),
        cwd=REPO, capture_output=True, text=True, timeout=4 * 3600,
    )


def test_namespace_hides_the_host_kernel() -> None:
    r = subprocess.run(_without_host_kernel("sh", "-c", "find /boot /lib/modules -mindepth 1 | wc -l; ls /usr/bin/apt-get"),
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split() == ["0", "/usr/bin/apt-get"], (r.stdout, r.stderr)
    outside = subprocess.run(["sh", "-c", "find /boot /lib/modules -mindepth 1 | wc -l"], capture_output=True, text=True)
    print(f"outside the namespace: {outside.stdout.strip()} entries in /boot and /lib/modules")


def _check_sbom(dist: Path, stem: str, modules: int) -> None:
    """The image's SBOM lists the kernel package (name, version, the pinned sha256, the
    image's sha256) and each module file, with its hash, naming the package; it is
    valid CycloneDX 1.5."""
    sbom = dist / f"{stem}.cpio.cdx.json"
    bom = json.loads(sbom.read_text())
    kernels = [c for c in bom["components"] if c["type"] == "operating-system"]
    assert [(k["name"], k["version"], k["hashes"]) for k in kernels] == [
        (AMD64["package"], AMD64["version"], [{"alg": "SHA-256", "content": AMD64["sha256"]}])
    ]
    props = {p["name"]: p["value"] for p in kernels[0]["properties"]}
    assert props["k4s:kernel-image-sha256"] == sha256(dist / f"{stem}.vmlinuz")
    mods = [c for c in bom["components"] if c["name"].endswith(".ko")]
    assert len(mods) == modules, [m["name"] for m in mods]
    for m in mods:
        assert m["name"].startswith("lib/modules/6.1.0-57-amd64/kernel/") and m["hashes"][0]["alg"] == "SHA-256"
        assert {"name": "k4s:kernel-package", "value": kernels[0]["purl"]} in m["properties"]
    r = subprocess.run([str(REPO / "build-support" / "sbom" / "sbom-check"), str(sbom)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def _same_bytes(target: str, stem: str, *flags: str) -> Path:
    normal = fresh_dist("kernel-normal")
    r = run_pants(f"--pants-distdir={normal}", "package", target, timeout=4 * 3600)
    assert r.returncode == 0, r.output[-4000:]
    hidden = fresh_dist("kernel-hidden")
    h = _package_without_host_kernel(target, hidden, *flags)
    assert h.returncode == 0, (h.stdout + h.stderr)[-4000:]
    for name in (f"{stem}.cpio", f"{stem}.vmlinuz", f"{stem}.cpio.cdx.json"):
        a, b = normal / name, hidden / name
        assert a.is_file() and b.is_file(), name
        assert sha256(a) == sha256(b), name
    print(f"{target}: cpio sha256 {sha256(normal / f'{stem}.cpio')} with and without /boot and /lib/modules")
    return normal


@pytest.mark.slow
def test_same_image_without_a_host_kernel_small() -> None:
    """An image with kernel modules, built again with /boot and /lib/modules empty and
    no process cache (every step runs again, apt-get too): the same cpio, kernel and
    SBOM."""
    dist = _same_bytes("tests/boot:initramfs_kmods", "tests.boot/initramfs_kmods", "--no-local-cache")
    # overlay, br_netfilter and what it needs: bridge, stp, llc.
    _check_sbom(dist, "tests.boot/initramfs_kmods", modules=5)


def _k3s_modules(dist: Path) -> list[str]:
    """The module files in the k3s-like image, read from the cpio by bsdtar."""
    bsdtar = require_tool("bsdtar")
    listing = subprocess.run([bsdtar, "-tf", str(dist / "distros.k3s-like" / "initramfs.cpio")],
                             capture_output=True, text=True, check=True).stdout.split()
    return [p for p in listing if p.endswith(".ko")]


@pytest.mark.slow
def test_same_k3s_like_image_without_a_host_kernel() -> None:
    """README's first command in a mount namespace without a kernel: the same cpio as
    with this machine's kernel installed. (With Pants' caches: the kernel steps are
    cacheable, pinned by sha256; the old host-tree reads were never cached and would
    fail here.)"""
    dist = _same_bytes("distros/k3s-like:initramfs", "distros.k3s-like/initramfs")
    assert len(_k3s_modules(dist)) > 20  # NODE_KERNEL_MODULES + vxlan and what they need
    _check_sbom(dist, "distros.k3s-like/initramfs", modules=len(_k3s_modules(dist)))


def test_no_host_kernel_tools_needed() -> None:
    """The kernel steps use no dpkg-deb, ar, tar or depmod of this machine: k4stool
    unpacks the package (kernel.go imports only Go libraries)."""
    source = KERNEL_GO.read_text()
    assert "os/exec" not in source


def test_help() -> None:
    """`pants help linux_kernel` prints the target and its field (it once failed on an
    unannotated compute_value)."""
    r = run_pants("help", "linux_kernel")
    assert r.returncode == 0, r.output[-3000:]
    assert "debian_packages" in r.stdout and "Dict[str, Dict[str, str]]" in r.stdout
