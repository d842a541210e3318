"""Upgrade and rollback by image (issue #24, item 9): a node with a data disk boots image A
(`distros/<profile>:initramfs`), gets a Deployment and objects, and loses power; image B of
the same profile (`:initramfs-xz`, the flash image: another image file the boot loader could
pick) boots over the same disk with the same cluster identity (`-identity`) and finds every object, runs
the Deployment's pods again and takes new writes; then A boots again over that disk (a
rollback) and finds everything, the writes made under B included. Slow: two image builds
and three boots under TCG."""

from __future__ import annotations

import time

import pytest

from .disk_node import (
    BOOT_MARGIN_S,
    DATASTORES,
    DEPLOYMENT,
    READY_TIMEOUT_S,
    Credentials,
    boot,
    check_disk_after_cut,
    deployment_running_since,
    etcd_started_clean,
    power_cut,
    present,
    ready_after,
    require_disk_tools,
)


def _write(creds: Credentials, port: int, prefix: str, count: int) -> None:
    """Creates `count` ConfigMaps. A request without an answer (a loaded TCG machine: the
    apiserver may take longer than the client's timeout) is sent again; 409 then means the
    earlier one was committed (the test later reads every object back with its counter)."""
    for n in range(count):
        cm = {"metadata": {"name": f"{prefix}-{n}", "labels": {"k4s-test": prefix}}, "data": {"counter": str(n)}}
        last: Exception | None = None
        for attempt in range(5):
            try:
                status, body = creds.request(port, "POST", "/api/v1/namespaces/default/configmaps", cm, timeout=60)
            except OSError as e:  # timeouts, resets
                last = e
                time.sleep(5)
                continue
            assert status == 201 or (status == 409 and attempt > 0), body
            break
        else:
            raise AssertionError(f"{prefix}-{n}: no answer in 5 tries: {last}")


@pytest.mark.slow
@pytest.mark.boot
@pytest.mark.parametrize("profile", sorted(DATASTORES))
def test_upgrade_and_rollback_keep_the_cluster(profile: str, tmp_path) -> None:
    require_disk_tools()
    disk = tmp_path / "node.img"
    image_a, image_b = f"distros/{profile}:initramfs", f"distros/{profile}:initramfs-xz"
    # One cluster identity for both images, of this test only (not .k4s/clusters/<target>).
    identity = tmp_path / "identity"
    app = boot(image_a, disk, tmp_path / "console-a.log", "-identity", str(identity))
    try:
        app.wait("the node Ready on image A", app.node_ready, READY_TIMEOUT_S)
        assert app.kubeconfig.parent == identity
        creds = Credentials(app.kubeconfig, tmp_path / "creds")
        app.kubectl("apply", "-f", "-", input=DEPLOYMENT)
        app.wait("the Deployment on A", lambda: app.rollout_done("keeper", 1), 15 * 60)
        _write(creds, app.forwards[6443], "on-a", 20)
        uid = app.kubectl("get", "deployment", "keeper", "-o", "jsonpath={.metadata.uid}").stdout
        seen = []
        for step, (image, prefix) in enumerate([(image_b, "on-b"), (image_a, "on-a-again")], start=1):
            off_at = time.time()
            power_cut(app)
            check_disk_after_cut(disk, tmp_path / "scratch", DATASTORES[profile])
            app = boot(image, disk, tmp_path / f"console-{step}.log", "-identity", str(identity))
            ready_s = ready_after(app, off_at + BOOT_MARGIN_S)
            port = app.forwards[6443]
            assert "is empty: formatting it" not in app.console_text()
            if DATASTORES[profile] == "etcd":
                etcd_started_clean(app.console_text())
            for earlier in ["on-a", *seen]:
                assert sorted(present(creds, port, earlier)) == list(range(20)), f"{image}: {earlier}'s objects"
            assert app.kubectl("get", "deployment", "keeper", "-o", "jsonpath={.metadata.uid}").stdout == uid
            app.wait(f"the Deployment's pods on {image}",
                     lambda: deployment_running_since(app, off_at + BOOT_MARGIN_S), 15 * 60)
            _write(creds, port, prefix, 20)
            seen.append(prefix)
            print(f"\n{image}: Ready {ready_s:.0f} s after QEMU started, every object kept")
    finally:
        app.stop()
