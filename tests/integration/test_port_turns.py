"""A port call that never waits gives Trio's scheduler a turn at most once per
``_TURN_EVERY_NS``, and is a cancel point every time (docs/ports.md, "Checkpoints").

The worker's reply is made to be there before the port would wait for it: the
stand-in for ``sched_yield`` blocks (outside Trio) until the reply is readable, as
if the worker had run during the yield. So no call goes through Trio's I/O wait,
and the only schedule points are the turns the port decides to give. Whether a
call gave one is read off the task's steps: a schedule point ends the step of the
task that takes it; a cancel point alone does not.
"""

from __future__ import annotations

import gc
import itertools
import os
import select
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from nursemaid import Port, open_pool, open_port
from nursemaid.workers import _pool, _port
from nursemaid.workers._pool import Pool

WORKERS = Path(__file__).parent / "workers"
CALC = [sys.executable, str(WORKERS / "calc_worker.py")]
BOUND = 20  # seconds: a generous fail_after for anything that waits on a real process
TURN = _port._TURN_EVERY_NS
CENSUS_OF_ONE = 2 * TURN  # how long a pool of one worker counts its clients


class StepCounter(trio.abc.Instrument):
    """Counts the steps of one task that end: each ends at a schedule point."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task, self.steps = task, 0

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.steps += 1


async def schedule_points(
    call: Callable[..., Awaitable[object]], *args: object, **kwargs: object
) -> int:
    """How many schedule points ``await call(*args, **kwargs)`` went through."""
    counter = StepCounter(trio.lowlevel.current_task())
    trio.lowlevel.add_instrument(counter)
    try:
        await call(*args, **kwargs)
    finally:
        trio.lowlevel.remove_instrument(counter)
    return counter.steps


def reply_during_the_yield(port: Port) -> Callable[[], None]:
    """A ``sched_yield`` during which the worker answers."""

    def fake_yield() -> None:
        readable, _, _ = select.select([port._stdout_fd], [], [], BOUND)
        assert readable, "the worker never answered"

    return fake_yield


class FakeNs:
    """``perf_counter_ns`` for the port: 1 µs a reading, plus what the test adds."""

    def __init__(self) -> None:
        self._ticks = itertools.count(10**9, 1_000)
        self.extra = 0

    def __call__(self) -> int:
        return next(self._ticks) + self.extra


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every call of the port's to Trio's I/O wait for stdout."""
    record: list[int] = []
    real_wait = _port._wait_readable

    async def counting_wait(fd: int) -> None:
        record.append(fd)
        await real_wait(fd)

    monkeypatch.setattr(_port, "_wait_readable", counting_wait)
    # The stand-in yield blocks for as long as the worker takes; that must not
    # count as a slow yield, or the port would stop yielding and start waiting.
    monkeypatch.setattr(_port, "_YIELD_SLOW_NS", 10**15)
    return record


@pytest.fixture
def ns(monkeypatch: pytest.MonkeyPatch) -> FakeNs:
    fake = FakeNs()
    monkeypatch.setattr(_port, "_ns", fake)
    return fake


