"""Shared helpers: running the real ./pants, and finding host tools."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PANTS = REPO / ".k4s" / "venv" / "bin" / "pants"

# Every Pants the tests start (directly or through a child such as `pants run`) makes
# its process sandboxes under one directory of this test session, removed when the
# session ends: tests keep sandboxes (`--keep-sandboxes=always`, to see which steps ran)
# and kill Pants mid-build, and a kept compile sandbox is ~350 MB. Left in /tmp they
# filled the disk of a machine that ran the suite often.
SANDBOXES = Path(tempfile.mkdtemp(prefix="k4s-test-sandboxes-"))
os.environ["PANTS_LOCAL_EXECUTION_ROOT_DIR"] = str(SANDBOXES)
# Pants downloads (the Go SDK) with its own CA roots; a machine that names its CA
# bundle in SSL_CERT_FILE (a TLS-inspecting proxy) needs it there too, as ./pants does.
if os.environ.get("SSL_CERT_FILE") and "PANTS_CA_CERTS_PATH" not in os.environ:
    os.environ["PANTS_CA_CERTS_PATH"] = os.environ["SSL_CERT_FILE"]


@pytest.fixture(scope="session", autouse=True)
def _remove_sandboxes():
    yield
    shutil.rmtree(SANDBOXES, ignore_errors=True)


@dataclass
class PantsResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_pants(
    *args: str,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    timeout: int = 1800,
) -> PantsResult:
    """Runs Pants (from the bootstrapped venv) with a build root of `cwd`."""
    proc = subprocess.run(
        [str(PANTS), "--no-pantsd", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for sandbox, _ in _PRESERVED.findall(proc.stdout + proc.stderr):
        shutil.rmtree(sandbox, ignore_errors=True)
    return PantsResult(proc.returncode, proc.stdout, proc.stderr)


def require_tool(name: str) -> str:
    """Tests that need a host tool fail (not skip) without it: .ci/run installs them."""
    path = shutil.which(name)
    if not path:
        pytest.fail(f"`{name}` is not installed; .ci/run installs it (see README)")
    return path


def go_test(module_dir: Path, package: str, run: str | None = None, timeout: int = 1200) -> None:
    """`go test` of a Go package of this repo with the host's Go (static, module mode
    read-only); fails the test with Go's output unless every test passes."""
    go = require_tool("go")
    r = subprocess.run(
        [go, "test", "-count=1", *(("-run", run) if run else ()), package],
        cwd=module_dir,
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"},
        capture_output=True, text=True, timeout=timeout,
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


@pytest.fixture(scope="session")
def dist_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dist")


_dist_counter = 0


def fresh_dist(name: str, root: Path = REPO) -> Path:
    """A new, empty --pants-distdir inside the build root (Pants requires that)."""
    global _dist_counter
    _dist_counter += 1
    d = root / "dist" / "k4s-tests" / f"{name}-{os.getpid()}-{_dist_counter}"
    shutil.rmtree(d, ignore_errors=True)
    return d


def checkout(dest: Path) -> Path:
    """Copies the working tree (tracked and unignored files) to dest: a second checkout."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    return dest


K4S_STEPS = ("Build k4stool", "List the imports of first-party", "Download Go modules", "Rewrite commands", "Compile ", "Pack ")
_PRESERVED = re.compile(r"Preserving local process execution dir (\S+) for (.*)$", re.M)


def executed_processes(output: str) -> list[str]:
    """Descriptions of the processes Pants ran locally, from the log lines that
    `--keep-sandboxes=always` makes it print (cache hits run nothing); run_pants has
    already removed those sandboxes."""
    return [description for _, description in _PRESERVED.findall(output)]


def executed_k4s_steps(output: str) -> list[str]:
    return [d for d in executed_processes(output) if d.startswith(K4S_STEPS)]


def k4s_step_count(groups: int, cpio: bool = True, kernel: bool = False, imports: bool = False) -> int:
    """The k4s Processes of a build of a busybox whose commands make that many rewrite
    groups (one per Go module; and of its image): 2 k4stool builds, download (with
    `imports`, a busybox with first-party commands, the listing of their imports
    before it), the rewrite's plan and dependencies, one rewrite per group, compile,
    and the cpio; with `kernel` (an image with a `linux_kernel`), the build of
    k4stool's kernel steps too."""
    return 2 + int(imports) + 1 + 2 + groups + 1 + int(cpio) + int(kernel)


# The rewrite groups (Go modules) of the busyboxes the tests build: small (7 commands):
# u-root's and its own; uroot (114): u-root's; k3s-like (22): u-root, kine, kubernetes,
# containerd, runc, flannel, CNI plugins, CoreDNS, kube-network-policies, k4s.dev/node.
SMALL_GROUPS, UROOT_GROUPS, K3S_GROUPS = 2, 1, 10


def isolated_pants(
    root: Path,
    caches: Path,
    *args: str,
    remote: str | None = None,
    env: dict[str, str] | None = None,
    named: Path | None = None,
    remote_exec: str | None = None,
) -> PantsResult:
    """Pants in checkout `root` with its own local store, named caches and HOME, all
    under `caches`; with `remote`, reading and writing that REAPI cache; with
    `remote_exec`, running k4s's steps on that REAPI engine (pants.remote-exec.toml).
    `named` shares a named-caches dir (GOCACHE etc., which never change a result) to
    save time."""
    home = caches / "home"
    home.mkdir(parents=True, exist_ok=True)
    flags = [
        f"--local-store-dir={caches / 'store'}",
        f"--named-caches-dir={named or caches / 'named'}",
        "--keep-sandboxes=always",
        "--stats-log",
    ]
    if remote:
        flags += ["--pants-config-files=+['pants.remote.toml']", f"--remote-store-address={remote}"]
    if remote_exec:
        flags += [
            "--pants-config-files=+['pants.remote-exec.toml']",
            f"--remote-store-address={remote_exec}",
            f"--remote-execution-address={remote_exec}",
        ]
    return run_pants(*flags, *args, cwd=root, env={"HOME": str(home), **(env or {})})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stat_counter(output: str, name: str) -> int:
    m = re.search(rf"^\s+{name}: (\d+)$", output, re.M)
    assert m, f"no {name} in the stats log:\n{output[-3000:]}"
    return int(m.group(1))


def kmod_pin(tmp: Path) -> dict[str, str]:
    """A `debian_packages` pin of a real package of this machine's apt sources that is
    neither a kernel nor a UEFI stub (kmod), pinned to what apt serves now (fetched into
    `tmp` for its sha256)."""
    require_tool("apt-get")
    policy = subprocess.run(["apt-cache", "policy", "kmod"], capture_output=True, text=True, check=True).stdout
    version = next(line.split()[1] for line in policy.splitlines() if line.strip().startswith("Candidate:"))
    subprocess.run(["apt-get", "download", "-q", f"kmod={version}"], cwd=tmp, check=True,
                   capture_output=True)
    deb = next(tmp.glob("kmod_*.deb"))
    return {"package": "kmod", "version": version, "sha256": sha256(deb)}
