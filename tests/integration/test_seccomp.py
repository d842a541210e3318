"""runc's pure-Go seccomp filter compiler (distros/patches/runc-seccomp-purego.patch),
built into a bb with the same patches as the profiles and run on the host: every
operator at 64-bit boundaries, rule order, errno values, fork+exec after the filter,
and containerd's default profile. Slow: the patched runc and containerd's profile
package come through the download, rewrite and compile steps."""

from __future__ import annotations

import os
import subprocess

import pytest

from ..conftest import fresh_dist, run_pants


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="installing a seccomp filter without no_new_privs needs root")
def test_pure_go_seccomp_filters() -> None:
    dist = fresh_dist("seccomp")
    r = run_pants(f"--pants-distdir={dist}", "package", "tests/testprojects/seccomp:bb", timeout=1800)
    assert r.returncode == 0, r.output
    bb = dist / "tests.testprojects.seccomp" / "bb"
    link = bb.parent / "seccomp-check"
    link.symlink_to("bb")
    proc = subprocess.run([str(link)], capture_output=True, text=True, timeout=60)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout
    assert "seccomp-check: all passed" in proc.stdout
    assert "containerd default profile: " in proc.stdout
