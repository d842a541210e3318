"""What a k4s step does when remote execution fails it (steps.py: `killed_by`,
`run_k4s_process`), without Pants' engine: the rule is driven by hand, its Gets
answered (or failed) by the test. The slow tests with a real engine and real kills are
in tests/integration/test_remote_exec.py."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from pants.engine.environment import EnvironmentName
from pants.engine.fs import EMPTY_DIGEST, EMPTY_FILE_DIGEST
from pants.engine.internals.native_engine import IntrinsicError, ProcessExecutionEnvironment
from pants.engine.platform import Platform
from pants.engine.process import FallibleProcessResult, Process, ProcessResultMetadata

from k4s_plugin.rules.errors import K4sStepError
from k4s_plugin.rules.steps import K4sProcess, killed_by, run_k4s_process
from k4s_plugin.rules.store import VerifiedProcess
from k4s_plugin.rules.toolchain import K4sStepEnvironment
from k4s_plugin.subsystems import RemoteFallback

REMOTE, LOCAL = EnvironmentName("k4s_remote"), EnvironmentName("__local__")
ENGINE = "grpc://127.0.0.1:50061"
WHAT = "go compile of distros/uroot:bb"


@pytest.mark.parametrize(
    "exit_code, stderr, expected",
    [
        (137, "", "SIGKILL"),  # an executor's report (128 + 9)
        (-9, "", "SIGKILL"),  # Pants' report of a process it ran here
        (143, "", "SIGTERM"),
        (-15, "", "SIGTERM"),
        (130, "", "SIGINT"),
        (129, "", "SIGHUP"),
        # The step's own failures: never infrastructure.
        (1, "k4s: E_COMPILE: exit status 1\n", None),
        (1, "", None),
        (2, "panic: boom\n", None),
        (137, "k4s: E_COMPILE: signal: killed\n", None),  # k4stool reported it itself
        (139, "", None),  # SIGSEGV: a crash, not a kill from outside
        (134, "", None),  # SIGABRT
        (0, "", None),
    ],
)
def test_killed_by(exit_code: int, stderr: str, expected: str | None) -> None:
    assert killed_by(exit_code, stderr) == expected


def _result(exit_code: int, stderr: bytes = b"") -> FallibleProcessResult:
    env = ProcessExecutionEnvironment(
        environment_name="k4s_remote", platform=Platform.linux_x86_64.value, docker_image=None,
        remote_execution=True, remote_execution_extra_platform_properties=[],
    )
    return FallibleProcessResult(
        stdout=b"", stdout_digest=EMPTY_FILE_DIGEST, stderr=stderr, stderr_digest=EMPTY_FILE_DIGEST,
        exit_code=exit_code, output_digest=EMPTY_DIGEST,
        metadata=ProcessResultMetadata(None, env, "ran", 0),
    )


class _Options:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def _drive(fallback: RemoteFallback, answer: Callable[[EnvironmentName], Any], remote: bool = True):
    """Runs run_k4s_process; returns (its result, the environments its Processes were asked
    for). `answer(env)` gives the result of the Process in `env`, or raises."""
    process = Process(argv=("k4stool", "compile"), description="Compile")
    coro = run_k4s_process(
        K4sProcess(process, WHAT),
        K4sStepEnvironment(REMOTE if remote else LOCAL, LOCAL, remote=remote),
        _Options(remote_fallback=fallback),
        _Options(remote_execution_address=ENGINE),
    )
    asked: list[str] = []

    def one(get) -> Any:
        if get.output_type is Platform:
            return Platform.linux_x86_64
        assert get.output_type is FallibleProcessResult
        verified, env = get.inputs
        assert isinstance(verified, VerifiedProcess) and verified.process == process  # the same Process
        asked.append(env.val)
        return answer(env)

    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            get = coro.throw(error) if error else coro.send(value)
        except StopIteration as stop:
            return stop.value, asked
        value, error = None, None
        try:
            value = tuple(one(g) for g in get) if isinstance(get, (tuple, list)) else one(get)
        except IntrinsicError as e:
            error = e


@pytest.mark.parametrize("fallback", list(RemoteFallback))
def test_a_build_error_is_never_rerun(fallback: RemoteFallback) -> None:
    failed = _result(1, b"k4s: E_COMPILE: exit status 1\n")
    result, asked = _drive(fallback, lambda env: failed)
    assert result is failed and asked == ["k4s_remote"]


def test_a_killed_step_runs_again_here() -> None:
    ok = _result(0)
    result, asked = _drive(RemoteFallback.local, lambda env: _result(137) if env == REMOTE else ok)
    assert result is ok and asked == ["k4s_remote", "__local__"]


def _engine_down(env: EnvironmentName) -> FallibleProcessResult:
    if env == REMOTE:
        raise IntrinsicError('Unavailable: "error trying to connect: tcp connect error: Connection refused"')
    return _result(0)


def test_engine_down_runs_the_step_here() -> None:
    result, asked = _drive(RemoteFallback.local, _engine_down)
    assert result.exit_code == 0 and asked == ["k4s_remote", "__local__"]


def test_engine_down_fails_clearly() -> None:
    with pytest.raises(K4sStepError) as e:
        _drive(RemoteFallback.fail, _engine_down)
    message = str(e.value)
    for part in (WHAT, ENGINE, "Connection refused", "--no-remote-execution", "remote_fallback"):
        assert part in message, message


def test_killed_step_fails_clearly() -> None:
    with pytest.raises(K4sStepError, match=r"killed on the executor \(SIGKILL, exit code 137\)"):
        _drive(RemoteFallback.fail, lambda env: _result(137))


def test_local_steps_are_not_caught() -> None:
    def boom(env: EnvironmentName) -> FallibleProcessResult:
        raise IntrinsicError("local failure")

    with pytest.raises(IntrinsicError):
        _drive(RemoteFallback.local, boom, remote=False)
    killed = _result(-9)
    assert _drive(RemoteFallback.local, lambda env: killed, remote=False) == (killed, ["__local__"])
