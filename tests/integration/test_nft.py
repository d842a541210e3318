"""The pure-Go `nft` (node/cmd/nft) that kube-proxy's nftables mode
drives through sigs.k8s.io/knftables. Built with the host Go (CGO_ENABLED=0) and run as
root in fresh network namespaces, next to Debian's C nft (`apt-get install nftables`),
which is the reference: both must leave the kernel in the same state, as the C nft
lists it. Needs root, a kernel with nf_tables, unshare(1) and ip(8); fails (never skips)
without them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ..conftest import REPO, require_tool

MODULE = REPO / "node"
C_NFT = "/usr/sbin/nft"


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 600)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _go_env() -> dict[str, str]:
    return {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}


@pytest.fixture(scope="module")
def host() -> None:
    """Root, the tools, and nf_tables usable in a new network namespace."""
    if os.geteuid() != 0:
        pytest.fail("test_nft needs root (network namespaces and nf_tables)")
    for tool in ("go", "unshare", "ip"):
        require_tool(tool)
    if not Path(C_NFT).exists():
        pytest.fail(f"{C_NFT} is missing: the C nft is the reference; apt-get install nftables")
    probe = _run(["unshare", "-n", C_NFT, "add table ip k4s-probe"], timeout=60)
    if probe.returncode != 0:
        pytest.fail(f"nf_tables does not work in a network namespace here: {probe.stderr}")


@pytest.fixture(scope="module")
def nft_binary(host, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nft") / "nft"
    r = _run(["go", "build", "-o", str(out), "./cmd/nft"], cwd=MODULE, env=_go_env())
    assert r.returncode == 0, r.stderr
    # CGO_ENABLED=0: a static binary without an ELF interpreter.
    assert b"/ld-linux" not in out.read_bytes()[:4096], "nft is dynamically linked"
    return out


def test_unit_tests(host) -> None:
    """Lexer, parser, rule compiler (against nft's own bytecode), element encoding."""
    r = _run(["go", "test", "-count=1", "./cmd/nft/"], cwd=MODULE, env=_go_env())
    assert r.returncode == 0, r.stdout + r.stderr


def test_go_vet(host) -> None:
    r = _run(["go", "vet", "./cmd/nft/"], cwd=MODULE, env=_go_env())
    assert r.returncode == 0, r.stdout + r.stderr


def test_knftables_kube_proxy_syncs(nft_binary: Path, tmp_path: Path) -> None:
    """kube-proxy-shaped transactions through the real knftables API: a full sync, a
    partial sync (flushed chains, deleted map elements), stale chain deletion and a
    restart; identical rulesets with this nft and the C nft; working DNAT and rejects."""
    test_bin = tmp_path / "nft.test"
    r = _run(["go", "test", "-c", "-o", str(test_bin), "./cmd/nft/"], cwd=MODULE, env=_go_env())
    assert r.returncode == 0, r.stderr
    r = _run(
        [str(test_bin), "-test.run", "^TestKnftablesNetns$", "-test.v", "-test.count=1"],
        cwd=MODULE / "cmd" / "nft",
        env={**os.environ, "NFT_NETNS_TEST": "1", "NFT_BINARY": str(nft_binary)},
        timeout=300,
    )
    print(r.stdout[-20000:])
    assert r.returncode == 0, r.stdout[-20000:] + r.stderr
    assert "--- PASS: TestKnftablesNetns " in r.stdout
    assert "--- SKIP" not in r.stdout




def _in_netns(script: str, nft: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Runs `script` (sh) in a new network namespace with $NFT set to an nft."""
    return _run(["unshare", "-n", "sh", "-ec", script], cwd=tmp_path, env={**os.environ, "NFT": nft, "C_NFT": C_NFT}, timeout=120)


def test_cli_matches_c_nft(nft_binary: Path, tmp_path: Path) -> None:
    """`nft -f` of a kube-proxy first sync (the text knftables sends, built with its own
    types by cmd/nft/kubeproxy_test.go): the C nft lists the same ruleset."""
    ours, theirs = _apply_with_both("TestWriteKubeProxyTransaction", nft_binary, tmp_path)
    assert "dnat ip to numgen random mod 2 map" in theirs
    assert ours == theirs


def _apply_with_both(go_test: str, nft_binary: Path, tmp_path: Path, package: str = "./cmd/nft/") -> tuple[str, str]:
    """The ruleset the C nft lists after `nft -f` of the transaction `go_test` (in
    `package`) writes, applied with this nft and with the C nft, each in a fresh network
    namespace."""
    r = _run(["go", "test", "-count=1", "-run", go_test, package], cwd=MODULE,
             env={**_go_env(), "K4S_NFT_TRANSACTION": str(tmp_path / "rules.nft")})
    assert r.returncode == 0, r.stdout + r.stderr
    script = '"$NFT" -f rules.nft; "$C_NFT" list ruleset'
    ours = _in_netns(script, str(nft_binary), tmp_path)
    theirs = _in_netns(script, C_NFT, tmp_path)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    return ours.stdout, theirs.stdout


def test_cli_matches_c_nft_for_flannel(nft_binary: Path, tmp_path: Path) -> None:
    """`nft -f` of flanneld's nftables transaction (its table, the fully-random probe,
    forward accepts, masquerade rules; built with knftables' types by
    cmd/nft/flannel_test.go), which the k3s-like node runs: the C nft lists the same
    ruleset."""
    ours, theirs = _apply_with_both("TestWriteFlannelTransaction", nft_binary, tmp_path)
    assert "masquerade fully-random" in theirs and "meta mark 0x00004000 return" in theirs
    assert ours == theirs


def test_cli_matches_c_nft_for_pod_egress(nft_binary: Path, tmp_path: Path) -> None:
    """`nft -f` of k4s-node's pod egress masquerading (cmd/k4s-node/netpol.go: table ip
    k4s-pod-egress, on k0s-like and kubesolo-like), as knftables sends it: the C nft
    lists the same ruleset."""
    ours, theirs = _apply_with_both("^TestWritePodEgressTransaction$", nft_binary, tmp_path, "./cmd/k4s-node/")
    assert "ip saddr 10.42.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random" in theirs, theirs
    assert "type nat hook postrouting priority srcnat; policy accept;" in theirs, theirs
    assert ours == theirs


def test_cli_errors_and_check(nft_binary: Path, tmp_path: Path) -> None:
    """nft's error format (knftables keys IsNotFound/IsAlreadyExists on the first line),
    exit codes, --check leaving the kernel alone, and rejected syntax."""
    script = r"""
"$NFT" --version
echo 'add table ip t' | "$NFT" -f -
echo 'add chain ip t checked' | "$NFT" --check -f -
"$NFT" --json list table ip t
echo 'delete chain ip t missing' | "$NFT" -f - 2>err1 || echo "rc=$?"
echo 'create table ip t' | "$NFT" -f - 2>err2 || echo "rc=$?"
"$NFT" --json list map ip t missing 2>err3 || echo "rc=$?"
echo 'add rule ip t c log prefix "x"' | "$NFT" -f - 2>err4 || echo "rc=$?"
head -n1 err1 err2 err3 err4
"""
    r = _in_netns(script, str(nft_binary), tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert out.startswith("nftables v1.")
    assert '"json_schema_version": 1' in out or '"json_schema_version":1' in out
    assert "checked" not in out, "--check created a chain"
    assert out.count("rc=1") == 4
    lines = out.splitlines()
    first = {lines[i].strip("=<> "): lines[i + 1] for i, line in enumerate(lines) if line.startswith("==> ")}
    assert "Could not process rule: No such file or directory" in first["err1"]
    assert "Could not process rule: File exists" in first["err2"]
    assert "No such file or directory" in first["err3"]
    assert 'unsupported statement "log"' in first["err4"]
