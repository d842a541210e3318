"""Each appliance profile (kubesolo-like: one bridge; k3s-like: kine and flannel VXLAN;
talos-like: etcd and flannel) as its user meets it, in a 1 GiB VM under QEMU (TCG):
`./pants run distros/<profile>:initramfs` prints an admin kubeconfig; a stock
kubectl through the forwarded port sees the node Ready, runs a Deployment of 2
replicas without `nodeName` (the scheduler places them), reaches it through a
ClusterIP Service by its DNS name from another pod, through a NodePort from the host,
mounts a ConfigMap and a Secret, execs, reads logs and port-forwards; anonymous
requests and an unprivileged ServiceAccount are denied. Slow: a profile build and many
minutes of TCG."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .appliance_driver import Appliance, free_port
from .conftest import require_tool

# The profiles whose images boot as a node (distros/*/BUILD: uinit="k4s-node").
NODE_PROFILES = ["kubesolo-like", "k3s-like", "k0s-like", "talos-like"]
NODE_PORT = 30080
READY_TIMEOUT_S = 45 * 60

CLIENT_POD = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello-from-a-configmap}
---
apiVersion: v1
kind: Secret
metadata: {name: token}
stringData: {token: s3cr3t}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - name: client
    image: k4s.local/demo:v1
    command: [/bbin/sleep, "3600"]
    # containerd's default profile, compiled by the pure-Go runc (runc-seccomp-purego.patch).
    securityContext: {seccompProfile: {type: RuntimeDefault}}
    volumeMounts:
    - {name: settings, mountPath: /cfg}
    - {name: token, mountPath: /secret, readOnly: true}
  volumes:
  - {name: settings, configMap: {name: settings}}
  - {name: token, secret: {secretName: token}}
"""


