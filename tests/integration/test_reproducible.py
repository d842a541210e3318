"""Same inputs, same bytes: two checkouts at different paths, with separate Pants
stores, named caches (so separate GOCACHE and module caches) and HOMEs, build the
same initramfs and bb."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ..conftest import checkout, run_pants


def build(root: Path, caches: Path, targets: list[str]) -> dict[str, str]:
    home = caches / "home"
    home.mkdir(parents=True, exist_ok=True)
    r = run_pants(
        f"--local-store-dir={caches / 'store'}",
        f"--named-caches-dir={caches / 'named'}",
        "package",
        *targets,
        cwd=root,
        env={"HOME": str(home)},
    )
    assert r.returncode == 0, r.output
    return {
        str(p.relative_to(root / "dist")): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "dist").rglob("*"))
        if p.is_file()
    }


def assert_same(tmp_path: Path, targets: list[str]) -> dict[str, str]:
    a = checkout(tmp_path / "a" / "k4s")
    b = checkout(tmp_path / "elsewhere" / "deeper" / "checkout")
    ha = build(a, tmp_path / "caches-a", targets)
    hb = build(b, tmp_path / "caches-b", targets)
    assert ha and ha == hb
    return ha


def test_small_project_is_reproducible(tmp_path: Path) -> None:
    hashes = assert_same(tmp_path, ["tests/testprojects/small:initramfs", "tests/testprojects/small:bb"])
    assert set(hashes) == {
        "tests.testprojects.small/initramfs.cpio",
        "tests.testprojects.small/initramfs.cpio.cdx.json",  # the SBOM, reproducible too
        "tests.testprojects.small/bb",
    }


@pytest.mark.slow
def test_uroot_profile_is_reproducible(tmp_path: Path) -> None:
    hashes = assert_same(tmp_path, ["distros/uroot:initramfs"])
    print(hashes)
