"""A node with a data disk, as the slow tests of persistence drive it (test_power_cut.py,
test_upgrade.py): `pants run <target> -- -disk <image>` through tests/appliance_driver.py,
a client that writes ConfigMaps with a counter as fast as the apiserver acknowledges them,
a power cut (QEMU SIGKILLed: the guest's page cache and anything not yet written to the
image is lost), and the checks made on the image between boots: ext4 consistent after its
journal is replayed (e2fsck on a copy) and kine's SQLite database passing SQLite's own
`PRAGMA integrity_check` (read out of the ext4 with debugfs)."""

from __future__ import annotations

import base64
import calendar
import http.client
import json
import os
import shutil
import signal
import sqlite3
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .appliance_driver import Appliance
from .conftest import require_tool

# The node profiles with a datastore, by datastore: kine (SQLite) and etcd.
DATASTORES = {"k3s-like": "kine", "kubesolo-like": "kine", "talos-like": "etcd"}

READY_TIMEOUT_S = 45 * 60  # the first boot builds the image (pants run)
REBOOT_READY_S = 15 * 60  # a boot over a disk under TCG on a busy machine
# A boot takes over a minute before any container starts: what started later than a cut
# plus this is of the new boot, whatever the skew of the guest's clock (RTC) by seconds.
BOOT_MARGIN_S = 20

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: keeper}
spec:
  replicas: 1
  selector: {matchLabels: {app: keeper}}
  template:
    metadata: {labels: {app: keeper}}
    spec:
      containers:
      - {name: web, image: "k4s.local/demo:v1", ports: [{containerPort: 8080}]}
"""


def require_disk_tools() -> None:
    """QEMU, and e2fsprogs for the checks of the image between boots."""
    for tool in ("qemu-system-x86_64", "e2fsck", "debugfs"):
        require_tool(tool)


def e2fs_tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if not found:
        raise RuntimeError(f"`{name}` is not installed (Debian: apt-get install e2fsprogs)")
    return found


class Credentials:
    """The admin kubeconfig's CA and client certificate (as first issued), usable against
    any later boot's forwarded port."""

    def __init__(self, kubeconfig: Path, scratch: Path):
        cfg = yaml.safe_load(kubeconfig.read_text())
        cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
        self.dir = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        for name, key in (("ca.crt", "certificate-authority-data"), ("client.crt", "client-certificate-data"),
                          ("client.key", "client-key-data")):
            (scratch / name).write_bytes(base64.b64decode(cluster.get(key) or user[key]))
        os.chmod(scratch / "client.key", 0o600)
        self.kubeconfig_text = kubeconfig.read_text()

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.dir / "ca.crt"))
        ctx.check_hostname = False  # the server certificate names the node, reached via 127.0.0.1:<port>
        ctx.load_cert_chain(str(self.dir / "client.crt"), str(self.dir / "client.key"))
        return ctx

    def request(self, port: int, method: str, path: str, body: dict | None = None, timeout: float = 30):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=self.context(), timeout=timeout)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"{}")
        finally:
            conn.close()


@dataclass
class Writer:
    """Creates ConfigMaps `<prefix>-<n>` (data.counter = n) one after the other on one
    connection, as fast as the apiserver answers; `acked` holds every n it answered 201."""

    creds: Credentials
    port: int
    prefix: str
    acked: list[int] = field(default_factory=list)
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n, conn = 0, None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.creds.context(), timeout=10)
                body = {"metadata": {"name": f"{self.prefix}-{n}", "labels": {"k4s-test": self.prefix}},
                        "data": {"counter": str(n)}}
                conn.request("POST", "/api/v1/namespaces/default/configmaps", body=json.dumps(body),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 201:
                    self.acked.append(n)
                    n += 1
                elif resp.status == 409:  # created, but the answer was lost: not counted as acknowledged
                    n += 1
                else:
                    self.errors += 1
                    time.sleep(0.2)
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn = None
                time.sleep(0.2)

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.run, daemon=True)
        t.start()
        return t


def boot(target: str, disk: Path, console: Path, *extra: str) -> Appliance:
    app = Appliance(target, console, extra_vm_args=("-disk", str(disk), *extra))
    app.start()
    return app


def power_cut(app: Appliance) -> None:
    """SIGKILL QEMU (the guest loses power), then its `pants run`."""
    pid = int(app.pidfile.read_text().strip())
    os.kill(pid, signal.SIGKILL)
    app.stop()


def present(creds: Credentials, port: int, prefix: str) -> dict[int, str]:
    """The ConfigMaps of a writer that the apiserver has: n -> data.counter."""
    status, body = creds.request(port, "GET", f"/api/v1/namespaces/default/configmaps?labelSelector=k4s-test%3D{prefix}")
    assert status == 200, body
    out = {}
    for item in body["items"]:
        out[int(item["metadata"]["name"].rsplit("-", 1)[1])] = item["data"]["counter"]
    return out


