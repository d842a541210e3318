"""k4s as a Pants plugin distribution: the wheel build-support/plugin-wheel makes is
enabled by another Pants 2.17 repository with `[GLOBAL].plugins` (resolved from a local
find-links directory) and `backend_packages`, and packages an initramfs there. The
throwaway monorepo is written here from scratch: its own pants.toml, go.mod (with an
empty go.sum that `pants k4s-tidy` fills, writing tools.go, as a user would), one
first-party command; no file of this repository."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest
import tomllib

import k4s_plugin

from ..conftest import PANTS, REPO, require_tool

U = "github.com/u-root/u-root/cmds/core"
COMMANDS = ("init", "gosh", "ls", "cat", "echo")


def _build_wheel(out: Path) -> Path:
    r = subprocess.run([str(REPO / "build-support" / "plugin-wheel"), str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return Path(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return _build_wheel(tmp_path_factory.mktemp("wheels"))


def test_wheel_has_plugin_and_go_tool_sources(wheel: Path, tmp_path: Path) -> None:
    assert wheel.name == f"k4s_pants-{k4s_plugin.__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("k4s_plugin/register.py", "k4s_plugin/rules/tools.py", "k4s_plugin/tools/go.mod",
                   "k4s_plugin/tools/go.sum", "k4s_plugin/tools/k4stool/main.go",
                   "k4s_plugin/tools/k4stool/internal/rewrite/bbgen.go", "k4s_plugin/tools/k4stool/internal/contract/contract.go"):
        assert needed in names
    # The plugin's unit tests (k4s_plugin/**/<module>_test.py) and Go tests stay in the repository.
    assert not any(n.endswith(("_test.go", "_test.py")) or "__pycache__" in n for n in names)
    meta = zipfile.ZipFile(wheel).read(f"k4s_pants-{k4s_plugin.__version__}.dist-info/METADATA").decode()
    assert f"Version: {k4s_plugin.__version__}" in meta
    # Reproducible: a second build has the same bytes.
    again = _build_wheel(tmp_path)
    assert hashlib.sha256(again.read_bytes()).hexdigest() == hashlib.sha256(wheel.read_bytes()).hexdigest()


def _pex_cli_section() -> str:
    """The local pex that ./pants builds (Pants would fetch pex from GitHub), as this
    repo's pants.python.toml configures it."""
    pex_cli = tomllib.loads((REPO / "pants.python.toml").read_text())["pex-cli"]
    versions = ", ".join(f'"{v}"' for v in pex_cli["known_versions"])
    url = pex_cli["url_template"].replace("%(buildroot)s", str(REPO))
    return f'[pex-cli]\nversion = "{pex_cli["version"]}"\nknown_versions = [{versions}]\nurl_template = "{url}"\n'


def _write_monorepo(mono: Path, wheel: Path) -> None:
    (mono / "pants.toml").write_text(
        "[GLOBAL]\n"
        'pants_version = "2.17.1"\n'
        f'plugins = ["k4s-pants=={k4s_plugin.__version__}"]\n'
        'backend_packages = ["k4s_plugin"]\n\n'
        "[python-repos]\n"
        f'find_links = ["file://{wheel.parent}"]\n'
        "indexes = []\n\n"
        # Nothing from an index: pex resolves with its vendored pip (the default pip
        # 23.1.2 would be downloaded from PyPI first).
        '[python]\npip_version = "20.3.4-patched"\n\n' + _pex_cli_section()
    )
    (mono / "go.mod").write_text("module example.com/mono\n\ngo 1.25.0\n\nrequire github.com/u-root/u-root v0.16.0\n")
    # go.sum starts empty: `pants k4s-tidy` fills it and writes tools.go.
    (mono / "go.sum").write_text("")
    (mono / "cmds" / "greet").mkdir(parents=True)
    (mono / "cmds" / "greet" / "main.go").write_text(
        'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello from the monorepo") }\n'
    )
    (mono / "BUILD").write_text(
        "go_busybox(\n"
        '    name="bb",\n'
        f"    commands=[{', '.join(repr(f'{U}/{c}') for c in COMMANDS)}, \"example.com/mono/cmds/greet\"],\n"
        ")\n\n"
        'initramfs(name="initramfs", busybox=":bb", uinit="greet")\n'
    )


def test_another_repo_uses_the_wheel(wheel: Path, tmp_path: Path) -> None:
    bsdtar = require_tool("bsdtar")
    mono = tmp_path / "mono"
    mono.mkdir()
    _write_monorepo(mono, wheel)
    tidy = subprocess.run([str(PANTS), "--no-pantsd", "k4s-tidy", "//:"], cwd=mono,
                          capture_output=True, text=True, timeout=1200)
    assert tidy.returncode == 0, tidy.stdout + tidy.stderr
    tools_go = (mono / "tools.go").read_text()
    for c in COMMANDS:
        assert f'_ "{U}/{c}"' in tools_go, tools_go
    assert "github.com/u-root/u-root v0.16.0 h1:" in (mono / "go.sum").read_text()

    r = subprocess.run([str(PANTS), "--no-pantsd", "package", "//:initramfs", "//:bb"], cwd=mono,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
    cpio = mono / "dist" / "initramfs.cpio"
    listing = subprocess.run([bsdtar, "-tvf", cpio], capture_output=True, text=True, check=True).stdout
    entries = {line.split()[8]: line for line in listing.splitlines()}  # name is the 9th column
    assert "bbin/bb" in entries
    for cmd in (*COMMANDS, "greet"):
        assert f"bbin/{cmd}" in entries and "-> bb" in entries[f"bbin/{cmd}"], listing
    assert "init" in entries
    out = subprocess.run([mono / "dist" / "bb", "greet"], capture_output=True, text=True, timeout=60)
    assert out.stdout == "hello from the monorepo\n"
    # The plugin came from the wheel, not from this repository's source tree.
    assert str(REPO) not in r.stdout + r.stderr
