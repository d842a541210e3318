"""k4s-node, the appliance's node supervisor, in its Go unit tests (fast, on the host):
a missing, partial, unparsable or mismatched cluster identity names the file and what
to do (and the node then waits, saying so, instead of exiting to a root shell);
components' output is drained past over-long lines."""

from __future__ import annotations

import os
import subprocess

from .conftest import REPO, require_tool


def test_k4s_node_unit_tests() -> None:
    go = require_tool("go")
    r = subprocess.run(
        [go, "test", "-count=1", "./cmd/k4s-node/"],
        cwd=REPO / "distros" / "kubesolo-like",
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
        capture_output=True, text=True, timeout=1200,
    )
    assert r.returncode == 0, r.stdout + r.stderr
