"""The SBOM `pants package` writes beside an initramfs (`<image>.cdx.json`): valid
CycloneDX 1.5 by the official CycloneDX library's strict schema validation, and true
to the image: the hashes are those of the image and of the files in it, every Go
module has go.sum's hash, and a patched module names its patch with the patch's
SHA-256. Also the size budget (`max_size`) an image meets."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from k4s_plugin.subsystems import GO_VERSION

from ..conftest import REPO, fresh_dist, go_test, require_tool, run_pants

SMALL = "tests/testprojects/small"
CHECK = REPO / "build-support" / "sbom" / "sbom-check"


@pytest.fixture(scope="module")
def dist() -> Path:
    d = fresh_dist("sbom")
    r = run_pants(f"--pants-distdir={d}", "package", f"{SMALL}:initramfs_patched", f"{SMALL}:initramfs")
    assert r.returncode == 0, r.output
    return d


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _check(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHECK), *map(str, paths)], capture_output=True, text=True, timeout=600)


def test_sboms_are_valid_cyclonedx(dist: Path) -> None:
    sboms = sorted(dist.rglob("*.cdx.json"))
    assert [s.relative_to(dist).as_posix() for s in sboms] == [
        "patched/initramfs.cpio.cdx.json", "tests.testprojects.small/initramfs.cpio.cdx.json",
    ]
    r = _check(*sboms)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("valid CycloneDX 1.5") == 2


def test_validation_can_fail(dist: Path, tmp_path: Path) -> None:
    bom = json.loads((dist / "patched" / "initramfs.cpio.cdx.json").read_text())
    bom["components"][0]["hashes"][0]["alg"] = "SHA-257"
    broken = tmp_path / "broken.cdx.json"
    broken.write_text(json.dumps(bom))
    r = _check(broken)
    assert r.returncode == 1 and "not valid CycloneDX 1.5" in r.stdout


def test_sbom_is_true_to_the_image(dist: Path, tmp_path: Path) -> None:
    bsdtar = require_tool("bsdtar")
    image = dist / "patched" / "initramfs.cpio"
    bom = json.loads((dist / "patched" / "initramfs.cpio.cdx.json").read_text())
    assert bom["metadata"]["component"]["type"] == "firmware"
    assert bom["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": _sha256(image)}]

    subprocess.run([bsdtar, "-xf", image, "-C", tmp_path, "bbin/bb"], check=True)
    components = {c["bom-ref"]: c for c in bom["components"]}
    bb = components["file:bbin/bb"]
    assert bb["type"] == "application"
    assert bb["hashes"] == [{"alg": "SHA-256", "content": _sha256(tmp_path / "bbin" / "bb")}]
    assert {"name": "k4s:command", "value": "echo github.com/u-root/u-root/cmds/core/echo"} in bb["properties"]

    # The SDK every step ran: [k4s-go].version's, not this machine's Go.
    assert components[f"pkg:golang/stdlib@{GO_VERSION}"]["version"] == GO_VERSION

    # The patched module: its version and go.sum hash, and the patch with its SHA-256.
    gosum = (REPO / SMALL / "go.sum").read_text().split("\n")
    uroot = components["pkg:golang/github.com/u-root/u-root@v0.16.0"]
    sum_line = next(line for line in gosum if line.startswith("github.com/u-root/u-root v0.16.0 h1:"))
    assert {"name": "k4s:go.sum", "value": sum_line.split()[2]} in uroot["properties"]
    patch = f"{SMALL}/patches/echo-prefix.patch"
    assert uroot["pedigree"]["patches"] == [{"type": "unofficial", "diff": {"url": patch}}]
    assert {"name": "k4s:patch", "value": f"{patch} sha256:{_sha256(REPO / patch)}"} in uroot["properties"]
    # bb depends on exactly the modules listed.
    deps = {d["ref"]: d["dependsOn"] for d in bom["dependencies"]}
    libraries = {ref for ref, c in components.items() if c["type"] == "library"}
    assert set(deps["file:bbin/bb"]) == libraries


def test_unpatched_image_lists_files_and_no_patches(dist: Path) -> None:
    bom = json.loads((dist / "tests.testprojects.small" / "initramfs.cpio.cdx.json").read_text())
    components = {c["bom-ref"]: c for c in bom["components"]}
    motd = components["file:etc/motd"]
    assert motd["hashes"][0]["content"] == _sha256(REPO / SMALL / "motd.txt")
    assert not any("pedigree" in c for c in components.values())
    assert all(
        any(p["name"] == "k4s:go.sum" and p["value"].startswith("h1:") for p in c["properties"])
        for c in components.values() if c["type"] == "library" and c["name"] != "stdlib"
    )


def test_modules_list_go_test() -> None:
    """k4stool download's modules list (what the SBOM is made from): go.sum hashes,
    patches per module, sorted (k4stool/internal/download/download_test.go)."""
    go_test(REPO / "k4s_plugin" / "tools", "./k4stool/internal/download", run="WriteModulesJSON")


def test_every_profile_image_has_a_budget() -> None:
    """Each profile's images declare `max_size`; a Kubernetes profile's flash (xz) image
    fits 40 MiB (README "Image size")."""
    from k4s_plugin.grammar import size_bytes

    r = run_pants("peek", "distros::")
    assert r.returncode == 0, r.output
    images = [t for t in json.loads(r.stdout) if t["target_type"] == "initramfs"]
    assert len(images) >= 17
    for t in images:
        assert t.get("max_size"), f"{t['address']} has no max_size"
        if t.get("compression") == "xz" and not t["address"].startswith("distros/uroot"):
            assert size_bytes(t["max_size"]) <= 40 << 20, t["address"]
