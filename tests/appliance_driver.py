"""Drives an appliance the way its user does: `./pants run <initramfs>` on the host, the
admin kubeconfig that `pants run` prints, and a stock kubectl through the forwarded
port. Shared by tests/test_appliance.py (assertions) and benchmarks/appliance.py
(timings).

kubectl: the one on PATH if its minor version is within one of the cluster's (kubectl's
supported skew), else one built with the host's Go from k8s.io/kubernetes at the
profile's version (an unmodified upstream kubectl), kept in .k4s/tools/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PANTS = REPO / ".k4s" / "venv" / "bin" / "pants"
K8S_VERSION = "v1.37.2"  # distros/command_groups.py K8S_VERSION
# The guest ports of a server: kube-apiserver, and k4s-node's datastore snapshots.
API_PORT, SNAPSHOT_PORT = 6443, 6444


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stock_kubectl() -> str:
    """A kubectl within one minor version of the appliance's Kubernetes."""
    want_minor = int(K8S_VERSION.split(".")[1])
    found = shutil.which("kubectl")
    if found:
        out = subprocess.run([found, "version", "--client", "-o", "json"], capture_output=True, text=True)
        try:
            minor = int(re.sub(r"\D", "", json.loads(out.stdout)["clientVersion"]["minor"]))
            if abs(minor - want_minor) <= 1:
                return found
        except (ValueError, KeyError, json.JSONDecodeError):
            pass
    built = REPO / ".k4s" / "tools" / f"kubectl-{K8S_VERSION}"
    if not built.exists():
        go = shutil.which("go")
        if not go:
            raise RuntimeError("no kubectl within one minor version of the cluster, and no Go to build one")
        tmp = built.with_suffix(".tmp")
        ldflags = " ".join([
            "-s", "-w",
            f"-X k8s.io/component-base/version.gitVersion={K8S_VERSION}",
            "-X k8s.io/component-base/version.gitMajor=1",
            f"-X k8s.io/component-base/version.gitMinor={want_minor}",
            f"-X k8s.io/client-go/pkg/version.gitVersion={K8S_VERSION}",
        ])
        # k3s-like pins k8s.io/kubernetes and its staging modules; its go.sum holds what
        # the image's commands need (`pants k4s-tidy`), so kubectl's own modules (at the
        # versions Kubernetes' go.mod requires) get their go.sum lines, checked against
        # GOSUMDB, in a scratch copy of go.mod and go.sum (-modfile).
        profile = REPO / "distros" / "k3s-like"
        with tempfile.TemporaryDirectory() as scratch:
            for name in ("go.mod", "go.sum"):
                shutil.copy(profile / name, Path(scratch) / name)
            subprocess.run(
                [go, "build", "-trimpath", "-mod=mod", f"-modfile={scratch}/go.mod", "-ldflags", ldflags,
                 "-o", str(tmp), "k8s.io/kubernetes/cmd/kubectl"],
                cwd=profile, check=True,
                env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": ""},
            )
        tmp.rename(built)
    return str(built)


