"""buildbox-casd's runner, wrapped: declares a Command's outputs the way buildbox-run reads them.

    bridge_outputs.py --runner=/path/to/buildbox-run [--log=FILE] [buildbox-run's arguments...]

Why: REAPI 2.1 replaced `Command.output_files` and `Command.output_directories` with
`Command.output_paths`. Pants 2.17 sends only the old two fields; buildbox-run 1.4.25
(the runner buildbox-casd starts for each action) captures only `output_paths`. Run
directly, every action "succeeds" with no outputs: Pants then writes empty results
(no error), and the next step fails for a missing input, or `package` writes nothing.

What it does: buildbox-casd calls this with `--action=FILE` (the Action) and
`--remote=URL` (its own CAS). If the Action's Command has output files or directories
and no output paths, this adds each of them as an output path (files, then
directories: the order REAPI 2.0 servers capture them in), stores that Command in the
CAS, writes an Action naming it, and runs buildbox-run on that Action. buildbox-run
reports each output path that is a file in `ActionResult.output_files` and each
directory in `output_directories`, which is what Pants reads. The ActionCache keeps
the result under the Action Pants sent (buildbox-casd writes it; the Action handed to
buildbox-run is never cached), so cache keys are Pants' own.

Stdlib plus grpcio (raw bytes over gRPC; the few protobuf fields involved are
encoded here, so no generated code or protobuf runtime is needed).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
import time

import grpc

CAS = "/build.bazel.remote.execution.v2.ContentAddressableStorage/"

# Field numbers (build/bazel/remote/execution/v2/remote_execution.proto).
ACTION_COMMAND_DIGEST = 1
DIGEST_HASH, DIGEST_SIZE = 1, 2
COMMAND_ARGUMENTS = 1
COMMAND_OUTPUT_FILES, COMMAND_OUTPUT_DIRECTORIES, COMMAND_OUTPUT_PATHS = 3, 4, 7


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def fields(buf: bytes) -> list[tuple[int, int, bytes | int, bytes]]:
    """Top-level fields of a message: (number, wire type, value, the field's raw bytes)."""
    out = []
    i = 0
    while i < len(buf):
        start = i
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _read_varint(buf, i)
        elif wt == 1:
            val, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _read_varint(buf, i)
            val, i = buf[i:i + n], i + n
        elif wt == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        out.append((num, wt, val, buf[start:i]))
    return out


def field_bytes(num: int, value: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(value)) + value


def digest(data: bytes) -> bytes:
    return field_bytes(DIGEST_HASH, hashlib.sha256(data).hexdigest().encode()) + _varint(
        DIGEST_SIZE << 3
    ) + _varint(len(data))


def bridged_command(command: bytes) -> bytes | None:
    """The Command with its output files and directories as output paths, or None when
    nothing needs bridging."""
    parsed = fields(command)
    if any(num == COMMAND_OUTPUT_PATHS for num, *_ in parsed):
        return None
    files = [v for num, _, v, _ in parsed if num == COMMAND_OUTPUT_FILES]
    dirs = [v for num, _, v, _ in parsed if num == COMMAND_OUTPUT_DIRECTORIES]
    if not files and not dirs:
        return None
    return command + b"".join(field_bytes(COMMAND_OUTPUT_PATHS, p) for p in files + dirs)


class Cas:
    def __init__(self, url: str, instance: str) -> None:
        target = url.split("://", 1)[1] if url.startswith(("http://", "grpc://")) else url
        self.channel = grpc.insecure_channel(target)
        self.instance = instance.encode()

    def _call(self, method: str, request: bytes) -> bytes:
        return self.channel.unary_unary(CAS + method)(request, timeout=300)

    def read(self, digest_msg: bytes) -> bytes:
        request = field_bytes(1, self.instance) + field_bytes(2, digest_msg)
        for num, _, response, _ in fields(self._call("BatchReadBlobs", request)):
            if num == 1:
                got = {n: v for n, _, v, _ in fields(response)}
                _check(got.get(3, b""), "BatchReadBlobs")
                return got.get(2, b"")
        raise RuntimeError("BatchReadBlobs: no response")

    def write(self, data: bytes) -> bytes:
        d = digest(data)
        request = field_bytes(1, self.instance) + field_bytes(
            2, field_bytes(1, d) + field_bytes(2, data)
        )
        for num, _, response, _ in fields(self._call("BatchUpdateBlobs", request)):
            if num == 1:
                _check({n: v for n, _, v, _ in fields(response)}.get(2, b""), "BatchUpdateBlobs")
        return d


def _check(status: bytes, method: str) -> None:
    """Raises for a google.rpc.Status whose code is not OK (0)."""
    got = {n: v for n, _, v, _ in fields(status)}
    if got.get(1, 0):
        raise RuntimeError(f"{method}: status {got[1]}: {got.get(2, b'').decode(errors='replace')}")


def main(argv: list[str]) -> int:
    ours = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in argv if a.startswith(("--runner=", "--log="))}
    runner = ours["--runner"]
    args = [a for a in argv if not a.startswith(("--runner=", "--log="))]
    opts = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.startswith("--") and "=" in a}
    action_path = opts["--action"]
    with open(action_path, "rb") as f:
        action = f.read()
    parsed = fields(action)
    command_digest = next(v for num, _, v, _ in parsed if num == ACTION_COMMAND_DIGEST)
    cas = Cas(opts["--remote"], opts.get("--instance", ""))
    original = cas.read(command_digest)
    if "--log" in ours:
        # One line per action this engine runs: what tests and people read to see
        # which steps ran here.
        argv0 = [v.decode(errors="replace") for num, _, v, _ in fields(original) if num == COMMAND_ARGUMENTS]
        with open(ours["--log"], "a") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid={os.getpid()} {shlex.join(argv0)[:500]}\n")
    command = bridged_command(original)
    if command is not None:
        new_digest = cas.write(command)
        action = b"".join(
            field_bytes(ACTION_COMMAND_DIGEST, new_digest) if num == ACTION_COMMAND_DIGEST else raw
            for num, _, _, raw in parsed
        )
        action_path += ".bridged"
        with open(action_path, "wb") as f:
            f.write(action)
        args = [f"--action={action_path}" if a.startswith("--action=") else a for a in args]
    os.execv(runner, [runner, *args])
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