def check_disk_after_cut(disk: Path, scratch: Path, datastore: str = "kine") -> str:
    """On a copy of the image: e2fsck replays ext4's journal and then finds the filesystem
    clean; with kine, SQLite opens its database (with its WAL) and its integrity_check says
    ok (etcd checks its own WAL and backend when it starts: etcd_started_clean). Returns a
    one-line summary."""
    scratch.mkdir(parents=True, exist_ok=True)
    copy = scratch / "copy.img"
    subprocess.run(["cp", "--sparse=always", str(disk), str(copy)], check=True)
    try:
        replay = subprocess.run([e2fs_tool("e2fsck"), "-fy", str(copy)], capture_output=True, text=True)
        # 0: clean, 1: corrected (the journal replayed); anything else is damage.
        assert replay.returncode in (0, 1), f"e2fsck -fy after the cut: {replay.returncode}\n{replay.stdout}{replay.stderr}"
        again = subprocess.run([e2fs_tool("e2fsck"), "-fn", str(copy)], capture_output=True, text=True)
        assert again.returncode == 0, f"e2fsck -fn after the journal replay:\n{again.stdout}{again.stderr}"
        if datastore == "etcd":
            return f"e2fsck rc {replay.returncode} then clean"
        db = scratch / "state.db"
        for f in ("state.db", "state.db-wal"):
            (scratch / f).unlink(missing_ok=True)
            subprocess.run([e2fs_tool("debugfs"), "-R", f"dump /kine/{f} {scratch / f}", str(copy)],
                           capture_output=True, check=True)
        assert db.exists() and db.stat().st_size > 0, "kine/state.db is not on the disk"
        con = sqlite3.connect(str(db))
        try:
            result = [r[0] for r in con.execute("PRAGMA integrity_check")]
            rows = con.execute("SELECT COUNT(*) FROM kine").fetchone()[0]
        finally:
            con.close()
        assert result == ["ok"], f"SQLite integrity_check: {result}"
        return f"e2fsck rc {replay.returncode} then clean; sqlite integrity_check ok, {rows} kine rows"
    finally:
        for f in scratch.iterdir():
            f.unlink()


def _since(stamp: str | None, t: float) -> bool:
    """An RFC 3339 time of the guest is after t (host epoch seconds); the guest's clock is
    QEMU's RTC, the host's time."""
    if not stamp:
        return False
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) > t


def ready_after(app: Appliance, t: float, timeout: float = REBOOT_READY_S, node: str | None = None) -> float:
    """Waits for the node (any node of app's cluster, or the one named) to be Ready by a
    heartbeat of this boot (after t): the Ready condition stored before a cut reads True
    until the node controller times it out."""
    def fresh() -> bool:
        r = app.kubectl("get", "nodes", "-o", "json", check=False)
        if r.returncode != 0:
            return False
        return any(
            c["type"] == "Ready" and c["status"] == "True" and _since(c.get("lastHeartbeatTime"), t)
            for n in json.loads(r.stdout)["items"] if node in (None, n["metadata"]["name"])
            for c in n["status"].get("conditions", [])
        )
    return app.wait(f"{node or 'the node'} Ready (a heartbeat of this boot)", fresh, timeout)


def deployment_running_since(app: Appliance, t: float, name: str = "keeper", node: str | None = None) -> bool:
    """Every pod of the Deployment (label app=<name>) is Running and ready, its containers
    started after t (on the node, if named)."""
    r = app.kubectl("get", "pods", "-l", f"app={name}", "-o", "json", check=False)
    if r.returncode != 0:
        return False
    pods = json.loads(r.stdout)["items"]
    return bool(pods) and all(
        node in (None, p["spec"].get("nodeName")) and
        p["status"].get("phase") == "Running" and p["status"].get("containerStatuses") and all(
            c.get("ready") and _since(c.get("state", {}).get("running", {}).get("startedAt"), t)
            for c in p["status"]["containerStatuses"]
        )
        for p in pods
    )


def etcd_started_clean(console: str) -> None:
    """etcd verifies its WAL's CRCs and its backend at start and refuses to run on damage:
    the boot after a cut must show no such refusal (and the apiserver serving, checked by
    the caller). etcd logs JSON: its messages and errors of level warn and above are read
    (its start line lists flags such as `initial-corrupt-check`, which are no finding);
    a Go panic is plain text."""
    words = ("panic", "corrupt", "crc mismatch", "failed to recover", "unexpected EOF")
    bad = []
    for line in console.splitlines():
        if not line.startswith("[etcd] "):
            continue
        text = line[len("[etcd] "):]
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            if entry.get("level") in ("warn", "error", "dpanic", "panic", "fatal"):
                said = f"{entry.get('msg', '')} {entry.get('error', '')}"
                if entry["level"] in ("dpanic", "panic", "fatal") or any(w in said for w in words):
                    bad.append(line)
        elif text.startswith(("panic:", "fatal error:")) or "crc mismatch" in text:
            bad.append(line)
    assert not bad, "etcd after the cut:\n" + "\n".join(bad[:20])
