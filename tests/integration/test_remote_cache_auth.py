"""A shared remote cache that only CI can write: BuildGrid with TLS and bearer tokens
(build-support/remote-cache/credentials, buildgrid --auth, acl.yml). CI's token writes
every step; a developer's token reads them all in a fresh checkout but its writes are
refused; without a token nothing is read. No case fails a build."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ..conftest import REPO, checkout, isolated_pants, require_tool, stat_counter
from ..remote_cache import BuildGrid

TARGET = "tests/testprojects/small:bb"
OTHER = "tests/testprojects/small:bb_renamed"


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> Path:
    require_tool("openssl")
    d = tmp_path_factory.mktemp("creds")
    subprocess.run([str(REPO / "build-support/remote-cache/credentials"), str(d)], check=True, capture_output=True)
    assert oct((d / "ci.token").stat().st_mode & 0o777) == "0o600"
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory, creds: Path):
    bg = BuildGrid(tmp_path_factory.mktemp("buildgrid-auth"), auth=creds).start()
    yield bg
    bg.stop()


def tls_flags(creds: Path, token: str | None) -> list[str]:
    flags = [f"--remote-ca-certs-path={creds / 'ca.crt'}"]
    if token:
        flags.append(f"--remote-oauth-bearer-token-path={creds / token}")
    return flags


def test_ci_writes_developers_read(server: BuildGrid, creds: Path, tmp_path: Path) -> None:
    named = tmp_path / "named"  # GOCACHE etc. never change a result: shared to save time
    a = checkout(tmp_path / "a" / "k4s")
    r = isolated_pants(a, tmp_path / "ca", *tls_flags(creds, "ci.token"), "package", TARGET,
                       remote=server.address, named=named)
    assert r.returncode == 0, r.output
    assert stat_counter(r.output, "remote_cache_write_successes") >= 4, r.output
    assert stat_counter(r.output, "remote_cache_write_errors") == 0, r.output

    # A developer, fresh checkout and empty store: every step from the cache.
    b = checkout(tmp_path / "b" / "k4s")
    r = isolated_pants(b, tmp_path / "cb", *tls_flags(creds, "dev.token"), "package", TARGET,
                       remote=server.address, named=named)
    assert r.returncode == 0, r.output
    assert stat_counter(r.output, "remote_cache_requests_cached") >= 4, r.output
    assert stat_counter(r.output, "remote_cache_read_errors") == 0, r.output

    # The developer's new results are not accepted (the build still succeeds).
    r = isolated_pants(b, tmp_path / "cb", *tls_flags(creds, "dev.token"), "package", OTHER,
                       remote=server.address, named=named)
    assert r.returncode == 0, r.output
    assert stat_counter(r.output, "remote_cache_write_successes") == 0, r.output
    assert stat_counter(r.output, "remote_cache_write_errors") >= 1, r.output
    assert "No valid authorization" in r.output or "PermissionDenied" in r.output, r.output

    # No token: nothing is read; the build runs locally.
    c = checkout(tmp_path / "c" / "k4s")
    r = isolated_pants(c, tmp_path / "cc", *tls_flags(creds, None), "package", TARGET,
                       remote=server.address, named=named)
    assert r.returncode == 0, r.output
    assert stat_counter(r.output, "remote_cache_requests_cached") == 0, r.output
