"""What an image archive in an initramfs's `images` is, read from its bytes: an OCI image
layout tar (`oci-layout`, `index.json`, `blobs/sha256/...`) or a `docker save` archive
(`manifest.json`), and the CPU architectures of its images. Pure functions; the node
imports these archives into containerd at boot, where a text file or an image of another
architecture would fail (or run nothing) long after the build.
"""

from __future__ import annotations

import io
import json
import tarfile


def _members(data: bytes) -> dict[str, tarfile.TarInfo] | None:
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
        return {m.name.lstrip("./"): m for m in tar.getmembers()}
    except (tarfile.TarError, EOFError, ValueError):
        return None


def _read_json(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> object:
    m = members.get(name)
    if m is None or not m.isfile():
        raise ValueError(f"it has no {name}")
    f = tar.extractfile(m)
    assert f is not None
    try:
        return json.loads(f.read())
    except ValueError:
        raise ValueError(f"its {name} is not JSON") from None


def _blob(digest: object) -> str:
    if not isinstance(digest, str) or not digest.startswith("sha256:") or "/" in digest:
        raise ValueError(f"it names a blob {digest!r} that is not sha256:<hex>")
    return f"blobs/sha256/{digest[len('sha256:'):]}"


def architectures(data: bytes) -> tuple[str, tuple[str, ...]]:
    """(format, the architectures of its images: the OCI image-spec's values, which
    are Go's GOARCH names); ValueError saying why `data` is not an image archive."""
    members = _members(data)
    if members is None:
        raise ValueError("it is not a tar archive")
    tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    archs: list[str] = []
    if "oci-layout" in members:
        index = _read_json(tar, members, "index.json")
        manifests = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(manifests, list) or not manifests:
            raise ValueError("its index.json lists no manifests")
        for desc in manifests:
            if not isinstance(desc, dict):
                raise ValueError("its index.json has a manifest that is not an object")
            platform = desc.get("platform")
            if isinstance(platform, dict) and platform.get("architecture"):
                archs.append(str(platform["architecture"]))
                continue
            manifest = _read_json(tar, members, _blob(desc.get("digest")))
            if isinstance(manifest, dict) and isinstance(manifest.get("manifests"), list):
                # A nested index (multi-platform): its entries carry the platform.
                archs += [
                    str((m.get("platform") or {}).get("architecture", "?"))
                    for m in manifest["manifests"]
                    if isinstance(m, dict)
                ]
                continue
            config = manifest.get("config") if isinstance(manifest, dict) else None
            if not isinstance(config, dict):
                raise ValueError("its image manifest has no config")
            cfg = _read_json(tar, members, _blob(config.get("digest")))
            archs.append(str(cfg.get("architecture", "?")) if isinstance(cfg, dict) else "?")
        return "OCI image layout", tuple(archs)
    if "manifest.json" in members:
        manifest = _read_json(tar, members, "manifest.json")
        if not isinstance(manifest, list) or not manifest:
            raise ValueError("its manifest.json lists no images")
        for image in manifest:
            config = image.get("Config") if isinstance(image, dict) else None
            if not isinstance(config, str):
                raise ValueError("its manifest.json has an image without Config")
            cfg = _read_json(tar, members, config)
            archs.append(str(cfg.get("architecture", "?")) if isinstance(cfg, dict) else "?")
        return "docker save archive", tuple(archs)
    raise ValueError("it has neither oci-layout and index.json (an OCI image layout) nor manifest.json (docker save)")


def archive_problem(data: bytes, goarch: str) -> str | None:
    """Why `data` is not an image archive for `goarch` (the busybox's), or None."""
    try:
        fmt, archs = architectures(data)
    except ValueError as e:
        return f"{e}, so it is not an image archive containerd can import"
    if goarch not in archs:
        article = "an" if fmt[0] in "AEIOU" else "a"
        return f"it is {article} {fmt} of {', '.join(archs) or 'no'} images, not {goarch} (the busybox's `goarch`)"
    return None
