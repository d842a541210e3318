"""Power cuts lose nothing acknowledged (issue #24, item 2): a node with a data disk
(`pants run <target> -- -disk <image>`), a client writing ConfigMaps with a counter as
fast as the apiserver acknowledges them, QEMU SIGKILLed at a random moment, the same disk
booted again; five cuts in a row; k3s-like (kine), k0s-like and talos-like (etcd). After each: ext4
is consistent once its journal is replayed and kine's SQLite passes `PRAGMA
integrity_check` (tests/disk_node.py, on a copy of the image; etcd checks its WAL and
backend itself as it starts, and the console must show no refusal), every write the apiserver acknowledged is there with its counter, the
credentials of the first boot's admin kubeconfig still work (the same CA, kept on the
disk), the Deployment's pods run again (containers started after the cut) and the node is
Ready by a heartbeat of the new boot. Slow: a profile build and six boots under TCG.

What a SIGKILL of QEMU cuts: the guest's memory (its page cache, SQLite's unsynced WAL
pages, the ext4 journal not yet committed) and QEMU's own buffers; what QEMU had written
to the image file stays in the host's page cache, as data a real disk had written would.
It does not model a disk that loses or reorders its own volatile cache (the guest flushes
it, QEMU passes flushes on as fsync)."""

from __future__ import annotations

import random
import time

import pytest

from .disk_node import (
    BOOT_MARGIN_S,
    DEPLOYMENT,
    READY_TIMEOUT_S,
    Credentials,
    Writer,
    boot,
    check_disk_after_cut,
    deployment_running_since,
    etcd_started_clean,
    power_cut,
    present,
    ready_after,
    require_disk_tools,
)

CUTS = 5
# profile -> its datastore: kine (SQLite) or etcd.
PROFILES = {"k3s-like": "kine", "k0s-like": "etcd", "talos-like": "etcd"}


@pytest.mark.slow
@pytest.mark.boot
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_power_cuts_lose_no_acknowledged_write(profile: str, tmp_path) -> None:
    require_disk_tools()
    disk = tmp_path / "node.img"
    target = f"distros/{profile}:initramfs"
    app = boot(target, disk, tmp_path / "console-0.log", "-disk-size", "4G")
    try:
        app.wait("the node Ready", app.node_ready, READY_TIMEOUT_S)
        console = app.console_text()
        assert "is empty: formatting it" in console and "the node's state persists" in console, console[-3000:]
        creds = Credentials(app.kubeconfig, tmp_path / "creds")
        app.kubectl("apply", "-f", "-", input=DEPLOYMENT)
        app.wait("the Deployment", lambda: app.rollout_done("keeper", 1), 15 * 60)
        rng = random.Random()
        report = []
        for cut in range(1, CUTS + 1):
            writer = Writer(creds, app.forwards[6443], f"cut{cut}")
            thread = writer.start()
            # Writing first, then a random moment while it writes.
            app.wait("the first acknowledged write", lambda: len(writer.acked) > 0, 120)
            time.sleep(rng.uniform(1, 25))
            cut_at = time.time()
            power_cut(app)
            writer.stop.set()
            thread.join(30)
            acked = list(writer.acked)
            disk_check = check_disk_after_cut(disk, tmp_path / "scratch", PROFILES[profile])

            app = boot(target, disk, tmp_path / f"console-{cut}.log")
            ready_s = ready_after(app, cut_at + BOOT_MARGIN_S)
            port = app.forwards[6443]
            # The first boot's credentials, against this boot.
            have = present(creds, port, f"cut{cut}")
            lost = [n for n in acked if n not in have]
            assert not lost, f"cut {cut}: {len(lost)} acknowledged writes lost: {lost[:20]}"
            wrong = {n: v for n, v in have.items() if v != str(n)}
            assert not wrong, f"cut {cut}: counters do not match their names: {wrong}"
            for earlier in range(1, cut):
                assert len(present(creds, port, f"cut{earlier}")) >= report[earlier - 1][1], f"cut {earlier}'s writes shrank"
            console = app.console_text()
            assert "is empty: formatting it" not in console, "the disk was formatted again"
            if PROFILES[profile] == "etcd":
                etcd_started_clean(console)
            app.wait("the Deployment's pods after the cut",
                     lambda: deployment_running_since(app, cut_at + BOOT_MARGIN_S), 15 * 60)
            report.append((cut, len(acked), len(have), writer.errors, round(ready_s), disk_check))
        print("\ncut, acknowledged, present, client errors, Ready s after QEMU start, disk check")
        for r in report:
            print(*r, sep=", ")
    finally:
        app.stop()
