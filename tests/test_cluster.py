"""Two nodes as one cluster, in two QEMU VMs (TCG) on a private network between them (a
UDP socket netdev on 127.0.0.1, `k4stool vm -lan`): the server (`distros/<profile>:initramfs`;
k3s-like with kine, k0s-like and talos-like with etcd) and a worker (k3s-like
`:initramfs-agent`, k0s-like and talos-like `:initramfs-worker`) that joins it with the server's bootstrap token and CA
certificate (`-join`), as `k3s agent` does; talos-like machines get their settings and
credentials as Talos-style machine configs (`-machine-config controlplane|worker`). A stock
kubectl sees both nodes Ready; a pod on the server reaches, by its DNS name, a Service
whose pods run on the agent: flannel's VXLAN between the nodes (k0s-like: kube-router's
routes, learnt over iBGP), kube-proxy on both, the cluster DNS on the server; then the
agent reboots diskless and rejoins under the same node name, its pods running again. Slow: a profile build and two VMs under TCG."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from .appliance_driver import Appliance
from .conftest import require_tool
from .disk_node import BOOT_MARGIN_S, deployment_running_since, ready_after

LAN = "192.168.76"

WORKLOAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {kubernetes.io/hostname: agent-1}
      containers:
      - {name: web, image: "k4s.local/demo:v1", ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeSelector: {kubernetes.io/hostname: server}
  containers:
  - {name: client, image: "k4s.local/demo:v1", command: [/bbin/sleep, "3600"]}
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready_nodes(vm: Appliance) -> set[str]:
    r = vm.kubectl("get", "nodes", "-o", "json", check=False)
    if r.returncode != 0:
        return set()
    return {
        n["metadata"]["name"]
        for n in json.loads(r.stdout)["items"]
        for c in n["status"].get("conditions", [])
        if c["type"] == "Ready" and c["status"] == "True"
    }


# profile -> its worker image (k3s: an agent; Talos: a worker).
WORKERS = {"k3s-like": "initramfs-agent", "k0s-like": "initramfs-worker", "talos-like": "initramfs-worker"}


@pytest.mark.slow
@pytest.mark.boot
@pytest.mark.parametrize("profile", sorted(WORKERS))
def test_agent_joins_and_services_cross_nodes(profile: str, tmp_path: Path) -> None:
    require_tool("qemu-system-x86_64")
    p_server, p_agent = free_udp_port(), free_udp_port()
    # k3s-like: the node's settings as kernel arguments; talos-like: a Talos-style machine
    # config per machine (controlplane.yaml, worker.yaml) handed over at boot.
    talos = profile == "talos-like"
    server_settings = (
        ("-machine-config", "controlplane", "-machine-hostname", "server", "-machine-lan", f"eth1,{LAN}.1/24")
        if talos else ("-append", f"k4s.lan=eth1,{LAN}.1/24 k4s.node-name=server")
    )
    agent_settings = (
        ("-machine-config", "worker", "-machine-hostname", "agent-1", "-machine-lan", f"eth1,{LAN}.2/24")
        if talos else ("-append", f"k4s.lan=eth1,{LAN}.2/24 k4s.node-name=agent-1")
    )
    server = Appliance(
        f"distros/{profile}:initramfs", tmp_path / "server.log",
        extra_vm_args=("-lan", f"{p_server}:{p_agent}", *server_settings),
    )
    agent = Appliance(
        f"distros/{profile}:{WORKERS[profile]}", tmp_path / "agent.log", expect_kubeconfig=False,
    )
    try:
        server.start()
        assert server.kubeconfig
        t_server = server.wait("the server Ready", lambda: "server" in ready_nodes(server), 45 * 60)
        agent.extra_vm_args = (
            "-lan", f"{p_agent}:{p_server}", *agent_settings,
            "-join", str(server.kubeconfig.parent), "-join-server", f"https://{LAN}.1:6443",
        )
        agent.start()
        if talos:
            assert "machine config: a controlplane" in server.console_text()
        t_agent = agent.wait("the agent Ready", lambda: ready_nodes(server) == {"server", "agent-1"}, 30 * 60)
        if talos:
            assert "machine config: a worker" in agent.console_text()

        # The agent holds no CA key and bootstrapped its credentials: its node's
        # client certificate was issued through a CSR.
        csrs = json.loads(server.kubectl("get", "csr", "-o", "json").stdout)["items"]
        signers = {(c["spec"]["signerName"], c["spec"]["username"]) for c in csrs}
        assert any(s == "kubernetes.io/kube-apiserver-client-kubelet" for s, _ in signers), signers
        assert ("kubernetes.io/kubelet-serving", "system:node:agent-1") in signers, signers

        server.kubectl("apply", "-f", "-", input=WORKLOAD)
        server.wait("web on the agent", lambda: server.rollout_done("web", 2), 20 * 60)
        server.wait("client on the server", lambda: server.kubectl(
            "get", "pod", "client", "-o", "jsonpath={.status.phase}").stdout == "Running", 10 * 60)
        pods = json.loads(server.kubectl("get", "pods", "-o", "json").stdout)["items"]
        where = {p["metadata"]["name"]: (p["spec"]["nodeName"], p["status"].get("podIP", "")) for p in pods}
        web = [v for k, v in where.items() if k.startswith("web-")]
        assert web and all(node == "agent-1" for node, _ in web), where
        assert where["client"][0] == "server", where
        # Each node's pods come from its own /24 of the cluster network (flannel, kube-router).
        assert where["client"][1].rsplit(".", 1)[0] != web[0][1].rsplit(".", 1)[0], where

        def fetch_by_name() -> bool:
            r = server.kubectl("exec", "client", "--", "wget", "-O", "-",
                               "http://web.default.svc.cluster.local/etc/hostname", check=False, timeout=90)
            return r.returncode == 0 and r.stdout.strip().startswith("web-")
        t_svc = server.wait("web (on the agent) by DNS name from the client (on the server)", fetch_by_name, 10 * 60)
        # kubectl exec and logs reach the agent's kubelet (its serving certificate).
        web_pod = next(k for k in where if k.startswith("web-"))
        assert server.kubectl("exec", web_pod, "--", "cat", "/etc/hostname").stdout.strip() == web_pod
        print(f"\ntwo-node {profile} cluster (TCG, {server.memory_mib} + {agent.memory_mib} MiB): server Ready "
              f"{t_server:.0f} s, agent Ready "
              f"{t_agent:.0f} s after its QEMU started, cross-node Service by DNS name at {t_svc:.0f} s")

        # A diskless agent that reboots (its VM killed and booted again: its RAM, with its
        # kubelet's credentials, is gone) joins again under the same node name, with the
        # same join material, and its pods run again (containers started after the reboot).
        off_at = time.time()
        agent.stop()
        agent = Appliance(f"distros/{profile}:{WORKERS[profile]}", tmp_path / "agent-rebooted.log",
                          expect_kubeconfig=False, extra_vm_args=agent.extra_vm_args)
        agent.start()
        t_rejoin = ready_after(server, off_at + BOOT_MARGIN_S, 30 * 60, node="agent-1")
        t_pods = server.wait("web's pods on the rebooted agent", lambda: deployment_running_since(
            server, off_at + BOOT_MARGIN_S, "web", node="agent-1"), 20 * 60)
        assert ready_nodes(server) == {"server", "agent-1"}
        print(f"agent rebooted diskless: Ready again as agent-1 (server clock) {t_rejoin:.0f} s, "
              f"web's pods running on it again {t_pods:.0f} s after the server's QEMU started")
    finally:
        agent.stop()
        server.stop()
        print("--- server console tail ---\n" + server.console_text()[-6000:])
        if agent.console.exists():
            print("--- agent console tail ---\n" + agent.console_text()[-6000:])
