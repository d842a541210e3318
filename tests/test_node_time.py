"""Time on the appliance (issue #24 items 6 and 7), as its user meets it on the kine
profiles (k3s-like, kubesolo-like) and the etcd one (talos-like):

- a node whose RTC is years off (QEMU `-rtc base=2020-01-01`) sets its clock from an NTP
  server that the test runs on the host, before it makes its certificates: the node
  becomes Ready and a stock kubectl with the host's admin kubeconfig works. The server is
  on the node's LAN (`-lan`, `k4s.ntp=192.168.76.1`): QEMU's user network is
  `restrict=on` (k4stool vm), through which the guest reaches nothing on the host;
- with `k4s.cert-lifetime=10m`, over more than two lifetimes the node renews its leaf
  certificates in place while kubectl (get, exec and logs, which go through the kubelet's
  serving certificate) keeps working, the apiserver's certificate NotAfter moves, and the
  node stays Ready (the kubelet's client certificate); a join token minted with the
  README's kubectl command authenticates until its `expiration`, then no more.

Slow: a profile build and up to an hour of TCG."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import socket
import ssl
import string
import struct
import threading
import time
from pathlib import Path

import pytest

from .appliance_driver import Appliance
from .conftest import require_tool

PROFILES = ["k3s-like", "kubesolo-like", "talos-like"]
READY_TIMEOUT_S = 45 * 60
NTP_EPOCH = 2208988800  # seconds from 1900 to 1970


def ntp_answer(request: bytes, received: float) -> bytes | None:
    """An SNTP server's answer (RFC 4330; stratum 2, the host's clock) to a client's
    request, or None if it is not one."""
    if len(request) < 48 or request[0] & 7 != 3:
        return None

    def ts(t: float) -> bytes:
        return struct.pack("!II", (int(t) + NTP_EPOCH) & 0xFFFFFFFF, int((t - int(t)) * 2**32))

    head = bytes([(0 << 6) | (4 << 3) | 4, 2, 6, 0xEC]) + b"\0" * 8 + b"LOCL"
    return head + ts(received) + request[40:48] + ts(received) + ts(time.time())


def ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class LanNTPServer:
    """An NTP server at 192.168.76.1 on the node's LAN: the other end of `k4stool vm
    -lan` (QEMU's socket netdev, Ethernet frames in UDP datagrams on 127.0.0.1). The
    VM's user network is `restrict=on`, so nothing on the host is reachable through it;
    this answers ARP for its address and NTP on UDP port 123, nothing else."""

    MAC = bytes.fromhex("525400123456")
    IP = bytes([192, 168, 76, 1])

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            self.vm_port = probe.getsockname()[1]  # QEMU's end
        self.queries = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                frame, addr = self.sock.recvfrom(2048)
            except OSError:
                return
            received = time.time()
            reply = self._reply(frame, received)
            if reply:
                self.sock.sendto(reply, addr)

    def _reply(self, frame: bytes, received: float) -> bytes | None:
        if len(frame) < 42:
            return None
        peer_mac, ethertype = frame[6:12], frame[12:14]
        if ethertype == b"\x08\x06" and frame[20:22] == b"\x00\x01" and frame[38:42] == self.IP:
            # ARP request for our address: reply.
            arp = frame[14:20] + b"\x00\x02" + self.MAC + self.IP + frame[22:28] + frame[28:32]
            return peer_mac + self.MAC + b"\x08\x06" + arp
        if ethertype != b"\x08\x00":
            return None
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17 or ip[16:20] != self.IP or len(ip) < ihl + 8:
            return None
        src_port, dst_port = struct.unpack("!HH", ip[ihl:ihl + 4])
        if dst_port != 123:
            return None
        answer = ntp_answer(ip[ihl + 8:], received)
        if answer is None:
            return None
        self.queries += 1
        udp = struct.pack("!HHHH", 123, src_port, 8 + len(answer), 0) + answer  # no UDP checksum (IPv4)
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, self.IP, ip[12:16])
        header = header[:10] + struct.pack("!H", ip_checksum(header)) + header[12:]
        return peer_mac + self.MAC + b"\x08\x00" + header + udp

    def close(self) -> None:
        self.sock.close()


def clock_skew(vm: Appliance) -> float:
    """Seconds between the node's clock and the host's: the node's Lease, which its
    kubelet renews every 10 s with the node's time (a stale Lease also means that the
    kubelet's client certificate no longer works)."""
    name = json.loads(vm.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
    renew = vm.kubectl("-n", "kube-node-lease", "get", "lease", name, "-o", "jsonpath={.spec.renewTime}").stdout
    renewed = dt.datetime.fromisoformat(renew.replace("Z", "+00:00"))
    return (renewed - dt.datetime.now(dt.timezone.utc)).total_seconds()


@pytest.mark.slow
@pytest.mark.boot
@pytest.mark.parametrize("profile", PROFILES)
def test_wrong_rtc_is_corrected_by_ntp(profile: str, tmp_path: Path) -> None:
    require_tool("qemu-system-x86_64")
    ntp = LanNTPServer()
    vm = Appliance(f"distros/{profile}:initramfs", tmp_path / "console.log", extra_vm_args=(
        "-machine-arg", "-rtc", "-machine-arg", "base=2020-01-01T00:00:00",
        "-lan", f"{ntp.vm_port}:{ntp.port}",
        "-append", "k4s.lan=eth1,192.168.76.2/24 k4s.ntp=192.168.76.1",
    ))
    try:
        vm.start()
        t_ready = vm.wait("node Ready", vm.node_ready, READY_TIMEOUT_S)
        console = vm.console_text()
        # The machine really started in 2020 (the kernel read QEMU's RTC) ...
        assert re.search(r"clock: 2020-01-01T\S+, from the RTC", console), console[-3000:]
        # ... and k4s-node stepped it by the years since, from the test's server.
        m = re.search(r"clock synchronised with 192\.168\.76\.1:123: stepped by (\S+)", console)
        assert m, console[-3000:]
        assert ntp.queries >= 1
        # Before the PKI: the host's kubeconfig (signed now) works, and the node's own
        # clock is the host's (its Lease is renewed every 10 s).
        # (Retried: on a loaded machine one kubectl call may time out in its TLS handshake.)
        vm.wait("the node's clock within 60 s of the host's", lambda: abs(clock_skew(vm)) < 60, 10 * 60)
        print(f"Ready after {t_ready:.0f} s; clock stepped by {m.group(1)}; {ntp.queries} NTP queries")
    finally:
        vm.stop()
        ntp.close()


CERT_LIFETIME_S = 10 * 60



def apiserver_not_after(vm: Appliance, ca_file: Path) -> dt.datetime:
    """The apiserver's serving certificate's NotAfter, over a TLS connection that
    verifies it with the cluster CA."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", vm.forwards[6443]), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            not_after = tls.getpeercert()["notAfter"]
    return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), dt.timezone.utc)


def mint_join_token(vm: Appliance, ttl_s: int) -> str:
    """README "Join tokens": a bootstrap token Secret that expires, with stock kubectl."""
    alphabet = string.ascii_lowercase + string.digits
    tid = "".join(secrets.choice(alphabet) for _ in range(6))
    tsecret = "".join(secrets.choice(alphabet) for _ in range(16))
    expiration = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=ttl_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
    vm.kubectl(
        "-n", "kube-system", "create", "secret", "generic", f"bootstrap-token-{tid}",
        "--type=bootstrap.kubernetes.io/token", f"--from-literal=token-id={tid}",
        f"--from-literal=token-secret={tsecret}", "--from-literal=usage-bootstrap-authentication=true",
        "--from-literal=auth-extra-groups=system:bootstrappers:k4s", f"--from-literal=expiration={expiration}",
    )
    return f"{tid}.{tsecret}"


def token_user(vm: Appliance, token: str) -> str:
    """Who the apiserver says the token is (`kubectl auth whoami`), or its error."""
    server = vm.kubectl("config", "view", "--raw", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    ca = vm.kubectl("config", "view", "--raw", "-o",
                    "jsonpath={.clusters[0].cluster.certificate-authority-data}").stdout
    cfg = vm.kubeconfig.with_name("token.kubeconfig")
    cfg.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
    }))
    cfg.chmod(0o600)
    saved, vm.kubeconfig = vm.kubeconfig, cfg
    try:
        r = vm.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", check=False)
    finally:
        vm.kubeconfig = saved
        cfg.unlink()
    return r.stdout.strip() if r.returncode == 0 else "error: " + r.stderr.strip()


@pytest.mark.slow
@pytest.mark.boot
@pytest.mark.parametrize("profile", PROFILES)
def test_certificates_renew_while_clients_work(profile: str, tmp_path: Path) -> None:
    require_tool("qemu-system-x86_64")
    vm = Appliance(f"distros/{profile}:initramfs", tmp_path / "console.log",
                   extra_vm_args=("-append", "k4s.cert-lifetime=10m"))
    try:
        vm.start()
        vm.wait("node Ready", vm.node_ready, READY_TIMEOUT_S)
        ca_data = vm.kubectl("config", "view", "--raw", "-o",
                             "jsonpath={.clusters[0].cluster.certificate-authority-data}").stdout
        ca_file = tmp_path / "ca.crt"
        ca_file.write_bytes(base64.b64decode(ca_data))

        # The server's join token Secret expires (-join-token-ttl, default 24 h).
        secrets_list = json.loads(vm.kubectl("-n", "kube-system", "get", "secrets", "-o", "json",
                                             "--field-selector=type=bootstrap.kubernetes.io/token").stdout)["items"]
        assert secrets_list, "the server made no bootstrap token Secret"
        exp = base64.b64decode(secrets_list[0]["data"]["expiration"]).decode()
        left = (dt.datetime.fromisoformat(exp.replace("Z", "+00:00")) - dt.datetime.now(dt.timezone.utc)).total_seconds()
        assert 23 * 3600 < left <= 24 * 3600, exp

        vm.kubectl("run", "client", "--image=k4s.local/demo:v1", "--command", "--", "/bbin/sleep", "7200")
        vm.wait("client pod Running", lambda: vm.kubectl(
            "get", "pod", "client", "-o", "jsonpath={.status.phase}").stdout == "Running", 15 * 60)

        token = mint_join_token(vm, ttl_s=120)
        token_id = token.split(".")[0]
        assert token_user(vm, token) == f"system:bootstrap:{token_id}"
        token_expires = time.monotonic() + 120

        first = apiserver_not_after(vm, ca_file)
        seen = [first]
        failures: list[str] = []
        token_after_expiry = None

        def probe(name: str, *args: str) -> None:
            # One retry: a single TCG hiccup is not a broken certificate.
            for attempt in range(2):
                r = vm.kubectl(*args, check=False, timeout=150)
                if r.returncode == 0:
                    return
                time.sleep(5)
            failures.append(f"{time.strftime('%H:%M:%S')} {name}: {r.stderr.strip()[-300:]}")

        # Until the first certificates have been expired for a lifetime (two lifetimes).
        deadline = first.timestamp() + CERT_LIFETIME_S + 60
        while time.time() < deadline:
            probe("get nodes", "get", "nodes")
            probe("exec", "exec", "client", "--", "/bbin/true")
            probe("logs", "logs", "client")
            if not vm.node_ready():
                failures.append(f"{time.strftime('%H:%M:%S')} node not Ready")
            na = apiserver_not_after(vm, ca_file)
            if na != seen[-1]:
                seen.append(na)
            if token_after_expiry is None and time.monotonic() > token_expires + 30:
                token_after_expiry = token_user(vm, token)
            time.sleep(20)

        renewals = re.findall(r"certificates renewed: \d+ leaves valid until (\S+)", vm.console_text())
        print(f"apiserver NotAfter: {[s.isoformat() for s in seen]}; renewals on the console: {renewals}")
        assert not failures, "\n".join(failures)
        assert len(seen) >= 3, f"the apiserver's certificate was renewed {len(seen) - 1} times in two lifetimes"
        assert all(b > a for a, b in zip(seen, seen[1:])), seen
        assert len(renewals) >= 2
        # The kubelet's own client certificate is renewed too: its Lease is fresh.
        vm.wait("a fresh node Lease", lambda: abs(clock_skew(vm)) < 60, 5 * 60)
        assert token_after_expiry is not None and token_after_expiry.startswith("error:"), token_after_expiry
    finally:
        vm.stop()