@pytest.mark.slow
@pytest.mark.boot
@pytest.mark.parametrize("profile", NODE_PROFILES)
def test_appliance_runs_standard_workloads(profile: str, tmp_path: Path) -> None:
    require_tool("qemu-system-x86_64")
    vm = Appliance(f"distros/{profile}:initramfs", tmp_path / "console.log", forwards={NODE_PORT: free_port()})
    try:
        vm.start()
        assert vm.kubeconfig and vm.kubeconfig.stat().st_mode & 0o077 == 0, "kubeconfig must be 0600"
        t_ready = vm.wait("node Ready", vm.node_ready, READY_TIMEOUT_S)

        # Scheduling: a Deployment without nodeName.
        vm.kubectl("create", "deployment", "web", "--image=k4s.local/demo:v1", "--replicas=2", "--port=8080")
        t_deploy = vm.wait("2 web replicas ready", lambda: vm.rollout_done("web", 2), 20 * 60)
        pods = json.loads(vm.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
        assert len(pods) == 2 and all(p["spec"]["nodeName"] for p in pods)

        # Services: ClusterIP by DNS name from another pod, NodePort from the host.
        vm.kubectl("expose", "deployment", "web", "--port=80", "--target-port=8080")
        vm.kubectl("create", "service", "nodeport", "web-np", "--tcp=80:8080", f"--node-port={NODE_PORT}")
        vm.kubectl("patch", "service", "web-np", "-p", '{"spec":{"selector":{"app":"web"}}}')
        vm.kubectl("apply", "-f", "-", input=CLIENT_POD)
        vm.wait("client pod Running", lambda: vm.kubectl(
            "get", "pod", "client", "-o", "jsonpath={.status.phase}").stdout == "Running", 10 * 60)

        def fetch_by_name() -> bool:
            r = vm.kubectl("exec", "client", "--", "wget", "-O", "-",
                           "http://web.default.svc.cluster.local/etc/hostname", check=False, timeout=90)
            return r.returncode == 0 and r.stdout.strip().startswith("web-")
        t_svc = vm.wait("web by DNS name from the client pod", fetch_by_name, 10 * 60)

        host_port = vm.forwards[NODE_PORT]
        def fetch_node_port() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/etc/hostname", timeout=20) as r:
                return r.read().decode().startswith("web-")
        vm.wait("the NodePort from the host", lambda: _quiet(fetch_node_port), 5 * 60)

        # ConfigMap and Secret volumes, exec.
        assert vm.kubectl("exec", "client", "--", "cat", "/cfg/greeting").stdout == "hello-from-a-configmap"
        assert vm.kubectl("exec", "client", "--", "cat", "/secret/token").stdout == "s3cr3t"

        status = vm.kubectl("exec", "client", "--", "grep", "^Seccomp:", "/proc/self/status").stdout
        assert status.split() == ["Seccomp:", "2"], status  # 2: filter mode

        # Logs and port-forward.
        web_pod = pods[0]["metadata"]["name"]
        vm.kubectl("logs", web_pod)  # srvfiles logs little; the call itself must work
        local = free_port()
        pf = subprocess.Popen(
            [*_kubectl_argv(vm), "port-forward", f"pod/{web_pod}", f"{local}:8080"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            def via_port_forward() -> bool:
                with urllib.request.urlopen(f"http://127.0.0.1:{local}/etc/hostname", timeout=20) as r:
                    return r.read().decode().strip() == web_pod
            vm.wait("port-forward", lambda: _quiet(via_port_forward), 3 * 60)
        finally:
            pf.kill()
            pf.wait()

        # Denied: anonymous requests, and a ServiceAccount with no roles.
        api = f"https://127.0.0.1:{vm.forwards[6443]}"
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        try:
            urllib.request.urlopen(f"{api}/api/v1/namespaces/default/secrets", context=ctx, timeout=20)
            raise AssertionError("an anonymous request was answered")
        except urllib.error.HTTPError as e:
            assert e.code in (401, 403), e
        vm.kubectl("create", "serviceaccount", "nobody")
        token = vm.kubectl("create", "token", "nobody").stdout.strip()
        req = urllib.request.Request(
            f"{api}/api/v1/namespaces/default/secrets", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            urllib.request.urlopen(req, context=ctx, timeout=20)
            raise AssertionError("a ServiceAccount without roles could list secrets")
        except urllib.error.HTTPError as e:
            assert e.code == 403, e

        mem = vm.mem_available_at_ready()
        print(
            f"\n{profile} appliance in {vm.memory_mib} MiB (TCG): node Ready {t_ready:.0f} s after QEMU "
            f"started, 2 replicas ready {t_deploy:.0f} s, Service by DNS name {t_svc:.0f} s; "
            f"MemAvailable at Ready {mem} MiB"
        )
    finally:
        vm.stop()
        print("--- console tail ---\n" + vm.console_text()[-8000:])


def _kubectl_argv(vm: Appliance) -> list[str]:
    from .appliance_driver import stock_kubectl

    return [stock_kubectl(), "--kubeconfig", str(vm.kubeconfig)]


def _quiet(check) -> bool:
    try:
        return check()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.boot
@pytest.mark.parametrize("profile", NODE_PROFILES)
def test_flash_image_is_the_node(profile: str, tmp_path: Path) -> None:
    """The xz-compressed image (the flash artifact) boots the same node."""
    require_tool("qemu-system-x86_64")
    vm = Appliance(f"distros/{profile}:initramfs-xz", tmp_path / "console.log")
    try:
        vm.start()
        t_ready = vm.wait("node Ready", vm.node_ready, READY_TIMEOUT_S)
        vm.kubectl("create", "deployment", "web", "--image=k4s.local/demo:v1", "--port=8080")
        t_deploy = vm.wait("the Deployment running", lambda: vm.rollout_done("web", 1), 20 * 60)
        print(f"\n{profile} xz appliance in {vm.memory_mib} MiB: Ready {t_ready:.0f} s, Deployment running {t_deploy:.0f} s")
    finally:
        vm.stop()
        print("--- console tail ---\n" + vm.console_text()[-4000:])
