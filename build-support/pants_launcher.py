"""Runs Pants (from ./pants) so that a slow machine does not fail the command.

Pants 2.17 waits a hard-coded 60 s for a new pantsd to write its pid file and open
its socket, then fails the command with `ProcessManager.Timeout`; on a busy 2-core
machine pantsd has needed minutes. This launcher lets Pants wait as long as usual
first, then says so on one line and keeps waiting (up to K4S_PANTSD_START_TIMEOUT
seconds, default 900) instead of failing. It also hands Pants the CA bundle named in
SSL_CERT_FILE (see main). Nothing else about Pants changes.

K4S_PANTSD_FIRST_WAIT (seconds, default Pants' own 60) is for the test that
simulates a slow start (tests/integration/test_launcher.py).
"""

from __future__ import annotations

import os
import sys
import time


def patch_pantsd_wait() -> None:
    from pants.pantsd.process_manager import ProcessManager

    first = float(os.environ.get("K4S_PANTSD_FIRST_WAIT", "60"))
    total = float(os.environ.get("K4S_PANTSD_START_TIMEOUT", "900"))
    said = []

    def patient(wait):
        def waiter(self, timeout: float):
            if timeout < 60:  # an already-running pantsd: Pants' own short checks
                return wait(self, timeout)
            start = time.monotonic()
            try:
                return wait(self, min(timeout, first))
            except ProcessManager.Timeout:
                if not said:
                    print(
                        f"k4s: pantsd has not started after {first:.0f} s (a busy machine); "
                        f"waiting up to {total:.0f} s instead of failing",
                        file=sys.stderr, flush=True,
                    )
                    said.append(True)
                return wait(self, max(total - (time.monotonic() - start), 1.0))

        return waiter

    ProcessManager.await_pid = patient(ProcessManager.await_pid)
    ProcessManager.await_socket = patient(ProcessManager.await_socket)


def main() -> None:
    patch_pantsd_wait()
    # Pants downloads (k4s: the Go SDK) check TLS against its own CA roots, not the
    # machine's; where SSL_CERT_FILE names the machine's bundle (as curl, pip and Go
    # read it, e.g. behind a TLS-inspecting proxy), Pants uses it too.
    if os.environ.get("SSL_CERT_FILE") and "PANTS_CA_CERTS_PATH" not in os.environ:
        os.environ["PANTS_CA_CERTS_PATH"] = os.environ["SSL_CERT_FILE"]
    from pants.bin.pants_loader import main as pants_main

    # sys.argv[0] stays this file: Pants starts pantsd as `python sys.argv...`, which
    # then runs through here too (the patch is harmless in the daemon).
    sys.exit(pants_main())


if __name__ == "__main__":
    main()
