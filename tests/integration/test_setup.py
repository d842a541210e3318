"""A newcomer's two commands on a fresh machine: ./pants bootstraps from wheels only
(no source builds), and README's test command sets up the host tools it needs or
says exactly what to run."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import REPO

HOST_TOOLS = REPO / "build-support" / "host-tools"


@pytest.mark.parametrize("python_version", ["3.9", "3.10", "3.11"])
def test_every_pin_has_a_wheel(python_version: str, tmp_path: Path) -> None:
    """./pants installs build-support/requirements.lock with --only-binary=:all:; a pin
    without a wheel for a supported Python would fail the bootstrap (and before, made pip
    compile psutil and ijson from source for minutes)."""
    arch = platform.machine()
    r = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
         "--no-deps", "--only-binary=:all:", "--python-version", python_version,
         "--platform", f"manylinux2014_{arch}", "--require-hashes",
         "-r", str(REPO / "build-support" / "requirements.lock"), "-d", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert not list(tmp_path.glob("*.tar.gz")) and not list(tmp_path.glob("*.zip"))


def test_bootstrap_installs_wheels_only() -> None:
    script = (REPO / "pants").read_text()
    installs = re.findall(r'"\$\{pip\[@\]\}" install [^\n]*', script)
    assert installs and all("--only-binary=:all:" in i or "--no-deps" in i for i in installs)
    for stage in ("1/4", "2/4", "3/4", "4/4"):
        assert f'step "{stage} ' in script


def _fake_path(tmp_path: Path, *tools: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dpkg", "id", "go", *tools):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_host_tools_missing_says_what_to_run(tmp_path: Path) -> None:
    path = _fake_path(tmp_path, "cpio", "xz")
    r = subprocess.run(
        ["bash", str(HOST_TOOLS)],
        env={**os.environ, "PATH": path, "K4S_INSTALL_HOST_TOOLS": "0"},
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 1
    assert "k4s: the tests need host tools that are missing:" in r.stderr
    command = r.stderr.strip().splitlines()[-1].strip()
    assert command.startswith("sudo apt-get update && sudo apt-get install -y --no-install-recommends ")
    wanted = command.split("--no-install-recommends ", 1)[1].split()
    assert "libarchive-tools" in wanted and "openssl" in wanted
    assert "cpio" not in wanted and "xz-utils" not in wanted  # present on the fake PATH


def test_host_tools_without_go_explains(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dpkg", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    r = subprocess.run(
        ["bash", str(HOST_TOOLS)], env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 1
    assert "Go >= 1.25" in r.stderr and "https://go.dev/dl/" in r.stderr


def test_host_tools_present_here() -> None:
    """On this machine (set up by README's test command) nothing is missing."""
    r = subprocess.run([str(HOST_TOOLS)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "K4S_INSTALL_HOST_TOOLS": "0"})
    assert r.returncode == 0, r.stderr


def test_ci_runs_exactly_readmes_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in quick.strip().splitlines()]
    assert len(commands) == 2
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#") and not line.strip().startswith(("set ", "cd ", "echo "))]
    assert ci == [commands[1]]
    assert "build-support/host-tools" in (REPO / commands[1].removeprefix("./")).read_text()
