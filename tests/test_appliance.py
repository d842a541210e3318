"""The kubesolo-like appliance boots under QEMU (TCG), its node supervisor starts the
components, and from the host, through a forwarded port on 127.0.0.1, the apiserver
answers /readyz, the node reports Ready, and a pod made from the image's own bb runs
to completion. Slow: it needs the kubesolo-like build and minutes of TCG."""

from __future__ import annotations

import glob
import json
import re
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import REPO, fresh_dist, require_tool, run_pants
from .remote_cache import free_port

PKI = REPO / "tests" / "appliance" / "pki"
NODE = "k4s-node"
READY_TIMEOUT_S = 45 * 60


class Api:
    def __init__(self, port: int) -> None:
        self.base = f"https://127.0.0.1:{port}"
        self.ctx = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
        self.ctx.check_hostname = False  # the serving cert names 127.0.0.1, not the forward
        self.ctx.load_cert_chain(PKI / "admin.crt", PKI / "admin.key")

    def call(self, path: str, method: str = "GET", body: dict | None = None) -> tuple[int, str]:
        req = urllib.request.Request(
            self.base + path, method=method, data=json.dumps(body).encode() if body else None,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)


def wait(what: str, deadline: float, check) -> float:
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.boot
def test_appliance_reaches_ready_and_runs_a_pod(tmp_path: Path) -> None:
    qemu = require_tool("qemu-system-x86_64")
    dist = fresh_dist("appliance")
    r = run_pants(f"--pants-distdir={dist}", "package", "tests/appliance:initramfs", timeout=4 * 3600)
    assert r.returncode == 0, r.output
    image = dist / "tests.appliance" / "initramfs.cpio"
    kernel = sorted(glob.glob("/boot/vmlinuz-*"))[-1]
    port = free_port()
    console = tmp_path / "console.log"
    start = time.monotonic()
    vm = subprocess.Popen(
        [qemu, "-machine", "q35", "-accel", "tcg", "-m", "4096", "-smp", "2", "-nographic",
         "-no-reboot", "-kernel", kernel, "-initrd", str(image),
         "-append", "console=ttyS0 panic=-1 cgroup_no_v1=all",
         "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:6443",
         "-device", "virtio-net-pci,netdev=n0"],
        stdin=subprocess.DEVNULL, stdout=console.open("wb"), stderr=subprocess.STDOUT,
    )
    api = Api(port)
    deadline = start + READY_TIMEOUT_S
    try:
        t_readyz = wait("/readyz", deadline, lambda: api.call("/readyz") == (200, "ok"))

        def node_ready() -> bool:
            code, body = api.call(f"/api/v1/nodes/{NODE}")
            if code != 200:
                return False
            conds = json.loads(body)["status"].get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

        t_ready = wait("node Ready", deadline, node_ready)

        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {
                "nodeName": NODE,  # KubeSolo runs no scheduler
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "hello", "image": "k4s.local/bb:v1", "imagePullPolicy": "Never",
                        "command": ["/bbin/bb", "echo", "hello from a k4s pod"],
                    },
                    {
                        # The containerd default profile, compiled by the pure-Go runc
                        # (distros/patches/runc-seccomp-purego.patch).
                        "name": "seccomp", "image": "k4s.local/bb:v1", "imagePullPolicy": "Never",
                        "command": ["/bbin/bb", "grep", "^Seccomp", "/proc/self/status"],
                        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    },
                ],
            },
        }
        code, body = api.call("/api/v1/namespaces/default/pods", "POST", pod)
        assert code == 201, body

        def pod_done() -> bool:
            code, body = api.call("/api/v1/namespaces/default/pods/hello")
            return code == 200 and json.loads(body)["status"].get("phase") in ("Succeeded", "Failed")

        t_pod = wait("pod to finish", deadline, pod_done)
        code, body = api.call("/api/v1/namespaces/default/pods/hello")
        assert json.loads(body)["status"]["phase"] == "Succeeded", body
        code, logs = api.call("/api/v1/namespaces/default/pods/hello/log?container=hello")
        assert code == 200 and "hello from a k4s pod" in logs, logs
        code, logs = api.call("/api/v1/namespaces/default/pods/hello/log?container=seccomp")
        assert code == 200 and re.search(r"^Seccomp:\s+2$", logs, re.M), logs  # 2: filter mode
        print(
            f"\nappliance ({image.stat().st_size:,} bytes cpio, TCG): /readyz after "
            f"{t_readyz - start:.0f} s, node Ready after {t_ready - start:.0f} s, pod done "
            f"after {t_pod - start:.0f} s"
        )
    finally:
        vm.kill()
        vm.wait()
        tail = console.read_bytes()[-6000:].decode(errors="replace")
        print("--- console tail ---\n" + tail)
