"""Before each wait for stdout, a port yields the CPU once and reads again; it stops
when that never pays, or when a yield hands the CPU to someone else for a while.

The worker here answers only when the test lets it (it blocks on a FIFO), so the
port's first read always finds nothing, and the test decides what the read after
the yield finds: the stand-in for ``sched_yield`` releases the worker and waits
until its reply is readable (the worker ran during our yield, as it does when it
shares our CPU), or writes bytes into the worker's end of the pipe itself, or does
nothing (the worker runs on another CPU). Time comes from a fake nanosecond clock,
so "the yield was slow" is the test's decision too. See docs/performance.md,
"How a request waits".
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import stat
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from nursemaid import (
    InProcessWorkers,
    Port,
    PortClosed,
    RemoteError,
    WorkerCrashed,
    open_pool,
    open_port,
)
from nursemaid.workers import _port
from nursemaid.workers._pool import Pool
from nursemaid.workers._port import PortState

WORKERS = Path(__file__).parent / "workers"
CALC = [sys.executable, str(WORKERS / "calc_worker.py")]
BOUND = 20  # seconds: a generous fail_after for anything that waits on a real process
QUICK_NS = 1_000  # what a yield costs on the fake clock when nothing else runs


class FakeClock:
    """``perf_counter_ns`` for the port: each reading is QUICK_NS after the last,
    plus whatever a fake yield adds with :meth:`advance`."""

    def __init__(self) -> None:
        self._ticks = itertools.count(0, QUICK_NS)
        self._extra = 0

    def __call__(self) -> int:
        return next(self._ticks) + self._extra

    def advance(self, ns: int) -> None:
        self._extra += ns


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(_port, "_ns", fake)
    return fake


def wait_readable(port: Port) -> None:
    readable, _, _ = select.select([port._stdout_fd], [], [], BOUND)
    assert readable, "the worker's stdout never became readable"


def answering_yield(box: list[Port], release: int, line: bytes) -> Callable[[], None]:
    """A ``sched_yield`` during which the worker answers: release it, wait for the reply."""

    def fake_yield() -> None:
        os.write(release, line)
        wait_readable(box[0])

    return fake_yield


def worker_end_of_stdout(port: Port) -> int:
    """Open the worker's own end of the pipe we read (Linux: through /proc)."""
    ours = os.fstat(port._stdout_fd)
    fd_dir = Path(f"/proc/{port.pid}/fd")
    for entry in fd_dir.iterdir():
        try:
            theirs = os.stat(entry)
        except OSError:
            continue
        if stat.S_ISFIFO(theirs.st_mode) and theirs.st_ino == ours.st_ino:
            fd = os.open(entry, os.O_WRONLY | os.O_NONBLOCK)
            if os.fstat(fd).st_ino == ours.st_ino:
                return fd
            os.close(fd)
    raise AssertionError(f"no fd of pid {port.pid} is the write end of our stdout pipe")


async def test_a_reply_ready_after_the_yield_is_read_without_waiting(
    fifo: tuple[str, int], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, release = fifo
    box: list[Port] = []
    waits: list[int] = []
    real_wait = _port._wait_readable

    async def counting_wait(fd: int) -> None:
        waits.append(fd)
        await real_wait(fd)

    monkeypatch.setattr(_port, "_sched_yield", answering_yield(box, release, b"first\n"))
    monkeypatch.setattr(_port, "_wait_readable", counting_wait)
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            box.append(port)
            port._misses = _port._YIELD_MISSES - 1  # a hit starts the count again
            # No Trio wait happened, so the request is a checkpoint only as the
            # port's turn rule says (test_port_turns.py); a fresh port owes one.
            with trio.testing.assert_checkpoints():
                assert await port.request("wait", path) == "first"
            assert waits == []
            assert port._misses == 0
            # The message level takes the same path.
            monkeypatch.setattr(_port, "_sched_yield", answering_yield(box, release, b"second\n"))
            await port.send({"id": 99, "op": "wait", "args": path})
            clock.advance(_port._TURN_EVERY_NS)  # owe a turn again
            with trio.testing.assert_checkpoints():
                assert await port.receive() == {"id": 99, "result": "second"}
            assert waits == []


async def test_yields_that_bring_nothing_stop_and_are_retried_less_and_less_often(
    fifo: tuple[str, int], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, release = fifo
    yields: list[int] = []
    monkeypatch.setattr(_port, "_sched_yield", lambda: yields.append(1))
    monkeypatch.setattr(_port, "_YIELD_PROBE", 4)  # read at open_port: small, to keep it quick
    monkeypatch.setattr(_port, "_YIELD_PROBE_MAX", 8)

    async def release_when_blocked() -> None:
        await trio.testing.wait_all_tasks_blocked()
        os.write(release, b"late\n")

    async def late_requests(port: Port, count: int) -> None:
        for _ in range(count):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(release_when_blocked)
                assert await port.request("wait", path) == "late"

    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            for n in range(1, _port._YIELD_MISSES + 1):
                await late_requests(port, 1)
                assert (len(yields), port._misses) == (n, n)
            # Given up: 3 chances passed up, the 4th tries (and misses)...
            await late_requests(port, 3)
            assert len(yields) == _port._YIELD_MISSES
            await late_requests(port, 1)
            assert len(yields) == _port._YIELD_MISSES + 1
            # ...so the next try comes after twice as many chances: 7 passed up, the 8th tries.
            await late_requests(port, 7)
            assert len(yields) == _port._YIELD_MISSES + 1
            await late_requests(port, 1)
            assert len(yields) == _port._YIELD_MISSES + 2
            assert port._probe_every == 8  # and no further: _YIELD_PROBE_MAX


async def test_a_slow_yield_stops_the_yielding_even_though_the_reply_came(
    fifo: tuple[str, int], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process took the CPU we gave up, for a time slice: every task of
    # ours waited that long. The reply it brought is used, but yielding stops.
    path, release = fifo
    box: list[Port] = []
    answer = answering_yield(box, release, b"slow\n")

    def slow_yield() -> None:
        answer()
        clock.advance(4_000_000)  # 4 ms: one time slice of a busy CPU

    monkeypatch.setattr(_port, "_sched_yield", slow_yield)
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            box.append(port)
            assert await port.request("wait", path) == "slow"
            assert port._misses == _port._YIELD_MISSES


async def test_a_worker_that_exits_during_the_yield_is_a_crash_with_nothing_abandoned(
    fifo: tuple[str, int], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _release = fifo
    box: list[Port] = []

    def dying_yield() -> None:
        os.kill(box[0].pid, signal.SIGKILL)
        wait_readable(box[0])  # end of file

    monkeypatch.setattr(_port, "_sched_yield", dying_yield)
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            box.append(port)
            with pytest.raises(WorkerCrashed) as caught:
                await port.request("wait", path)
            assert caught.value.returncode == -signal.SIGKILL
            assert port.state is PortState.CLOSED
            assert port.abandoned_requests == 0
            with pytest.raises(PortClosed):
                await port.request("echo", 1)


async def test_a_reply_that_comes_in_pieces_gets_a_yield_before_each_wait(
    fifo: tuple[str, int], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker stays blocked on the FIFO; the test writes the reply to request
    # id 1 into the worker's end of the pipe itself, half during each yield.
    path, release = fifo
    box: list[Port] = []
    body = b'{"id":1,"result":"in two halves"}'
    frame = len(body).to_bytes(4, "big") + body
    halves = [frame[:7], frame[7:]]
    writer: list[int] = []

    def piece_yield() -> None:
        os.write(writer[0], halves.pop(0))

    monkeypatch.setattr(_port, "_sched_yield", piece_yield)
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            box.append(port)
            writer.append(worker_end_of_stdout(port))
            try:
                assert await port.request("wait", path) == "in two halves"
            finally:
                os.close(writer[0])
            assert halves == []  # two yields, one before each would-be wait
            assert port._misses == 0
            os.write(release, b"done\n")  # the worker's own late reply to id 1 then
            # comes; the port was not told to expect it, so don't use it again.


# ---- pool.execute: one schedule point, taken after the checkin ----------------------


def only_port(pool: Pool) -> Port:
    (slot,) = pool._core.workers.values()
    port: Port = slot.resource
    return port


class LeasedAtStepEnd(trio.abc.Instrument):
    """Records, at the end of each step of *task*, how many workers were leased."""

    def __init__(self, pool: Pool, task: trio.lowlevel.Task) -> None:
        self.pool, self.task, self.leased = pool, task, list[int]()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.leased.append(self.pool.statistics().leased)


def answer_during_the_yield(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> Port:
    """The worker answers during the port's yield: the request itself never waits."""
    port = only_port(pool)
    monkeypatch.setattr(_port, "_sched_yield", lambda: wait_readable(port))
    port._misses = 0
    port._turn_ns = -_port._TURN_EVERY_NS  # no turn given for a while: one is owed
    return port


def _fail(args: str) -> None:
    raise ValueError(args)


IN_PROCESS = InProcessWorkers({"echo": lambda args: args, "fail": _fail})


@contextlib.asynccontextmanager
async def pool_that_never_waits(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Pool, Port | None]]:
    """A pool of one worker whose requests never wait: a port whose worker answers
    during the yield, or an in-process worker with plain (not async) handlers."""
    worker = CALC if kind == "port" else IN_PROCESS
    async with open_pool(worker, size=1, health_interval=None) as pool:
        yield pool, answer_during_the_yield(pool, monkeypatch) if kind == "port" else None


def assert_back_idle_without_a_wait(pool: Pool, port: Port | None) -> None:
    if port is not None:
        assert port._misses == 0  # the yield found the reply: nothing waited
    assert pool.statistics().idle == 1


@pytest.mark.parametrize("kind", ["port", "in-process"])
async def test_execute_returns_the_worker_before_its_schedule_point(
    kind: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The request never waits, so the call's one schedule point is execute's own,
    # after the checkin: the step that ends there already has the worker back
    # (leased 0), and the next client takes the same warm worker without waiting
    # (docs/pool.md, "The schedule point comes after the checkin").
    with trio.fail_after(BOUND):
        async with pool_that_never_waits(kind, monkeypatch) as (pool, port):
            watch = LeasedAtStepEnd(pool, trio.lowlevel.current_task())
            trio.lowlevel.add_instrument(watch)
            try:
                with trio.testing.assert_checkpoints():
                    assert await pool.execute("echo", "hi") == "hi"
            finally:
                trio.lowlevel.remove_instrument(watch)
            assert watch.leased[-1] == 0
            assert_back_idle_without_a_wait(pool, port)


@pytest.mark.parametrize("kind", ["port", "in-process"])
async def test_a_remote_error_that_never_waited_is_still_a_schedule_point(
    kind: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(BOUND):
        async with pool_that_never_waits(kind, monkeypatch) as (pool, port):
            (before,) = pool._core.workers
            with trio.testing.assert_checkpoints(), pytest.raises(RemoteError, match="boom"):
                await pool.execute("fail", "boom")
            assert_back_idle_without_a_wait(pool, port)
            assert list(pool._core.workers) == [before]  # a RemoteError keeps the worker