@dataclass
class Appliance:
    """`./pants run <target> -- <vm flags>` in the background, its console in a file."""

    target: str
    console: Path
    # None: the target's `vm_memory` (read back from the QEMU command line).
    memory_mib: int | None = None
    forwards: dict[int, int] = field(default_factory=dict)  # guest port -> host port
    extra_vm_args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None
    started: float = 0.0
    kubeconfig: Path | None = None
    # An agent joining another node's cluster prints no kubeconfig of its own.
    expect_kubeconfig: bool = True
    # The cluster identity directory (CA, admin kubeconfig): `-identity` in
    # extra_vm_args, else one beside the console, so that every boot of one test (one
    # directory) shares it and VMs of the same target in other tests do not (`pants run`'s
    # default, .k4s/clusters/<target>, is one per target: a second VM of the target
    # would point its admin kubeconfig at itself).
    identity: Path | None = None

    def start(self, timeout: float = 3600) -> None:
        # The apiserver and the snapshot port (a server's vm_port_forwards binds host
        # 6443 and 6444) go to free host ports, so that several nodes run side by side.
        for guest in (API_PORT, SNAPSHOT_PORT, *self.forwards):
            self.forwards.setdefault(guest, free_port())
        self.pidfile = self.console.with_suffix(".qemu.pid")
        vm_args = ["-accel", "tcg", "-pidfile", str(self.pidfile)]
        if "-identity" in self.extra_vm_args:
            self.identity = Path(self.extra_vm_args[self.extra_vm_args.index("-identity") + 1])
        else:
            self.identity = self.console.parent / ("identity." + re.sub(r"[^A-Za-z0-9_.-]", "_", self.target))
            vm_args += ["-identity", str(self.identity)]
        if self.memory_mib:
            vm_args += ["-memory", str(self.memory_mib)]
        for guest, host in self.forwards.items():
            vm_args += ["-forward", f"{host}:{guest}"]
        self.proc = subprocess.Popen(
            [str(PANTS), "--no-pantsd", "run", self.target, "--", *vm_args, *self.extra_vm_args],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=self.console.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.console.read_text(errors="replace")
            m = re.search(r"k4s: admin kubeconfig: (\S+)", text)
            if (m or not self.expect_kubeconfig) and "qemu-system" in text:
                self.kubeconfig = Path(m.group(1)) if m else None
                mem = re.search(r"qemu-system\S* .*? -m (\d+) ", text)
                self.memory_mib = int(mem.group(1)) if mem else self.memory_mib
                self.started = time.monotonic()  # QEMU is being exec'ed now
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"pants run exited {self.proc.returncode}:\n{text[-4000:]}")
            time.sleep(1)
        raise RuntimeError(f"pants run did not start QEMU within {timeout} s")

    def stop(self) -> None:
        # QEMU is not in pants run's process group: stop it by its pid file.
        try:
            os.kill(int(self.pidfile.read_text().strip()), signal.SIGKILL)
        except (OSError, ValueError, AttributeError):
            pass
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def snapshot(self, path: Path, timeout: float = 30 * 60) -> float:
        """The running server's datastore snapshot into `path`, as its user takes it
        (`pants run <target> -- -snapshot FILE`, with this VM's identity and snapshot
        port); returns the seconds it took, `pants run` included."""
        start = time.monotonic()
        r = subprocess.run(
            [str(PANTS), "--no-pantsd", "run", self.target, "--", "-identity", str(self.identity),
             "-forward", f"{self.forwards[SNAPSHOT_PORT]}:{SNAPSHOT_PORT}", "-snapshot", str(path)],
            cwd=REPO, capture_output=True, text=True, timeout=timeout,
        )
        if r.returncode != 0 or not path.is_file():
            raise RuntimeError(f"pants run -- -snapshot {path}: {r.stdout[-3000:]}{r.stderr[-3000:]}")
        return time.monotonic() - start

    def console_text(self) -> str:
        return self.console.read_text(errors="replace")

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
        r = subprocess.run(
            [stock_kubectl(), "--kubeconfig", str(self.kubeconfig), "--request-timeout=60s", *args],
            capture_output=True, text=True, timeout=timeout, input=input,
        )
        if check and r.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {r.stderr}{r.stdout}")
        return r

    def wait(self, what: str, check, timeout: float) -> float:
        """Polls check() until true; returns seconds since QEMU started."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                if check():
                    return time.monotonic() - self.started
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                last = str(e)
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"the VM stopped while waiting for {what}")
            time.sleep(3)
        raise TimeoutError(f"timed out waiting for {what} ({last[-500:]})")

    def node_ready(self) -> bool:
        r = self.kubectl("get", "nodes", "-o", "json", check=False)
        if r.returncode != 0:
            return False
        nodes = json.loads(r.stdout)["items"]
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for n in nodes for c in n["status"].get("conditions", [])
        )

    def rollout_done(self, deployment: str, replicas: int) -> bool:
        r = self.kubectl("get", "deployment", deployment, "-o", "json", check=False)
        if r.returncode != 0:
            return False
        return json.loads(r.stdout)["status"].get("readyReplicas", 0) >= replicas

    def mem_available_at_ready(self) -> int | None:
        m = re.search(r"is Ready \(.*MemAvailable (\d+) MiB\)", self.console_text())
        return int(m.group(1)) if m else None

    def power_button(self, qmp_path: Path, bound: float) -> tuple[float, str]:
        """Presses the ACPI power button (QMP `system_powerdown` on the VM's QMP socket)
        and waits for QEMU to exit by itself; returns the seconds it took and the console
        from the press on, which must show k4s-node's orderly shutdown."""
        qmp = QMP(qmp_path)
        mark = len(self.console_text())
        qmp.execute("system_powerdown")
        t0 = time.monotonic()
        try:
            self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the VM still runs {bound} s after the power button:\n"
                                 + self.console_text()[mark:][-4000:]) from None
        finally:
            qmp.close()
        seconds = time.monotonic() - t0
        out = self.console_text()[mark:]
        assert "shutdown (power button" in out, out[-3000:]
        return seconds, out


class QMP:
    """QEMU's machine protocol on a unix socket: one command at a time."""

    def __init__(self, path: Path, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self.file = self.sock.makefile("rw")
        json.loads(self.file.readline())  # the greeting
        self.execute("qmp_capabilities")

    def execute(self, command: str) -> dict:
        self.file.write(json.dumps({"execute": command}) + "\n")
        self.file.flush()
        while True:
            msg = json.loads(self.file.readline())
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise RuntimeError(f"QMP {command}: {msg['error']}")

    def close(self) -> None:
        self.sock.close()
