"""k4s-node, the appliance's node supervisor, in its Go unit tests (fast, on the host):
a missing, partial, unparsable or mismatched cluster identity names the file and what
to do (and the node then waits, saying so, instead of exiting to a root shell);
components' output is drained past over-long lines; the order of an orderly shutdown, the
liveness checks' failure counting, restart back-off, restartComponent on real processes,
the power button's events and the memory reservation; leaf certificates are renewed in
place on time, the SNTP client measures offsets and refuses bad answers, the join token
Secret expires."""

from __future__ import annotations

import os
import subprocess

from ..conftest import REPO, go_test, require_tool


def test_k4s_node_unit_tests() -> None:
    go_test(REPO / "node", "./cmd/k4s-node/")


def test_identity_contract_copy_is_current() -> None:
    """k4s-node's identity constants (a block at the end of identity.go) are generated
    from k4stool's identity contract
    (k4s_plugin/tools/k4stool/internal/contract): the file names both sides use under
    etc/k4s/identity are spelled once."""
    r = subprocess.run(
        [require_tool("go"), "run", "./k4stool/internal/contract/gen", "-check",
         str(REPO / "node" / "cmd" / "k4s-node" / "identity.go")],
        cwd=REPO / "k4s_plugin" / "tools", capture_output=True, text=True, timeout=600,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
    )
    assert r.returncode == 0, r.stdout + r.stderr
