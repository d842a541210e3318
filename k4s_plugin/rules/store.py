"""Verifying what Pants' local store hands back: every output file is re-hashed."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass

from pants.engine.fs import Digest, DigestContents, DigestEntries, FileDigest, FileEntry
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.frozendict import FrozenDict

from k4s_plugin.rules.errors import K4sStepError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedProcess:
    """A Process whose output files are checked against their digests.

    Pants 2.17 serves blobs from its local store without re-hashing them: a
    corrupted entry (disk fault, a killed writer, tampering) would be copied into
    dist/ or into the next step's sandbox. k4s re-hashes every output it gets; on a
    mismatch it runs the process again under a changed key, which rewrites the
    store entry, and checks again.
    """

    process: Process


def file_digests(entries: DigestEntries) -> dict[str, FileDigest]:
    """Path -> digest (SHA-256 `fingerprint`, `serialized_bytes_length`) of every file."""
    return {e.path: e.file_digest for e in entries if isinstance(e, FileEntry)}


async def _corrupt_outputs(digest: Digest) -> list[str]:
    entries, contents = await MultiGet(
        Get(DigestEntries, Digest, digest), Get(DigestContents, Digest, digest)
    )
    expected = file_digests(entries)
    bad = []
    for fc in contents:
        want = expected.get(fc.path)
        if want is not None and (
            len(fc.content) != want.serialized_bytes_length
            or hashlib.sha256(fc.content).hexdigest() != want.fingerprint
        ):
            bad.append(fc.path)
    return bad


@rule
async def run_verified_process(req: VerifiedProcess) -> FallibleProcessResult:
    result = await Get(FallibleProcessResult, Process, req.process)
    if result.exit_code != 0:
        return result
    bad = await _corrupt_outputs(result.output_digest)
    if not bad:
        return result
    logger.warning(
        f"k4s: the local store returned corrupted {', '.join(bad)} for "
        f"'{req.process.description}'; running it again."
    )
    repaired = await Get(
        FallibleProcessResult,
        Process,
        dataclasses.replace(
            req.process, env=FrozenDict({**req.process.env, "K4S_STORE_REPAIR": "1"})
        ),
    )
    bad = await _corrupt_outputs(repaired.output_digest) if repaired.exit_code == 0 else []
    if bad:
        raise K4sStepError(
            f"The Pants local store keeps returning corrupted {', '.join(bad)} for "
            f"'{req.process.description}'. Delete the local store (~/.cache/pants/lmdb_store "
            "or [GLOBAL].local_store_dir) and build again."
        )
    return repaired


def rules():
    return collect_rules()