async def test_a_call_that_never_waits_gives_a_turn_once_per_interval(
    waits: list[int], ns: FakeNs, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            monkeypatch.setattr(_port, "_sched_yield", reply_during_the_yield(port))
            # A fresh port owes a turn at once.
            assert await schedule_points(port.request, "echo", 1) == 1
            # Within the interval, calls that never waited give none...
            for value in range(2, 6):
                assert await schedule_points(port.request, "echo", value) == 0
            # ...and the first after it does; then none again.
            ns.extra += TURN
            assert await schedule_points(port.request, "echo", 6) == 1
            assert await schedule_points(port.request, "echo", 7) == 0
            # A timeout does not change the rule.
            ns.extra += TURN
            assert await schedule_points(port.request, "echo", 8, timeout=BOUND) == 1
            assert await schedule_points(port.request, "echo", 9, timeout=BOUND) == 0
            # The message level follows it too, with the same record.
            ns.extra += TURN
            assert await schedule_points(port.send, {"id": 50, "op": "echo"}) == 1
            assert await schedule_points(port.receive) == 0
            ns.extra += TURN
            await port.send({"id": 51, "op": "echo"})  # takes the turn
            assert await schedule_points(port.receive) == 0
    assert waits == []


async def test_a_call_that_waited_starts_the_interval_again(
    fifo: tuple[str, int], waits: list[int], ns: FakeNs, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, release = fifo
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port, trio.open_nursery() as nursery:
            answering = reply_during_the_yield(port)
            monkeypatch.setattr(_port, "_sched_yield", answering)
            assert await schedule_points(port.request, "echo", 1) == 1  # t0
            ns.extra += TURN - 20_000  # just short of the interval
            # This one must wait for its reply: the yield brings nothing, and the
            # worker answers only when another task releases it.
            monkeypatch.setattr(_port, "_sched_yield", lambda: None)

            async def release_when_blocked() -> None:
                await trio.testing.wait_all_tasks_blocked()
                os.write(release, b"late\n")

            nursery.start_soon(release_when_blocked)
            assert await schedule_points(port.request, "wait", path) >= 1
            assert len(waits) == 1
            # Past t0's interval now, but not past the wait's: no turn owed.
            ns.extra += 30_000
            monkeypatch.setattr(_port, "_sched_yield", answering)
            assert await schedule_points(port.request, "echo", 2) == 0
            assert len(waits) == 1


async def test_a_call_within_the_interval_is_still_a_cancel_point(
    waits: list[int], ns: FakeNs, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            monkeypatch.setattr(_port, "_sched_yield", reply_during_the_yield(port))
            assert await port.request("echo", 1) == 1  # takes the turn
            for call in (
                lambda: port.request("echo", 2),
                lambda: port.send({"id": 60, "op": "echo"}),
                port.receive,
            ):
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await call()
                assert scope.cancelled_caught
            # Nothing was sent (a reply to it would now be out of step) or
            # abandoned, and the port carries on.
            assert port.abandoned_requests == 0
            assert await port.request("echo", 3) == 3
            assert await schedule_points(port.request, "echo", 4) == 0
    assert waits == []


@pytest.fixture
def pool_ns(ns: FakeNs, monkeypatch: pytest.MonkeyPatch) -> FakeNs:
    """The same fake clock for the pool's census of clients."""
    monkeypatch.setattr(_pool, "_ns", ns)
    return ns


async def execute_in_another_task(pool: Pool, value: int) -> None:
    """One more client: another task makes one call."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pool.execute, "echo", value)


def answer_every_port_during_the_yield(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    ports: list[Port] = [slot.resource for slot in pool._core.workers.values()]

    def fake_yield() -> None:  # whichever port is being read has its reply
        readable, _, _ = select.select([p._stdout_fd for p in ports], [], [], BOUND)
        assert readable

    monkeypatch.setattr(_port, "_sched_yield", fake_yield)


async def test_execute_with_two_clients_on_two_workers_gives_a_turn_once_per_interval(
    waits: list[int], pool_ns: FakeNs, monkeypatch: pytest.MonkeyPatch
) -> None:
    with trio.fail_after(BOUND):
        async with open_pool(CALC, size=2, health_interval=None) as pool:
            answer_every_port_during_the_yield(pool, monkeypatch)
            waits.clear()  # the handshakes' pings waited for their pongs
            # Two clients, two workers: the census counts both, and no crowd.
            await pool.execute("echo", 0)
            await execute_in_another_task(pool, 0)
            pool_ns.extra += 3 * TURN  # past the census: (2 + 1) turns
            assert await schedule_points(pool.execute, "echo", 1) == 1  # owed by now
            assert pool._crowded is False
            for value in range(2, 5):
                assert await schedule_points(pool.execute, "echo", value) == 0
                assert pool.statistics().idle == 2  # checked in all the same
            pool_ns.extra += TURN
            assert await schedule_points(pool.execute, "echo", 5) == 1
    assert waits == []


async def test_execute_gives_a_turn_at_every_call_with_more_than_two_clients(
    waits: list[int], pool_ns: FakeNs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even with a worker for each: every client that skips its turn makes the
    # others wait up to 0.25 ms more, so with many clients calls come in bursts.
    with trio.fail_after(BOUND):
        async with open_pool(CALC, size=4, health_interval=None) as pool:
            answer_every_port_during_the_yield(pool, monkeypatch)
            waits.clear()
            await pool.execute("echo", 0)
            await execute_in_another_task(pool, 0)
            await execute_in_another_task(pool, 0)
            pool_ns.extra += 3 * TURN  # past the census: (2 + 1) turns
            for value in range(1, 5):
                assert await schedule_points(pool.execute, "echo", value) == 1
    assert waits == []


async def test_execute_gives_a_turn_at_every_call_while_clients_outnumber_workers(
    waits: list[int], pool_ns: FakeNs, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Else a client would take its worker again and again while the clients it
    # keeps from running cannot queue for it: served in bursts, not in order.
    with trio.fail_after(BOUND):
        async with open_pool(CALC, size=1, health_interval=None) as pool:
            answer_every_port_during_the_yield(pool, monkeypatch)
            waits.clear()
            # One client alone keeps the port's rule.
            pool_ns.extra += CENSUS_OF_ONE
            assert await schedule_points(pool.execute, "echo", 1) == 1
            assert await schedule_points(pool.execute, "echo", 2) == 0
            # A second client: once a census has counted both, every call gives a turn.
            await execute_in_another_task(pool, 3)
            pool_ns.extra += CENSUS_OF_ONE
            for value in range(4, 8):
                assert await schedule_points(pool.execute, "echo", value) == 1
            # A lease's first request that does not wait gives one too, while it
            # holds the worker; the ones after it keep the port's rule.
            async with pool.checkout() as lease:
                assert await schedule_points(lease.request, "echo", 8) == 1
                assert await schedule_points(lease.request, "echo", 9) == 0
            # The second client gone: a census after a stall (over twice its
            # length) saw too little to clear the crowd; the next one does.
            pool_ns.extra += 3 * CENSUS_OF_ONE
            assert await schedule_points(pool.execute, "echo", 10) == 1
            assert await schedule_points(pool.execute, "echo", 11) == 1
            pool_ns.extra += CENSUS_OF_ONE
            assert await schedule_points(pool.execute, "echo", 12) == 1
            assert await schedule_points(pool.execute, "echo", 13) == 0
    assert waits == []


async def test_a_task_whose_calls_never_wait_still_lets_other_tasks_run(
    waits: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # On the real clock: one task makes requests, none of which waits, until it
    # has used LOOP seconds of CPU; another task notes the CPU time each time it
    # gets to run. Were the port never to give a turn, the other task would not
    # run at all until the loop ended. CPU time, not wall time, so that other
    # processes taking our CPU (a loaded CI machine) do not widen the gaps.
    loop = 0.1
    runs: list[float] = []
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            monkeypatch.setattr(_port, "_sched_yield", reply_during_the_yield(port))
            done = False

            async def other_task() -> None:
                while not done:
                    runs.append(time.thread_time())
                    await trio.lowlevel.checkpoint()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(other_task)
                start = time.thread_time()
                calls = 0
                while time.thread_time() - start < loop:
                    await port.request("echo", calls)
                    calls += 1
                end = time.thread_time()
                done = True
    during = [start, *(t for t in runs if start < t < end), end]
    longest_gap = max(b - a for a, b in itertools.pairwise(during))
    assert waits == []
    assert calls > 10
    # A turn per 0.25 ms of calls: the gaps are far below a quarter of the loop.
    assert longest_gap < loop / 4, (longest_gap, len(during))


async def test_a_pool_keeps_no_client_task_alive_after_its_block() -> None:
    # The census holds the tasks it counted until its next count; leaving the
    # pool's block forgets them, so a finished client (and its context) can go.
    refs: list[weakref.ref[trio.lowlevel.Task]] = []

    async def client(pool: Pool) -> None:
        refs.append(weakref.ref(trio.lowlevel.current_task()))
        await pool.execute("echo", 1)

    with trio.fail_after(BOUND):
        async with open_pool(CALC, size=1, health_interval=None) as pool:
            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(client, pool)
    gc.collect()
    assert [ref() for ref in refs] == [None] * 5
