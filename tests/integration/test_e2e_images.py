"""The conformance suite's images that need more than a busybox and a command line
(distros/e2e-images, docs/conformance.md), built by the repository's own targets
(`pants package`) and read back as e2e uses them: the image config's User, entrypoint
and command, the files and their modes, and the setuid `nnp` of nonewprivs run under
no_new_privs and without it, as runc runs it for allowPrivilegeEscalation false/true."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from ..conftest import fresh_dist, run_pants

# A heavy build: e2e-bb compiles agnhost and its share of Kubernetes (24 min cold here).
pytestmark = pytest.mark.slow

E2E = "distros/e2e-images"
IMAGES = ("e2e-busybox", "e2e-nonroot", "e2e-nautilus", "e2e-kitten")


class Image:
    """An OCI layout archive of `oci_image`: its config and its one layer's members."""

    def __init__(self, path: Path) -> None:
        with tarfile.open(path) as t:
            files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}

        def blob(desc: dict) -> bytes:
            data = files["blobs/sha256/" + desc["digest"].removeprefix("sha256:")]
            assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]
            return data

        index = json.loads(files["index.json"])
        (self.ref,) = index["manifests"]
        manifest = json.loads(blob(self.ref))
        self.config = json.loads(blob(manifest["config"]))["config"]
        (layer,) = manifest["layers"]
        self.layer_digest = layer["digest"]
        self.layer = blob(layer)
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(self.layer))) as t:
            self.members = {m.name.rstrip("/"): m for m in t.getmembers()}
            self.content = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}

    @property
    def name(self) -> str:
        return self.ref["annotations"]["org.opencontainers.image.ref.name"]


@pytest.fixture(scope="module")
def dist() -> Path:
    d = fresh_dist("e2e-images")
    r = run_pants(
        f"--pants-distdir={d}", "package", *(f"{E2E}:{i}" for i in IMAGES), f"{E2E}/nnp:e2e-nonewprivs",
        f"{E2E}/nnp:nnp-bb", timeout=3600,
    )
    assert r.returncode == 0, r.output
    return d


def image(dist: Path, address: str) -> Image:
    directory, name = address.split(":")
    return Image(dist / directory.replace("/", ".") / f"{name}.tar")


def test_nonroot_is_e2e_bb_with_user_1234(dist: Path) -> None:
    busybox, nonroot = image(dist, f"{E2E}:e2e-busybox"), image(dist, f"{E2E}:e2e-nonroot")
    assert nonroot.name == "k4s.local/e2e-test-images/nonroot:1.5"
    # e2e's runAsNonRoot tests run `id -u` and read 1234 from the image's User.
    assert nonroot.config["User"] == "1234" and nonroot.config["Cmd"] == ["sh"]
    assert nonroot.members["bbin/id"].issym()
    # The same layer as e2e's busybox (containerd keeps it once); only the config differs.
    assert nonroot.layer_digest == busybox.layer_digest
    assert "User" not in busybox.config


def test_busybox_hexdump_takes_c(dist: Path, tmp_path: Path) -> None:
    """e2e's ConfigMap binary-data test runs `hexdump -C` in the busybox image and looks
    for the bytes in hexdump's canonical form (distros/patches/uroot-hexdump-canonical.patch)."""
    busybox = image(dist, f"{E2E}:e2e-busybox")
    assert busybox.members["bbin/hexdump"].linkname == "bb"
    bb = tmp_path / "hexdump"  # a busybox runs the command its argv[0] names
    bb.write_bytes(busybox.content["bbin/bb"])
    bb.chmod(0o755)
    data = tmp_path / "dump.bin"
    data.write_bytes(bytes.fromhex("decafebad0feff"))
    r = subprocess.run([bb, "-C", data], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("00000000  de ca fe ba d0 fe ff ") and r.stdout.rstrip().endswith("|.......|")


def test_busybox_sleeps_for_ever(dist: Path, tmp_path: Path) -> None:
    """e2e's PodCertificate tests run `sleep infinity` (distros/patches/uroot-sleep-infinity.patch)."""
    busybox = image(dist, f"{E2E}:e2e-busybox")
    sleep = tmp_path / "sleep"
    sleep.write_bytes(busybox.content["bbin/bb"])
    sleep.chmod(0o755)
    for arg in ("infinity", "inf"):
        with pytest.raises(subprocess.TimeoutExpired):
            subprocess.run([sleep, arg], capture_output=True, timeout=3)
    assert subprocess.run([sleep, "0.1"], timeout=30).returncode == 0
    assert subprocess.run([sleep, "forever"], capture_output=True, timeout=30).returncode != 0


@pytest.mark.parametrize("name, jpg", [("e2e-nautilus", "nautilus.jpg"), ("e2e-kitten", "kitten.jpg")])
def test_update_demo_images_serve_their_data(dist: Path, name: str, jpg: str) -> None:
    img = image(dist, f"{E2E}:{name}")
    assert img.name == f"k4s.local/e2e-test-images/{name.removeprefix('e2e-')}:1.8"
    # agnhost's test-webserver serves / on port 80; the update-demo test reads /data.json.
    assert img.config["Entrypoint"] == ["/agnhost"] and img.config["Cmd"] == ["test-webserver"]
    assert "User" not in img.config
    data = img.members["data.json"]
    assert data.isfile() and data.mode == 0o644 and (data.uid, data.gid) == (0, 0)
    assert json.loads(img.content["data.json"]) == {"image": jpg}
    assert img.members["agnhost"].linkname == "/bbin/agnhost"


def test_nonewprivs_runs_a_setuid_nnp_and_nothing_else(dist: Path) -> None:
    img = image(dist, f"{E2E}/nnp:e2e-nonewprivs")
    assert img.name == "k4s.local/e2e-test-images/nonewprivs:1.4"
    assert img.config["Cmd"] == ["nnp"] and "User" not in img.config
    assert img.config["Env"] == ["PATH=/usr/local/bin:/bbin:/bin"]
    bb = img.members["bbin/bb"]
    assert bb.mode == 0o4755 and (bb.uid, bb.gid) == (0, 0)
    assert img.members["usr/local/bin/nnp"].linkname == "/bbin/nnp"
    assert img.members["bbin/nnp"].linkname == "bb"
    # One command: the setuid binary runs nnp and only nnp (no shell).
    assert sorted(n for n in img.members if n.startswith("bbin/")) == ["bbin/bb", "bbin/nnp"]


def test_nnp_setuid_and_no_new_privs(dist: Path) -> None:
    """The layer's bbin/bb, installed setuid root as a container runtime unpacks it, run
    as UID 1000 the way e2e's allowPrivilegeEscalation tests run the image: effective
    UID 0 without no_new_privs, 1000 with it (allowPrivilegeEscalation: false, the
    Conformance test)."""
    if os.geteuid() != 0:
        pytest.skip("installing a setuid-root file needs root")
    img = image(dist, f"{E2E}/nnp:e2e-nonewprivs")
    # A directory UID 1000 can reach (pytest's tmp_path is 0700 root's).
    with tempfile.TemporaryDirectory(prefix="k4s-nnp-") as d:
        Path(d).chmod(0o755)
        nnp = Path(d) / "nnp"  # gobusybox runs the command its name says
        nnp.write_bytes(img.content["bbin/bb"])
        os.chown(nnp, 0, 0)
        nnp.chmod(img.members["bbin/bb"].mode)
        as_1000 = ["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"]
        escalated = subprocess.run([*as_1000, nnp], capture_output=True, text=True, check=True)
        assert escalated.stdout == "Effective uid: 0\n"
        held = subprocess.run([*as_1000, "--no-new-privs", nnp], capture_output=True, text=True, check=True)
        assert held.stdout == "Effective uid: 1000\n"
