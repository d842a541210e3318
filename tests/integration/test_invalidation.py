"""Edits rebuild exactly what changed: each input that decides the output changes it
(or, for a wrong go.sum pin, stops the build), and an unrelated edit rebuilds nothing.

Each test edits a scratch checkout; the Pants store is the shared one, so unchanged
steps are cache hits (and so may be changed ones, if an earlier run built the same
inputs): the tests assert that outputs change and that steps which should not rerun
did not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ..conftest import checkout, executed_k4s_steps, run_pants, sha256

SMALL = "tests/testprojects/small"
TARGET = f"{SMALL}:initramfs"
OUT = "dist/tests.testprojects.small/initramfs.cpio"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return checkout(tmp_path / "k4s")


def build(root: Path, target: str = TARGET):
    r = run_pants("--keep-sandboxes=always", "package", target, cwd=root)
    assert r.returncode == 0, r.output
    return r, executed_k4s_steps(r.output)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_unrelated_edit_rebuilds_nothing(root: Path) -> None:
    build(root)
    before = sha256(root / OUT)
    (root / "README.md").write_text((root / "README.md").read_text() + "\nan unrelated edit\n")
    (root / SMALL / "unrelated.txt").write_text("not an input of anything\n")
    _, steps = build(root)
    assert steps == []
    assert sha256(root / OUT) == before


def test_build_tag_changes_output(root: Path) -> None:
    build(root)
    before = sha256(root / OUT)
    edit(root / SMALL / "BUILD", 'name="bb",', 'name="bb",\n    build_tags=["fancy"],')
    _, steps = build(root)
    assert not [s for s in steps if s.startswith("Build k4stool")]
    assert sha256(root / OUT) != before
    r = run_pants("package", f"{SMALL}:bb", cwd=root)
    assert r.returncode == 0, r.output
    out = subprocess.run([root / "dist/tests.testprojects.small/bb", "hello"], capture_output=True, text=True)
    assert out.stdout.startswith("fancy hello from k4s")


def test_command_list_change_changes_output(root: Path) -> None:
    build(root)
    before = sha256(root / OUT)
    edit(root / SMALL / "BUILD", '("cat", "echo",', '("echo",')
    _, steps = build(root)
    assert not [s for s in steps if s.startswith("Build k4stool")]
    assert sha256(root / OUT) != before
    listing = subprocess.run(["bsdtar", "-tf", root / OUT], capture_output=True, text=True, check=True).stdout
    assert "bbin/cat" not in listing.split() and "bbin/echo" in listing.split()


def test_extra_file_change_changes_output(root: Path) -> None:
    build(root)
    before = sha256(root / OUT)
    (root / SMALL / "motd.txt").write_text("A different message of the day.\n")
    _, steps = build(root)
    assert set(s.split(" ")[0] for s in steps) <= {"Pack"}  # at most the cpio step reran
    assert sha256(root / OUT) != before


def test_compression_change_changes_output(root: Path) -> None:
    build(root)
    before = (root / OUT).read_bytes()
    edit(root / SMALL / "BUILD", 'uinit="hello",', 'uinit="hello",\n    compression="zstd",')
    _, steps = build(root)
    assert set(s.split(" ")[0] for s in steps) <= {"Pack"}
    out = root / "dist/tests.testprojects.small/initramfs.cpio.zst"
    assert out.read_bytes() != before
    assert subprocess.run(["zstd", "-dc", out], capture_output=True, check=True).stdout == before


def test_go_sum_change_is_noticed(root: Path) -> None:
    build(root)
    go_sum = root / SMALL / "go.sum"
    lines = go_sum.read_text().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if line.startswith("github.com/u-root/u-root v0.16.0 h1:"))
    mod, ver, _ = lines[i].split()
    lines[i] = f"{mod} {ver} h1:{'A' * 43}=\n"  # a different (wrong) pin for u-root
    go_sum.write_text("".join(lines))
    r = run_pants("package", TARGET, cwd=root)
    assert r.returncode != 0
    assert "`sources` field of tests/testprojects/small:bb" in r.output, r.output
    assert "E_CHECKSUM" in r.output or "checksum mismatch" in r.output, r.output
