"""./pants on a slow machine: Pants 2.17 fails a command when a new pantsd needs more
than its hard-coded 60 s to start. The launcher (build-support/pants_launcher.py) waits
longer and says so; here Pants' own wait is cut to 0.01 s to simulate the slow start
with a real, new pantsd."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from ..conftest import REPO


def test_slow_pantsd_start_waits_instead_of_failing(tmp_path: Path) -> None:
    pids = tmp_path / "pids"  # a pantsd of its own: it must be launched, not reused
    env = {**os.environ, "K4S_PANTSD_FIRST_WAIT": "0.01"}
    r = subprocess.run(
        [str(REPO / "pants"), f"--pants-subprocessdir={pids}", "--version"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.strip() == "2.17.1"
        assert "k4s: pantsd has not started after 0 s (a busy machine); waiting up to 900 s" in r.stderr
        assert "Timeout" not in r.stderr
    finally:
        for pid_file in pids.rglob("pantsd/pid"):
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass
