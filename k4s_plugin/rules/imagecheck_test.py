"""k4s_plugin/rules/imagecheck.py, what an `images` archive is, as the pure function it
is: `archive_problem` on archives made here, an OCI image layout and a `docker save` tar
of the right architecture accepted, every other kind refused with what is wrong. The
rules' refusal of such an archive, naming the `images` field, is in
tests/integration/test_rules.py (`test_initramfs_images_are_oci_images_or_archives`)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from k4s_plugin.rules.imagecheck import archive_problem


def _oci_layout(arch: str) -> bytes:
    """A minimal OCI image layout tar with one image of `arch`."""
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    c = hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": f"sha256:{c}", "size": len(config)}, "layers": []}).encode()
    m = hashlib.sha256(manifest).hexdigest()
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": f"sha256:{m}", "size": len(manifest)}]}).encode()
    return _tar({"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index,
                 f"blobs/sha256/{c}": config, f"blobs/sha256/{m}": manifest})


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


IMAGE_ROWS = [
    (b"an image\n", "it is not a tar archive"),
    (_tar({"hello.txt": b"hi"}), "neither oci-layout and index.json"),
    (_tar({"oci-layout": b"{}", "index.json": b"[not json"}), "its index.json is not JSON"),
    (_tar({"oci-layout": b"{}", "index.json": b'{"manifests": []}'}), "lists no manifests"),
    (_tar({"oci-layout": b"{}", "index.json": b'{"manifests": [{"digest": "sha256:../../x"}]}'}), "not sha256:<hex>"),
    (_tar({"manifest.json": b"[]"}), "lists no images"),
    (_oci_layout("arm64"), "an OCI image layout of arm64 images, not amd64"),
    (_tar({"manifest.json": b'[{"Config": "c.json"}]', "c.json": b'{"architecture": "arm"}'}),
     "a docker save archive of arm images, not amd64"),
]


@pytest.mark.parametrize("data,expected", IMAGE_ROWS, ids=[r[1][:30] for r in IMAGE_ROWS])
def test_image_archive_problems(data: bytes, expected: str) -> None:
    problem = archive_problem(data, "amd64")
    assert problem is not None and expected in problem, problem


def test_image_archives_that_fit() -> None:
    assert archive_problem(_oci_layout("amd64"), "amd64") is None
    docker = _tar({"manifest.json": b'[{"Config": "c.json"}]', "c.json": b'{"architecture": "arm64"}'})
    assert archive_problem(docker, "arm64") is None
