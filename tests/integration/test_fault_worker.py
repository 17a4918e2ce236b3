"""Every fault the fault worker offers really happens, against a real port.

Each test starts ``python -m nursemaid.testing.fault_worker`` with one fault planned
(or triggers one with an op) and checks the named error the port raises, with the
worker's exit status and stderr tail as evidence. A hang can only be observed as the
absence of an answer, so those tests wait out a short real timeout and are marked slow.
The ``nursemaid_leak_check`` fixture (the project's own pytest plugin) checks that
the processes were reaped and their descriptors closed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import trio

from nursemaid import (
    PortClosed,
    RemoteError,
    RemoteProtocolError,
    RequestTimeout,
    WorkerCrashed,
    WorkerError,
    open_port,
)
from nursemaid.testing import LeakCheck
from nursemaid.testing.fault_worker import DEFAULT_EXIT_CODE

FAULT_WORKER = [sys.executable, "-m", "nursemaid.testing.fault_worker"]
BOUND = 20  # seconds: a generous bound on anything that waits for a real process


def worker(*options: str) -> list[str]:
    return [*FAULT_WORKER, *options]


async def test_healthy_worker_answers_every_op(nursemaid_leak_check: LeakCheck) -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker()) as port:
            assert await port.request("ping") == "pong"
            assert await port.request("echo", {"a": [1, 2]}) == {"a": [1, 2]}
            assert await port.request("pid") == port.pid
            assert await port.request("count") == 2
            with pytest.raises(RemoteError, match="worker raised RuntimeError in op 'fail': no"):
                await port.request("fail", "no")
            assert await port.request("echo", "still serving") == "still serving"


async def test_init_delay_only_delays_and_sleep_answers_null() -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker("--init-delay", "0.05")) as port:
            assert await port.request("ping") == "pong"
            assert await port.request("sleep", 0.01) is None
            assert await port.request("count") == 1


@pytest.mark.slow
async def test_hang_op_never_answers() -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker(), shutdown=0.2) as port:
            with pytest.raises(RequestTimeout):
                await port.request("hang", timeout=0.3)
    assert "hanging (asked by the 'hang' op)" in port.stderr_tail()


async def test_crash_after_n_requests_is_worker_crashed_with_exit_status_and_stderr() -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker("--crash-after", "2")) as port:
            assert await port.request("echo", 1) == 1
            with pytest.raises(RemoteError):  # an error reply is an answer too
                await port.request("fail", "no")
            with pytest.raises(WorkerCrashed) as info:
                await port.request("echo", 3)
    assert isinstance(info.value, WorkerError)
    assert info.value.returncode == DEFAULT_EXIT_CODE
    assert "crashing (--crash-after 2)" in info.value.stderr_tail
    assert "crashing (--crash-after 2)" in str(info.value)


async def test_exit_code_sets_the_status_of_a_crash() -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker("--exit-code", "3")) as port:
            with pytest.raises(WorkerCrashed) as info:
                await port.request("crash")
    assert info.value.returncode == 3
    assert "asked by the 'crash' op" in info.value.stderr_tail


async def test_failed_init_is_a_crashed_worker_on_the_first_ping() -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker("--fail-init")) as port:
            with pytest.raises(WorkerCrashed) as info:
                await port.request("ping")
    assert info.value.returncode == DEFAULT_EXIT_CODE
    assert "failing init as asked (--fail-init)" in info.value.stderr_tail


async def test_garbage_after_n_requests_is_a_remote_protocol_error() -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker("--garbage-after", "1"), shutdown=0.05) as port:
            assert await port.request("echo", "fine") == "fine"
            with pytest.raises(RemoteProtocolError):
                await port.request("echo", "garbage comes back")
            with pytest.raises(PortClosed):  # the stream is out of step: the port is closed
                await port.request("ping")


async def test_garbage_op_is_a_remote_protocol_error() -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker(), shutdown=0.05) as port:
            with pytest.raises(RemoteProtocolError):
                await port.request("garbage")


@pytest.mark.slow
async def test_hang_on_init_never_answers_the_ping(nursemaid_leak_check: LeakCheck) -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker("--hang-on-init"), shutdown=0.2) as port:
            with pytest.raises(RequestTimeout):
                await port.request("ping", timeout=0.5)
    # Closed, reaped and drained: the tail now holds everything the worker said.
    assert "hanging before init as asked (--hang-on-init)" in port.stderr_tail()
    assert port.returncode is not None


@pytest.mark.slow
async def test_hang_after_n_requests_stops_answering() -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker("--hang-after", "1"), shutdown=0.2) as port:
            assert await port.request("echo", 1) == 1
            with pytest.raises(RequestTimeout):
                await port.request("echo", 2, timeout=0.3)
    assert "hanging (--hang-after 1)" in port.stderr_tail()


@pytest.mark.slow
async def test_slow_worker_times_out_then_stays_usable() -> None:
    with trio.fail_after(BOUND):
        async with open_port(worker("--slow", "0.3")) as port:
            with pytest.raises(RequestTimeout):
                await port.request("echo", "late", timeout=0.01)
            # The late reply is discarded; the next answer is the next request's.
            assert await port.request("echo", "on time") == "on time"


@pytest.mark.slow  # the port logs every stderr line, and pytest captures them all
async def test_stderr_flood_does_not_block_the_worker_and_the_tail_is_bounded() -> None:
    lines = 5_000  # about 250 kB: several times what a pipe buffer holds
    with trio.fail_after(BOUND):
        async with open_port(worker("--stderr-flood", str(lines))) as port:
            assert await port.request("ping") == "pong"
            await port.request("stderr", lines)
            assert await port.request("echo", "after the flood") == "after the flood"
            tail = port.stderr_tail()
    assert f"stderr flood line {lines} of {lines}" in tail
    assert len(tail) < 10_000


def test_bad_option_is_rejected_with_a_usage_message() -> None:
    out = subprocess.run(
        [*FAULT_WORKER, "--crash-after", "-1"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 2
    assert "--crash-after: must be >= 0 (got -1)" in out.stderr


def test_fault_worker_starts_without_importing_trio_attrs_cattrs_or_hypothesis() -> None:
    # -X importtime lists every module imported, on stderr, one per line.
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nursemaid.testing.fault_worker", "--fail-init"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == DEFAULT_EXIT_CODE
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "nursemaid" in imported
    assert imported.isdisjoint({"trio", "attrs", "cattrs", "hypothesis"}), imported
