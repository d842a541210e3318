"""k4s-node, the appliance's node supervisor, in its Go unit tests (fast, on the host):
a missing, partial, unparsable or mismatched cluster identity names the file and what
to do (and the node then waits, saying so, instead of exiting to a root shell);
components' output is drained past over-long lines; the order of an orderly shutdown, the
liveness checks' failure counting, restart back-off, restartComponent on real processes,
the power button's events and the memory reservation; leaf certificates are renewed in
place on time, the SNTP client measures offsets and refuses bad answers, the join token
Secret expires."""

from __future__ import annotations

from .conftest import REPO, go_test


def test_k4s_node_unit_tests() -> None:
    go_test(REPO / "distros" / "node", "./cmd/k4s-node/")
