"""The pool's Trio shell, driven with in-process workers on a virtual clock.

These exercise the same pool logic as port workers do (the factory is the only
difference), so each claim here holds for both; tests/integration/test_pool_ports.py
repeats the ones that involve processes.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from nursemaid import (
    CheckoutTimeout,
    PoolClosed,
    PortClosed,
    RemoteError,
    RequestTimeout,
    StartError,
    WorkerCrashed,
)
from nursemaid.workers._lifecycle import Transition, WorkerEvent, WorkerState
from nursemaid.workers._pool import Keep, Lease, Pool, Remove, open_pool
from nursemaid.workers._pool_core import SessionMoved
from nursemaid.workers._pool_inprocess import InProcessWorker, InProcessWorkers


class Fleet:
    """In-process workers that remember themselves, with a scriptable ping."""

    def __init__(self, handlers: dict[str, Callable[[Any], Any]] | None = None) -> None:
        self.workers: list[InProcessWorker] = []
        self.ping_delay = 0.0
        self.ping_fails = False
        self.ping_failures = 0  # fail this many pings, then answer again
        base: dict[str, Callable[[Any], Any]] = {
            "echo": lambda args: args,
            "boom": lambda args: 1 / 0,
            "sleep": self._sleep,
            "ping": self._ping,
        }
        base.update(handlers or {})
        self.factory = InProcessWorkers(base, on_open=self.workers.append)

    async def _sleep(self, seconds: float) -> str:
        await trio.sleep(seconds)
        return "slept"

    async def _ping(self, _: object) -> str:
        if self.ping_delay:
            await trio.sleep(self.ping_delay)
        if self.ping_fails:
            raise RuntimeError("ping refused")
        if self.ping_failures:
            self.ping_failures -= 1
            raise RuntimeError("ping refused once")
        return "pong"


async def test_execute_returns_the_handlers_result(autojump_clock: object) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=2) as pool:
        assert await pool.execute("echo", {"a": 1}) == {"a": 1}
        assert pool.statistics().idle == 2


async def test_remote_error_leaves_the_worker_in_the_pool(autojump_clock: object) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        with pytest.raises(RemoteError, match="ZeroDivisionError"):
            await pool.execute("boom")
        assert pool.statistics().restarts == 0
        assert len(fleet.workers) == 1


async def test_remote_error_escaping_the_block_does_not_poison_the_worker(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        with pytest.raises(RemoteError):
            async with pool.checkout() as lease:
                await lease.request("boom")
        stats = pool.statistics()
        assert stats.restarts == 0
        assert stats.idle == 1
        assert len(fleet.workers) == 1


async def test_exception_in_the_block_comes_out_unchanged_and_replaces_the_worker(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    error = ValueError("mine")
    async with open_pool(fleet.factory, size=1) as pool:
        with pytest.raises(ValueError) as info:
            async with pool.checkout():
                raise error
        assert info.value is error
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert stats.restarts == 1
        assert stats.idle == 1
        assert len(fleet.workers) == 2


async def test_exception_from_open_pool_block_is_not_wrapped_in_a_group(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    with pytest.raises(KeyError):
        async with open_pool(fleet.factory, size=1):
            raise KeyError("x")


async def test_cancelled_lease_without_request_in_flight_keeps_the_worker(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        with trio.move_on_after(1):
            async with pool.checkout():
                await trio.sleep_forever()
        assert pool.statistics().restarts == 0


async def test_cancelled_lease_with_request_in_flight_replaces_the_worker(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        with trio.move_on_after(1):
            async with pool.checkout() as lease:
                await lease.request("sleep", 10)
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().restarts == 1
        assert len(fleet.workers) == 2


@pytest.mark.parametrize("cut_short", ["timeout", "cancel"])
async def test_a_request_cut_short_through_lease_port_replaces_the_worker(
    autojump_clock: object, cut_short: str
) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        async with pool.checkout() as lease:
            if cut_short == "timeout":
                with pytest.raises(RequestTimeout):
                    await lease.port.request("sleep", 10, timeout=0.5)
            else:
                with trio.move_on_after(0.5):
                    await lease.port.request("sleep", 10)
            assert lease.port.abandoned_requests == 1
        # The block ended normally, but the handler was interrupted half-way.
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().restarts == 1
        assert len(fleet.workers) == 2


async def test_execute_timeout_bounds_the_request_and_replaces_the_worker(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        start = trio.current_time()
        with pytest.raises(Exception, match="no reply") as info:
            await pool.execute("sleep", 10, timeout=2.0)
        assert type(info.value).__name__ == "RequestTimeout"
        assert trio.current_time() - start == pytest.approx(2.0)
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().restarts == 1


async def test_checkout_timeout_raises_and_the_waiter_leaves_the_queue(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool, pool.checkout():
        start = trio.current_time()
        with pytest.raises(CheckoutTimeout, match=r"no worker became free within 0\.5 s"):
            async with pool.checkout(timeout=0.5):
                pass  # pragma: no cover
        assert trio.current_time() - start == pytest.approx(0.5)
        assert pool.statistics().waiting == 0


@pytest.mark.parametrize("hooked", [False, True])
async def test_checkout_timeout_option_is_the_default_wait_to_the_microsecond(
    autojump_clock: object, hooked: bool
) -> None:
    hooks: dict[str, Any] = {"handle_checkout": lambda lease: Keep()} if hooked else {}
    async with (
        open_pool(Fleet().factory, size=1, checkout_timeout=0.7, **hooks) as pool,
        pool.checkout(),
    ):
        start = trio.current_time()
        with pytest.raises(CheckoutTimeout, match=r"within 0\.7 s"):
            await pool.execute("echo", 1)
        assert trio.current_time() - start == pytest.approx(0.7)


async def test_the_pools_timer_times_each_waiter_out_at_its_own_deadline(
    autojump_clock: object,
) -> None:
    # Clients that leave the timeout to checkout_timeout share one timer task
    # (docs/pool.md, "Waiting for a worker"): each still times out exactly
    # checkout_timeout after it queued, one served first is not touched, and a
    # client queueing after a quiet spell (the timer parked) is timed too.
    fleet = Fleet()
    timed_out: dict[str, float] = {}
    served: list[str] = []

    async def client(name: str, pool: Pool) -> None:
        began = trio.current_time()
        try:
            async with pool.checkout():
                served.append(name)
        except CheckoutTimeout:
            timed_out[name] = trio.current_time() - began

    with trio.fail_after(60):
        async with open_pool(fleet.factory, size=1, checkout_timeout=2.0) as pool:
            async with trio.open_nursery() as nursery:
                async with pool.checkout():  # the only worker, held 2.7 s
                    nursery.start_soon(client, "a", pool)
                    await trio.sleep(0.5)
                    nursery.start_soon(client, "b", pool)  # its deadline: 0.5 s later
                    await trio.sleep(0.5)
                    nursery.start_soon(client, "c", pool)  # served at 2.7, before 3.0
                    await trio.sleep(1.7)
                    assert pool.statistics().waiting == 1  # a and b left the queue
            assert timed_out == {"a": pytest.approx(2.0), "b": pytest.approx(2.0)}
            assert served == ["c"]
            await trio.sleep(10)  # nobody queued: the timer parks
            async with pool.checkout():
                began = trio.current_time()
                with pytest.raises(CheckoutTimeout, match=r"within 2\.0 s"):
                    async with pool.checkout():
                        pass  # pragma: no cover
                assert trio.current_time() - began == pytest.approx(2.0)
            assert pool.statistics().waiting == 0


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
async def test_a_pool_refuses_calls_before_its_first_run_then_serves(lazy: bool) -> None:
    # Before run() there is no timer to time a queued client out and no nursery
    # to start a lazy pool's workers in: refused, as between runs, not queued.
    pool = Pool(Fleet().factory, size=1, lazy=lazy, checkout_timeout=1.0)
    with pytest.raises(PoolClosed, match="is not running yet"):
        await pool.execute("echo", 1)
    with pytest.raises(PoolClosed, match="is not running yet"):
        async with pool.checkout():
            pass  # pragma: no cover
    assert pool.statistics().waiting == 0
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        assert await pool.execute("echo", 2) == 2
        await pool.aclose()


@pytest.mark.parametrize("own_timeout", [True, False], ids=["own-scope", "pool-timer"])
def test_a_worker_freed_at_the_deadline_never_reaches_that_waiter(own_timeout: bool) -> None:
    # A lease that ends exactly at a waiter's deadline: the deadline wins, every
    # time, whichever task Trio happens to run first in that batch (each run
    # here reshuffles its batches), so MockClock tests see one outcome.
    async def once() -> str:
        async with open_pool(Fleet().factory, size=1, checkout_timeout=1.0) as pool:
            outcome = ""

            async def waiter() -> None:
                nonlocal outcome
                try:
                    async with pool.checkout(timeout=1.0 if own_timeout else None):
                        outcome = "served"
                except CheckoutTimeout:
                    outcome = "timed out"

            async with trio.open_nursery() as nursery:
                async with pool.checkout():
                    nursery.start_soon(waiter)
                    await trio.testing.wait_all_tasks_blocked()
                    await trio.sleep(1.0)  # the lease ends at the waiter's deadline
            return outcome

    outcomes = {
        trio.run(once, clock=trio.testing.MockClock(autojump_threshold=0)) for _ in range(40)
    }
    assert outcomes == {"timed out"}


@pytest.mark.parametrize("hooked", [False, True])
async def test_execute_timeout_counts_the_queueing_so_the_request_gets_only_whats_left(
    autojump_clock: object, hooked: bool
) -> None:
    hooks: dict[str, Any] = {"handle_checkin": lambda lease, exc: Keep()} if hooked else {}
    async with open_pool(Fleet().factory, size=1, **hooks) as pool:

        async def hold_for(seconds: float) -> None:
            async with pool.checkout():
                await trio.sleep(seconds)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hold_for, 0.4)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with pytest.raises(RequestTimeout):
                await pool.execute("sleep", 10, timeout=1.0)  # queues 0.4 s, then 0.6 s
            assert trio.current_time() - start == pytest.approx(1.0)


@pytest.mark.parametrize("timeout", [-1, float("nan"), "1"])
async def test_a_bad_timeout_is_a_value_error_before_any_worker_is_touched(
    autojump_clock: object, timeout: Any
) -> None:
    async with open_pool(Fleet().factory, size=1) as pool:
        message = r"^timeout must be a number of seconds >= 0, or None for no limit \(got "
        with pytest.raises(ValueError, match=message):
            await pool.execute("echo", 1, timeout=timeout)
        with pytest.raises(ValueError, match=message):
            pool.checkout(timeout=timeout)
        stats = pool.statistics()
        assert (stats.restarts, stats.checkouts, stats.idle) == (0, 0, 1)


async def test_waiters_are_served_first_come_first_served(autojump_clock: object) -> None:
    fleet = Fleet()
    served: list[int] = []
    async with open_pool(fleet.factory, size=1) as pool:

        async def client(i: int) -> None:
            async with pool.checkout(timeout=math.inf):
                served.append(i)
                await trio.sleep(1)

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(client, i)
                await trio.testing.wait_all_tasks_blocked()
    assert served == list(range(6))


async def test_lazy_pool_serves_simultaneous_first_clients_without_overspawning(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    fleet.ping_delay = 4.0  # slow init, still inside the 5 s checkout timeout
    results: list[object] = []
    async with open_pool(fleet.factory, size=3, lazy=True) as pool:
        assert pool.statistics().starting == 0
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(lambda i=i: _collect(pool, i, results))
        assert sorted(results) == list(range(20))  # type: ignore[type-var]
        assert len(fleet.workers) == 3


async def _collect(pool: Any, i: int, results: list[object]) -> None:
    results.append(await pool.execute("echo", i, timeout=math.inf))


async def test_eager_pool_that_cannot_start_fails_to_open_with_start_error(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    fleet.ping_fails = True
    with pytest.raises(StartError, match="pool gave up") as info:
        async with open_pool(fleet.factory, size=2):
            pytest.fail("the pool must not open")  # pragma: no cover
    assert "ping refused" in str(info.value)
    assert len(fleet.workers) <= 2 * (max(3, 2 * 2) + 1)


async def test_hanging_handshake_is_bounded_by_init_timeout(autojump_clock: object) -> None:
    fleet = Fleet()
    fleet.ping_delay = math.inf
    start = trio.current_time()
    with pytest.raises(StartError, match=r"got no reply within init_timeout=1\.0 s"):
        async with open_pool(fleet.factory, size=1, init_timeout=1.0, intensity=2):
            pass  # pragma: no cover
    assert trio.current_time() - start < 10


async def test_min_ready_opens_before_every_worker_is_ready(autojump_clock: object) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=3, min_ready=1) as pool:
        assert pool.statistics().idle >= 1


async def test_a_worker_that_dies_after_its_handshake_is_not_counted_ready_at_open(
    autojump_clock: object,
) -> None:
    # Worker 0 answers its handshake at once and dies at 0.5 s; worker 1's takes 1 s.
    # The pool opens when two workers are ready at the same time (at 1 s), not when
    # two handshakes have ever passed (at 0.5 s, with worker 1 still starting).
    delays = [0.0, 1.0]

    async def ping(_: object) -> str:
        await trio.sleep(delays.pop(0) if delays else 0.0)
        return "pong"

    fleet = Fleet({"ping": ping})
    pool = Pool(fleet.factory, size=2)

    async def kill_the_ready_one() -> None:
        await trio.sleep(0.5)
        (ready,) = [w.id for w in pool.statistics().workers if w.state is WorkerState.IDLE]
        next(w for w in fleet.workers if w.worker_id == ready).crash(1, "gone\n")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(kill_the_ready_one)
        await nursery.start(pool.run)
        stats = pool.statistics()
        assert (stats.idle, stats.starting) == (2, 0)
        assert trio.current_time() == pytest.approx(1.0)
        await pool.aclose()


async def test_checkin_hook_with_a_bad_return_removes_the_worker_and_the_pool_carries_on(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    fleet = Fleet()
    seen: list[object] = []

    def handle_checkin(lease: Lease, error: BaseException | None) -> object:
        return ("error", "nope")

    async with open_pool(fleet.factory, size=1, handle_checkin=handle_checkin) as pool:
        pool.subscribe(seen.append)
        assert await pool.execute("echo", 1) == 1
        await trio.testing.wait_all_tasks_blocked()
        assert await pool.execute("echo", 2) == 2
    stops = [t for t in seen if isinstance(t, Transition) and t.to_state is WorkerState.STOPPING]
    assert "handle_checkin returned a value outside its contract" in stops[0].cause
    assert "Expected: Keep() or Remove(reason: str)" in stops[0].cause
    assert "Got: ('error', 'nope')" in stops[0].cause
    assert "Expected:" in caplog.text


async def test_checkout_hook_remove_gives_the_client_another_worker(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    refused: list[int] = []

    def handle_checkout(lease: Lease) -> Keep | Remove:
        if not refused:
            refused.append(lease.worker_id)
            return Remove("first one is stale")
        return Keep()

    async with open_pool(fleet.factory, size=1, handle_checkout=handle_checkout) as pool:
        async with pool.checkout() as lease:
            assert lease.worker_id != refused[0]


@pytest.mark.parametrize(
    "refusal",
    [Remove("stale"), ("error", "x"), RuntimeError("hook broke")],
    ids=["remove", "bad-value", "raises"],
)
async def test_a_checkout_hook_that_refuses_every_worker_ends_in_start_error_not_a_spin(
    autojump_clock: object, refusal: object
) -> None:
    calls: list[int] = []

    def handle_checkout(lease: Lease) -> Any:
        calls.append(lease.worker_id)
        if len(calls) > 50:  # a spin never blocks, so no virtual deadline could end it
            pytest.fail(f"the pool spun through {len(calls)} workers")
        if isinstance(refusal, Exception):
            raise refusal
        return refusal

    refused: list[BaseException] = []

    async def body() -> None:
        async with open_pool(
            Fleet().factory, size=1, intensity=3, handle_checkout=handle_checkout
        ) as pool:
            try:
                async with pool.checkout(timeout=math.inf):
                    pass  # pragma: no cover
            except PoolClosed as exc:
                refused.append(exc)
            await trio.sleep_forever()  # the pool's failure cancels the block

    start = trio.current_time()
    with pytest.raises(StartError, match="pool gave up") as info:
        await body()
    # Intensity 3: the fourth removal within the period gives up; the client gets
    # the clear error at once, not after its (infinite) timeout.
    assert len(calls) == 4
    assert trio.current_time() - start < 1.0
    assert "handle_checkout removed worker 3" in str(info.value)
    assert isinstance(refused[0].__cause__, StartError)


async def test_a_checkout_with_a_refusing_hook_keeps_one_deadline_for_the_whole_checkout(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    fleet.ping_delay = 0.3  # each replacement takes 0.3 s to handshake
    async with open_pool(
        fleet.factory, size=1, intensity=1000, handle_checkout=lambda lease: Remove("stale")
    ) as pool:
        await trio.sleep(1)  # the first worker is idle
        start = trio.current_time()
        with trio.fail_after(60), pytest.raises(CheckoutTimeout, match=r"within 1\.0 s"):
            async with pool.checkout(timeout=1.0):
                pass  # pragma: no cover
        assert trio.current_time() - start == pytest.approx(1.0)


def _stop_causes(seen: list[object]) -> list[str]:
    return [t.cause for t in seen if isinstance(t, Transition) and t.event.name == "STOP"]


@pytest.mark.parametrize("call", ["checkout", "execute"])
async def test_a_checkout_hook_that_hangs_ends_in_checkout_timeout_and_keeps_its_idle_worker(
    autojump_clock: object, call: str
) -> None:
    # Cut short with nothing unfinished on the worker: the worker is fine, and a
    # pool that killed it would, under load, kill a healthy worker per late client.
    async def handle_checkout(lease: Lease) -> Keep:
        await trio.sleep_forever()

    seen: list[object] = []
    async with open_pool(
        Fleet().factory, size=1, handle_checkout=handle_checkout, subscribers=[seen.append]
    ) as pool:

        async def check_out() -> None:
            if call == "checkout":
                async with pool.checkout(timeout=1.0):
                    pass  # pragma: no cover
            else:
                await pool.execute("echo", 1, timeout=1.0)

        start = trio.current_time()
        with (
            trio.fail_after(60),
            pytest.raises(CheckoutTimeout, match="ran out of time in handle_checkout") as info,
        ):
            await check_out()
        assert trio.current_time() - start == pytest.approx(1.0)
        assert "the hook held worker 0 for 1 s of the checkout's 1.0 s" in str(info.value)
        assert "had nothing unfinished and stays in the pool" in str(info.value)
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert (stats.leased, stats.restarts, stats.idle) == (0, 0, 1)  # kept
        assert [w.id for w in stats.workers] == [0]
        assert _stop_causes(seen) == []


async def test_a_checkout_hook_cut_short_in_the_middle_of_a_request_replaces_the_worker(
    autojump_clock: object,
) -> None:
    async def handle_checkout(lease: Lease) -> Keep:
        await lease.request("sleep", 60)  # still running on the worker at the deadline
        return Keep()  # pragma: no cover

    seen: list[object] = []
    async with open_pool(
        Fleet().factory, size=1, handle_checkout=handle_checkout, subscribers=[seen.append]
    ) as pool:
        with trio.fail_after(60), pytest.raises(CheckoutTimeout) as info:
            await pool.execute("echo", 1, timeout=1.0)
        assert "removed and replaced, as it was still busy with a request" in str(info.value)
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert (stats.leased, stats.restarts) == (0, 1)
        assert [w.id for w in stats.workers] == [1]
    assert _stop_causes(seen)[0] == (
        "handle_checkout ended with a request in flight, cut short by the checkout's "
        "deadline (1.0 s)"
    )


async def test_a_checkout_hook_that_keeps_a_worker_it_left_busy_refuses_it_in_effect(
    autojump_clock: object,
) -> None:
    async def handle_checkout(lease: Lease) -> Keep:
        if lease.worker_id == 0:
            with trio.move_on_after(0.1):
                await lease.request("sleep", 60)  # abandoned: the worker is still on it
        return Keep()

    seen: list[object] = []
    async with open_pool(
        Fleet().factory, size=1, handle_checkout=handle_checkout, subscribers=[seen.append]
    ) as pool:
        with trio.fail_after(60):
            async with pool.checkout(timeout=5.0) as lease:
                assert lease.worker_id == 1  # not the busy one
                assert await lease.request("echo", 2) == 2
    assert _stop_causes(seen)[0].startswith(
        "handle_checkout returned Keep() but ended with a request in flight"
    )


async def test_one_checkout_deadline_covers_the_queueing_and_a_slow_checkout_hook(
    autojump_clock: object,
) -> None:
    async def handle_checkout(lease: Lease) -> Keep:
        await trio.sleep(0.6)
        return Keep()

    async with open_pool(Fleet().factory, size=1, handle_checkout=handle_checkout) as pool:

        async def first() -> None:
            async with pool.checkout():  # hook until 0.6, then held until 0.7
                await trio.sleep(0.1)

        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            nursery.start_soon(first)
            await trio.testing.wait_all_tasks_blocked()
            # Queued until 0.7, then 0.3 s of the hook's 0.6 s fit in the 1.0 s.
            with pytest.raises(CheckoutTimeout, match=r"for 0\.3 s of the checkout's 1\.0 s"):
                async with pool.checkout(timeout=1.0):
                    pass  # pragma: no cover
            assert trio.current_time() - start == pytest.approx(1.0)


async def test_checkout_hooks_cut_short_by_the_deadline_do_not_count_against_the_restart_window(
    autojump_clock: object,
) -> None:
    hangs = [True, True, True]

    async def handle_checkout(lease: Lease) -> Keep:
        if hangs:
            hangs.pop()
            await lease.request("sleep", 60)  # cut short mid-request: the worker is removed
        return Keep()

    async with open_pool(
        Fleet().factory, size=1, intensity=1, period=100.0, handle_checkout=handle_checkout
    ) as pool:
        for _ in range(3):
            with trio.fail_after(60), pytest.raises(CheckoutTimeout):
                await pool.execute("echo", 1, timeout=0.5)
        # Three removals within the period, intensity 1: the pool still serves.
        assert await pool.execute("echo", 2, timeout=5.0) == 2
        assert pool.statistics().restarts == 3


@pytest.mark.parametrize("in_nursery", [False, True], ids=["awaiting", "in a nursery"])
@pytest.mark.parametrize("busy", [False, True], ids=["idle", "mid-request"])
async def test_a_client_cancelled_inside_its_checkout_hook_never_leaks_the_worker(
    autojump_clock: object, busy: bool, in_nursery: bool
) -> None:
    # The worker stays if the hook left nothing on it, and is replaced if it did.
    # A hook that waits in a nursery is cancelled with a group of Cancelled: the
    # same cancellation, judged the same way.
    entered = trio.Event()

    async def wait(lease: Lease) -> None:
        entered.set()  # the request below is in flight before anyone else runs
        if busy:
            await lease.request("sleep", 60)
        await trio.sleep_forever()

    async def handle_checkout(lease: Lease) -> Keep:
        if not entered.is_set():
            if in_nursery:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(wait, lease)
            else:
                await wait(lease)
        return Keep()

    async def client(pool: Any) -> None:
        async with pool.checkout(timeout=math.inf):
            pytest.fail("the cancelled client got its lease")  # pragma: no cover

    seen: list[object] = []
    async with open_pool(
        Fleet().factory, size=1, handle_checkout=handle_checkout, subscribers=[seen.append]
    ) as pool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client, pool)
            await entered.wait()
            nursery.cancel_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert (stats.leased, stats.restarts) == (0, 1 if busy else 0)
        with trio.fail_after(1):  # the next client is served (by the replacement, if any)
            async with pool.checkout() as lease:
                assert lease.worker_id == (1 if busy else 0)
        expected = ["handle_checkout (cancelled) ended with a request in flight"] if busy else []
        assert _stop_causes(seen) == expected


async def test_a_checkin_hook_interrupted_by_keyboard_interrupt_never_strands_the_worker(
    autojump_clock: object,
) -> None:
    def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        raise KeyboardInterrupt

    seen: list[object] = []
    async with open_pool(
        Fleet().factory, size=1, handle_checkin=handle_checkin, subscribers=[seen.append]
    ) as pool:
        with pytest.raises(KeyboardInterrupt):
            async with pool.checkout():
                pass
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert (stats.leased, stats.restarts, stats.idle) == (0, 1, 1)  # not left RETURNING
    assert "handle_checkin was interrupted (KeyboardInterrupt)" in _stop_causes(seen)[0]


async def test_new_sessions_spread_over_the_idle_workers(autojump_clock: object) -> None:
    async with open_pool(Fleet().factory, size=3) as pool:
        workers = []
        for session in ("a", "b", "c"):
            async with pool.checkout(session=session) as lease:
                workers.append(lease.worker_id)
        assert len(set(workers)) == 3
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            for session in ("a", "b", "c"):
                nursery.start_soon(lambda s: pool.execute("sleep", 0.3, session=s), session)
        assert trio.current_time() - start == pytest.approx(0.3)  # side by side


async def test_session_affinity_and_move_after_crash(autojump_clock: object) -> None:
    fleet = Fleet()
    seen: list[object] = []
    async with open_pool(fleet.factory, size=3) as pool:
        pool.subscribe(seen.append)
        async with pool.checkout(session="alice") as lease:
            first = lease.worker_id
        for _ in range(3):
            async with pool.checkout(session="alice") as lease:
                assert lease.worker_id == first
        next(w for w in fleet.workers if w.worker_id == first).crash(1, "segfault\n")
        await trio.testing.wait_all_tasks_blocked()
        async with pool.checkout(session="alice") as lease:
            assert lease.worker_id != first
            second = lease.worker_id
    assert next(e for e in seen if isinstance(e, SessionMoved)).to_worker == second


async def test_a_session_moves_once_however_many_workers_its_checkout_hook_refuses(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    seen: list[object] = []
    verdicts: list[Keep | Remove] = []

    def hook(lease: Lease) -> Keep | Remove:
        return verdicts.pop(0) if verdicts else Keep()

    async with open_pool(fleet.factory, size=3, handle_checkout=hook, intensity=10) as pool:
        pool.subscribe(seen.append)
        verdicts.append(Remove("not this one"))  # a new session's first worker
        async with pool.checkout(session="s") as lease:
            first = lease.worker_id
        assert not [e for e in seen if isinstance(e, SessionMoved)]
        next(w for w in fleet.workers if w.worker_id == first).crash(1, "gone\n")
        await trio.testing.wait_all_tasks_blocked()
        verdicts.extend([Remove("no"), Remove("nor this")])
        async with pool.checkout(session="s") as lease:
            kept = lease.worker_id
    moves = [(e.from_worker, e.to_worker) for e in seen if isinstance(e, SessionMoved)]
    assert moves == [(first, kept)]


async def test_a_session_of_a_pool_that_runs_again_says_it_moved(autojump_clock: object) -> None:
    fleet = Fleet()
    seen: list[object] = []
    pool = Pool(fleet.factory, size=1, subscribers=[seen.append])
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        async with pool.checkout(session="s") as lease:
            first = lease.worker_id
        await pool.aclose()
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        async with pool.checkout(session="s") as lease:
            second = lease.worker_id
        await pool.aclose()
    moves = [(e.session, e.from_worker, e.to_worker) for e in seen if isinstance(e, SessionMoved)]
    assert moves == [("s", first, second)]


async def test_an_ended_session_leaves_nothing_behind_in_the_pool(autojump_clock: object) -> None:
    async with open_pool(Fleet().factory, size=2, max_uses=1) as pool:
        for i in range(50):
            await pool.execute("echo", i, session=f"one-off {i}")
            pool.end_session(f"one-off {i}")
        core = pool._core
        assert (core.sessions, core.bound) == ({}, {})


@pytest.mark.parametrize("hooked", [False, True], ids=["no hook", "refusing hook"])
async def test_an_ended_sessions_queued_client_never_moves_the_new_session_off_its_live_worker(
    autojump_clock: object, hooked: bool
) -> None:
    # S holds worker A with a client queued for A; S is ended and a new client of S
    # takes worker B; then A dies. The queued client must join B (S's live worker),
    # not take a third worker and move S off B while B serves it.
    fleet = Fleet()
    seen: list[object] = []
    refuse = [True] if hooked else []

    def hook(lease: Lease) -> Keep | Remove:
        return Remove("refused") if refuse and refuse.pop() else Keep()

    options: dict[str, Any] = {"handle_checkout": hook} if hooked else {}
    async with open_pool(fleet.factory, size=3, intensity=10, **options) as pool:
        pool.subscribe(seen.append)
        old_in, new_in, release = trio.Event(), trio.Event(), trio.Event()
        where: dict[str, int] = {}

        async def hold(name: str, entered: trio.Event) -> None:
            async with pool.checkout(session="S") as lease:
                where[name] = lease.worker_id
                entered.set()
                await release.wait()

        async def queued() -> None:
            async with pool.checkout(session="S") as lease:
                where["queued"] = lease.worker_id

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hold, "old", old_in)
            await old_in.wait()
            nursery.start_soon(queued)
            await trio.testing.wait_all_tasks_blocked()
            pool.end_session("S")
            nursery.start_soon(hold, "new", new_in)
            await new_in.wait()
            next(w for w in fleet.workers if w.worker_id == where["old"]).crash(1, "gone\n")
            await trio.testing.wait_all_tasks_blocked()
            core = pool._core
            assert core.sessions == {"S": where["new"]}
            assert core.bound == {where["new"]: 1}
            assert not [e for e in seen if isinstance(e, SessionMoved)]
            release.set()
        assert where["queued"] == where["new"]


async def test_an_eager_pool_serving_and_recycling_while_it_opens_still_opens(
    autojump_clock: object,
) -> None:
    # Clients are served while the pool opens, and max_uses=1 recycles each worker:
    # a count of workers ready at one instant may never reach min_ready then.
    pings = iter(range(1000))

    async def ping(_: object) -> str:
        n = next(pings)
        if n >= 1:
            await trio.sleep(1.0 + 0.3 * n)  # no two handshakes end together
        return "pong"

    fleet = Fleet({"ping": ping})
    pool = Pool(fleet.factory, size=2, min_ready=2, max_uses=1)
    opened = trio.Event()

    async def open_it(nursery: trio.Nursery) -> None:
        await nursery.start(pool.run)
        opened.set()

    async def client() -> None:
        while True:
            await pool.execute("echo", 1, timeout=30)
            await trio.sleep(0.05)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(open_it, nursery)
        while not pool._runs:  # run() has begun: the pool serves clients as it opens
            await trio.sleep(0)
        nursery.start_soon(client)
        nursery.start_soon(client)
        with trio.fail_after(20):
            await opened.wait()
        nursery.cancel_scope.cancel()


async def test_crash_mid_request_raises_worker_crashed_and_replaces(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        async with pool.checkout() as lease:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_crash_soon, fleet.workers[0])
                with pytest.raises(WorkerCrashed, match="crashed") as info:
                    await lease.request("sleep", 10)
                assert info.value.returncode == 139
                assert info.value.stderr_tail == "Segmentation fault\n"
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert stats.restarts == 1
        assert stats.idle == 1


async def _crash_soon(worker: InProcessWorker) -> None:
    await trio.sleep(1)
    worker.crash(139, "Segmentation fault\n")


async def test_max_uses_recycles_workers(autojump_clock: object) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1, max_uses=3) as pool:
        for i in range(7):
            assert await pool.execute("echo", i) == i
            await trio.testing.wait_all_tasks_blocked()
    assert len(fleet.workers) == 3


async def test_idle_timeout_retires_idle_workers_of_a_lazy_pool(autojump_clock: object) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=2, lazy=True, idle_timeout=10.0) as pool:
        await pool.execute("echo", 1)
        assert pool.statistics().idle == 1
        await trio.sleep(11)
        assert pool.statistics().idle == 0


async def test_health_check_replaces_a_worker_that_stops_answering(autojump_clock: object) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1, health_interval=10.0, init_timeout=1.0) as pool:
        fleet.ping_failures = 1
        await trio.sleep(11)
        assert pool.statistics().restarts >= 1
        assert await pool.execute("echo", 5) == 5


async def test_health_pings_are_not_client_leases(autojump_clock: object) -> None:
    # The pool pinging an idle worker is not a use of it: its idle time still
    # counts from its last client (a ping every 10 s must not keep a worker idle
    # for 45 s alive for ever), max_uses and the statistics count clients only,
    # and the ping leaves it where it was in the idle stack.
    seen: list[object] = []
    async with open_pool(
        Fleet().factory,
        size=2,
        lazy=True,
        idle_timeout=45.0,
        health_interval=10.0,
        max_uses=3,  # pings counted as uses would recycle both by now
        subscribers=[seen.append],
    ) as pool:
        async with pool.checkout() as first, pool.checkout() as second:
            assert first.worker_id != second.worker_id
        # `second` went back first, so `first` is on top of the idle stack
        assert pool.statistics().checkouts == 2
        await trio.sleep(25)  # pinged twice each meanwhile
        events = [t.event.name for t in seen if isinstance(t, Transition)]
        assert events.count("CHECK") >= 4
        assert events.count("CHECKOUT") == 2  # the clients' only
        stats = pool.statistics()
        assert (stats.checkouts, [w.uses for w in stats.workers]) == (2, [1, 1])
        assert stats.lease_time_max == 0.0
        async with pool.checkout() as again:
            assert again.worker_id == first.worker_id  # still the top of the stack
        await trio.sleep(30)  # `second` last served a client 55 s ago, `first` 30 s ago
        assert [w.id for w in pool.statistics().workers] == [first.worker_id]
        assert "idle for 45.0 s" in _stop_causes(seen)[0]
        assert pool.statistics().restarts == 0


async def test_checkout_after_close_raises_pool_closed(autojump_clock: object) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        pass
    with pytest.raises(PoolClosed, match="is closed"):
        await pool.execute("echo", 1)


async def test_close_waits_for_leases_up_to_the_grace_then_removes_them(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    outcome: list[object] = []
    async with trio.open_nursery() as nursery:
        async with open_pool(fleet.factory, size=1, close_grace=3.0) as pool:

            async def holder() -> None:
                try:
                    async with pool.checkout() as lease:
                        await lease.request("sleep", 100)
                except Exception as exc:
                    outcome.append(type(exc).__name__)

            nursery.start_soon(holder)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
        assert trio.current_time() - start == pytest.approx(3.0)
    assert outcome == ["PortClosed"]
    assert all(w.returncode is not None for w in fleet.workers)


async def test_waiters_get_pool_closed_when_the_pool_closes(autojump_clock: object) -> None:
    fleet = Fleet()
    errors: list[BaseException] = []
    async with trio.open_nursery() as nursery:
        async with open_pool(fleet.factory, size=1, close_grace=0.0) as pool:
            lease_cm = pool.checkout()
            await lease_cm.__aenter__()

            async def waiter() -> None:
                try:
                    await pool.execute("echo", 1, timeout=math.inf)
                except PoolClosed as exc:
                    errors.append(exc)

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics().waiting == 1
        await lease_cm.__aexit__(None, None, None)
    assert len(errors) == 1


async def test_statistics_report_wait_and_lease_times(autojump_clock: object) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        async with trio.open_nursery() as nursery:

            async def hold(seconds: float) -> None:
                async with pool.checkout():
                    await trio.sleep(seconds)

            nursery.start_soon(hold, 2.0)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(hold, 1.0)
        stats = pool.statistics()
    assert stats.checkouts == 2
    assert stats.waits == 1
    assert stats.wait_time_max == pytest.approx(2.0)
    assert stats.lease_time_total == pytest.approx(3.0)
    assert stats.lease_time_max == pytest.approx(2.0)


async def test_pool_run_is_a_supervisor_start_and_stopping_closes_the_pool(
    autojump_clock: object,
) -> None:
    from nursemaid import ChildSpec, open_supervisor
    from nursemaid.workers._pool import Pool

    fleet = Fleet()
    pool = Pool(fleet.factory, size=2)
    async with open_supervisor([ChildSpec("workers", pool.run)]) as supervisor:
        assert supervisor.which_children()[0].handle is pool
        assert await pool.execute("echo", 7) == 7
    with pytest.raises(PoolClosed):
        await pool.execute("echo", 8)
    assert all(w.returncode is not None for w in fleet.workers)


_CLIENT_MARK: contextvars.ContextVar[str] = contextvars.ContextVar("client_mark", default="pool")


async def test_a_replacement_started_on_a_clients_checkin_runs_in_the_pools_context(
    autojump_clock: object,
) -> None:
    from nursemaid import ChildSpec, open_supervisor
    from nursemaid.supervisor import current_shutdown
    from nursemaid.workers._pool import Pool

    seen: list[tuple[float | None, str]] = []  # (current_shutdown(), mark) per new worker
    factory = InProcessWorkers(
        {"echo": lambda args: args},
        on_open=lambda worker: seen.append((current_shutdown(), _CLIENT_MARK.get())),
    )
    pool = Pool(factory, size=1)
    async with open_supervisor([ChildSpec("workers", pool.run, shutdown=0.3)]):
        _CLIENT_MARK.set("client")  # this task's context, not the pool's
        with pytest.raises(ValueError):
            async with pool.checkout():
                raise ValueError("removes the worker: its replacement starts from here")
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().restarts == 1
    # The replacement sees the supervised child's shutdown (so its port's grace is
    # 0.3 s, not the default 5 s) and none of the client's context variables.
    assert seen == [(0.3, "pool"), (0.3, "pool")]


async def test_a_pool_runs_one_run_at_a_time_and_again_after_it_ended(
    autojump_clock: object,
) -> None:
    from nursemaid import UsageError
    from nursemaid.workers._pool import Pool

    fleet = Fleet()
    pool = Pool(fleet.factory, size=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        with pytest.raises(UsageError, match="is running already; a pool runs once at a time"):
            await pool.run()
        assert await pool.execute("echo", 1) == 1
        await pool.aclose()
    with pytest.raises(PoolClosed):
        await pool.execute("echo", 2)
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        assert await pool.execute("echo", 3) == 3
        assert [w.id for w in pool.statistics().workers] == [1]  # ids go on
        await pool.aclose()
    assert [w.returncode is not None for w in fleet.workers] == [True, True]


async def test_a_supervisor_restarts_a_pool_that_gave_up_once_its_workers_start_again(
    autojump_clock: object,
) -> None:
    from nursemaid import ChildSpec, open_supervisor
    from nursemaid.workers._pool import Pool

    fleet = Fleet()
    back = trio.Event()

    def watch(event: object) -> None:
        # worker 0 crashed, worker 1 failed its handshake: 2 is the restarted pool's
        if isinstance(event, Transition) and (event.to_state, event.worker_id >= 2) == (
            WorkerState.IDLE,
            True,
        ):
            back.set()

    pool = Pool(fleet.factory, size=1, intensity=1, subscribers=[watch])
    async with open_supervisor([ChildSpec("workers", pool.run)]) as supervisor:
        assert await pool.execute("echo", 1) == 1
        fleet.ping_failures = 1  # the program is broken for one start, then fixed
        fleet.workers[0].crash(1, "segfault\n")
        with trio.fail_after(60):
            await back.wait()
        await trio.testing.wait_all_tasks_blocked()  # the pool's run reports started
        child = supervisor.which_children()[0]
        assert (child.handle, child.restarts) == (pool, 1)
        assert await pool.execute("echo", 2) == 2


async def test_open_pool_raises_start_error_alone_when_the_block_raises_as_the_pool_gives_up(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    block_error = ValueError("clean-up failed")

    async def body() -> None:
        async with open_pool(fleet.factory, size=1, intensity=1):
            fleet.ping_fails = True
            fleet.workers[0].crash(1, "segfault\n")  # its replacement cannot start
            try:
                await trio.sleep_forever()  # the pool's failure cancels the block
            finally:
                raise block_error

    with pytest.raises(StartError, match="pool gave up") as info:
        await body()
    assert info.value.__context__ is block_error
    assert any("clean-up failed" in note for note in info.value.__notes__)


async def test_open_pool_lets_keyboard_interrupt_through_beside_the_start_error(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    with pytest.RaisesGroup(StartError, KeyboardInterrupt):
        async with open_pool(fleet.factory, size=1, intensity=1):
            fleet.ping_fails = True
            fleet.workers[0].crash(1, "segfault\n")
            try:
                await trio.sleep_forever()
            finally:
                raise KeyboardInterrupt


async def test_lazy_pool_that_gives_up_fails_waiters_and_raises_start_error_from_open_pool(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    fleet.ping_fails = True
    refused: list[BaseException] = []

    async def body() -> None:
        async with open_pool(fleet.factory, size=1, lazy=True, intensity=2) as pool:
            try:
                await pool.execute("echo", 1, timeout=math.inf)
            except PoolClosed as exc:
                refused.append(exc)
            await trio.sleep_forever()  # the pool's failure cancels the block

    with pytest.raises(StartError, match="pool gave up") as info:
        await body()
    assert "ping refused" in str(info.value)
    assert "the pool gave up and closed" in str(refused[0])
    assert isinstance(refused[0].__cause__, StartError)
    assert all(w.returncode is not None for w in fleet.workers)


@pytest.mark.parametrize(
    ("worker", "options", "error", "match"),
    [
        ("python worker.py", {}, TypeError, "got the string 'python worker.py'"),
        (42, {}, TypeError, "a WorkerFactory"),
        (InProcessWorkers({}), {"envelope": object()}, TypeError, "envelope applies to argv"),
        (InProcessWorkers({}), {"min_ready": -1}, ValueError, r"min_ready must be None or"),
        (InProcessWorkers({}), {"min_ready": 3}, ValueError, r"min_ready must be <= size=2"),
        (InProcessWorkers({}), {"init_timeout": -1}, ValueError, "init_timeout must be"),
        (InProcessWorkers({}), {"idle_timeout": 0}, ValueError, r"idle_timeout must be .* > 0"),
        (InProcessWorkers({}), {"checkout_timeout": math.nan}, ValueError, "checkout_timeout"),
        (InProcessWorkers({}), {"size": 0}, ValueError, r"pool size must be an int >= 1"),
    ],
)
def test_bad_options_are_refused_before_anything_starts(
    worker: object, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    from nursemaid.workers._pool import Pool

    options = {"size": 2, **options}
    with pytest.raises(error, match=match):
        Pool(worker, **options)  # type: ignore[arg-type]


async def test_a_lease_cannot_be_used_after_its_block(autojump_clock: object) -> None:
    from nursemaid import UsageError

    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        async with pool.checkout(session="s") as lease:
            assert repr(lease) == "<Lease worker 0 session='s'>"
        with pytest.raises(UsageError, match="lease of worker 0 has ended"):
            await lease.request("echo", 1)


async def test_execute_with_a_timeout_keeps_the_worker_after_a_remote_error(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        with pytest.raises(RemoteError):
            await pool.execute("boom", timeout=5.0)
        assert pool.statistics().restarts == 0


async def test_async_hooks_run_for_execute_too(autojump_clock: object) -> None:
    calls: list[str] = []

    async def handle_checkout(lease: Lease) -> Keep:
        calls.append("out")
        return Keep()

    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep | Remove:
        calls.append(f"in {type(error).__name__}")
        return Keep()

    fleet = Fleet()
    async with open_pool(
        fleet.factory, size=1, handle_checkout=handle_checkout, handle_checkin=handle_checkin
    ) as pool:
        assert await pool.execute("echo", 1, timeout=5.0) == 1
        with pytest.raises(RemoteError):
            await pool.execute("boom")
        assert pool.statistics().restarts == 0
    assert calls == ["out", "in NoneType", "out", "in RemoteError"]


async def test_a_checkin_hook_that_hangs_or_raises_removes_the_worker(
    autojump_clock: object,
) -> None:
    behaviour = ["hang"]

    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        if behaviour.pop(0) == "hang":
            await trio.sleep_forever()
        raise RuntimeError("hook bug")

    fleet = Fleet()
    seen: list[object] = []
    async with open_pool(
        fleet.factory,
        size=1,
        init_timeout=1.0,
        handle_checkin=handle_checkin,
        subscribers=[seen.append],
    ) as pool:
        behaviour.append("raise")
        await pool.execute("echo", 1)
        await trio.testing.wait_all_tasks_blocked()
        await pool.execute("echo", 2)
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().restarts == 2
    causes = [t.cause for t in seen if isinstance(t, Transition) and t.event.name == "STOP"]
    assert "handle_checkin did not return within 1.0 s" in causes[0]
    assert "handle_checkin raised RuntimeError: hook bug" in causes[1]


# ---- handle_checkin talks to its worker through the lease ---------------------------


def _notebook() -> tuple[Fleet, list[object]]:
    """A pool of one worker that keeps notes across leases unless it is reset."""
    notes: list[object] = []
    fleet = Fleet(
        {"note": notes.append, "notes": lambda _: list(notes), "reset": lambda _: notes.clear()}
    )
    return fleet, notes


@pytest.mark.parametrize("call", ["checkout", "execute"])
async def test_a_checkin_hook_resets_its_worker_through_the_lease_and_the_worker_stays(
    autojump_clock: object, call: str
) -> None:
    from nursemaid import UsageError

    fleet, notes = _notebook()
    leases: list[Lease] = []

    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        leases.append(lease)
        await lease.request("reset")
        return Keep()

    async with open_pool(fleet.factory, size=1, handle_checkin=handle_checkin) as pool:
        if call == "checkout":
            async with pool.checkout() as lease:
                await lease.request("note", "secret")
                assert notes == ["secret"]
        else:
            await pool.execute("note", "secret", timeout=5.0)
        assert notes == []  # cleared before the lease ended
        async with pool.checkout() as lease:
            assert lease.worker_id == 0
            assert await lease.request("notes") == []
        stats = pool.statistics()
        assert (stats.restarts, stats.idle, stats.leased) == (0, 1, 0)
        with pytest.raises(UsageError, match="lease of worker 0 has ended"):
            await leases[0].request("notes")


async def test_a_client_queued_while_the_checkin_hook_resets_the_worker_gets_it_only_after(
    autojump_clock: object,
) -> None:
    notes: list[object] = []

    async def reset(_: object) -> None:
        await trio.sleep(1.0)
        notes.clear()

    fleet = Fleet({"note": notes.append, "notes": lambda _: list(notes), "reset": reset})

    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        await lease.request("reset")
        return Keep()

    seen: list[object] = []
    async with open_pool(
        fleet.factory, size=1, handle_checkin=handle_checkin, subscribers=[seen.append]
    ) as pool:

        async def first() -> None:
            async with pool.checkout() as lease:
                await lease.request("note", "secret")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            await trio.testing.wait_all_tasks_blocked()
            # first's block is over; its hook is resetting the worker.
            assert [w.state for w in pool.statistics().workers] == [WorkerState.RETURNING]
            start = trio.current_time()
            async with pool.checkout() as lease:
                assert trio.current_time() - start == pytest.approx(1.0)
                assert lease.worker_id == 0
                assert await lease.request("notes") == []
    moves = [t.to_state for t in seen if isinstance(t, Transition) and t.worker_id == 0]
    assert moves[moves.index(WorkerState.LEASED) :][:6] == [
        WorkerState.LEASED,
        WorkerState.RETURNING,
        WorkerState.IDLE,
        WorkerState.LEASED,
        WorkerState.RETURNING,
        WorkerState.IDLE,
    ]


@pytest.mark.parametrize(
    ("ending", "cause"),
    [
        ("hangs in its request", "handle_checkin did not return within 1.0 s"),
        ("swallows a lease.request timeout", "handle_checkin ended with a request in flight"),
        (
            "swallows a lease.port.request timeout",
            "handle_checkin ended with 1 abandoned request(s) still unanswered",
        ),
        ("raises after cutting its request short", "handle_checkin raised RuntimeError: gave up"),
        (
            "is interrupted after cutting its request short",
            "handle_checkin was interrupted (KeyboardInterrupt)",
        ),
    ],
)
async def test_a_request_the_checkin_hook_leaves_unfinished_removes_the_worker(
    autojump_clock: object, ending: str, cause: str
) -> None:
    started: list[object] = []

    async def hold(seconds: float) -> str:
        started.append(seconds)
        await trio.sleep(seconds)
        return "held"

    fleet = Fleet({"hold": hold})
    armed = [True]

    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        if not armed:
            return Keep()
        armed.pop()
        if ending == "hangs in its request":
            await lease.request("hold", 60)
        elif ending == "swallows a lease.request timeout":
            with trio.move_on_after(0.5):
                await lease.request("hold", 60)
        elif ending == "swallows a lease.port.request timeout":
            with contextlib.suppress(RequestTimeout):
                await lease.port.request("hold", 60, timeout=0.5)
        elif ending == "raises after cutting its request short":
            with trio.move_on_after(0.5):
                await lease.request("hold", 60)
            raise RuntimeError("gave up")
        else:
            with trio.move_on_after(0.5):
                await lease.request("hold", 60)
            raise KeyboardInterrupt
        return Keep()

    seen: list[object] = []
    async with open_pool(
        fleet.factory,
        size=1,
        init_timeout=1.0,
        handle_checkin=handle_checkin,
        subscribers=[seen.append],
    ) as pool:
        with contextlib.suppress(KeyboardInterrupt):
            async with pool.checkout():
                pass
        assert started == [60]  # the hook's request reached the worker
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert (stats.leased, stats.restarts, stats.idle) == (0, 1, 1)
        async with pool.checkout() as lease:
            assert lease.worker_id == 1
    assert cause in _stop_causes(seen)[0]


async def test_a_remote_error_the_checkin_hook_catches_leaves_the_worker_in_the_pool(
    autojump_clock: object,
) -> None:
    caught: list[str] = []

    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        try:
            await lease.request("boom")
        except RemoteError as exc:
            caught.append(exc.type)
        return Keep()

    async with open_pool(Fleet().factory, size=1, handle_checkin=handle_checkin) as pool:
        assert await pool.execute("echo", 1) == 1
        async with pool.checkout() as lease:
            assert lease.worker_id == 0
        assert pool.statistics().restarts == 0
    assert caught == ["ZeroDivisionError", "ZeroDivisionError"]


async def test_a_remote_error_escaping_the_checkin_hook_removes_the_worker_and_is_logged(
    autojump_clock: object, caplog: pytest.LogCaptureFixture
) -> None:
    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        await lease.request("boom")
        return Keep()  # pragma: no cover

    seen: list[object] = []
    async with open_pool(
        Fleet().factory, size=1, handle_checkin=handle_checkin, subscribers=[seen.append]
    ) as pool:
        assert await pool.execute("echo", 1) == 1  # the client's own result is unaffected
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().restarts == 1
    assert "handle_checkin raised RemoteError" in _stop_causes(seen)[0]
    assert "handle_checkin raised; the worker is removed" in caplog.text


async def test_a_worker_crashing_under_the_checkin_hooks_request_is_replaced_once(
    autojump_clock: object,
) -> None:
    fleet = Fleet({"die": lambda _: fleet.workers[0].crash(3, "reset failed\n")})
    hook_saw: list[str] = []

    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        if lease.worker_id == 0:
            try:
                await lease.request("die")
            except WorkerCrashed as exc:
                hook_saw.append(f"{type(exc).__name__} {exc.returncode}")
        return Keep()  # even so, a dead worker is never kept

    seen: list[object] = []
    async with open_pool(
        fleet.factory, size=1, handle_checkin=handle_checkin, subscribers=[seen.append]
    ) as pool:
        assert await pool.execute("echo", 1) == 1
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert (stats.leased, stats.restarts, stats.idle) == (0, 1, 1)
        async with pool.checkout() as lease:
            assert lease.worker_id == 1
    assert hook_saw == ["WorkerCrashed 3"]
    # Whichever task Trio runs first, the worker's own (FAILED: it died) or the
    # client's (STOPPING: the hook's request never finished), it ends once.
    moves = [t.to_state for t in seen if isinstance(t, Transition) and t.worker_id == 0]
    after = moves[moves.index(WorkerState.RETURNING) + 1 :]
    assert after in ([WorkerState.FAILED], [WorkerState.STOPPING, WorkerState.STOPPED])


async def test_a_pool_closing_while_the_checkin_hook_uses_the_worker_waits_up_to_the_grace(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    hook_saw: list[str] = []

    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        try:
            await lease.request("sleep", 100)
        except PortClosed as exc:
            hook_saw.append(type(exc).__name__)
        return Keep()

    async with trio.open_nursery() as nursery:
        async with open_pool(
            fleet.factory, size=1, init_timeout=10.0, close_grace=3.0, handle_checkin=handle_checkin
        ) as pool:

            async def client() -> None:
                async with pool.checkout():
                    pass

            nursery.start_soon(client)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
        assert trio.current_time() - start == pytest.approx(3.0)
    assert hook_saw == ["PortClosed"]
    assert all(w.returncode is not None for w in fleet.workers)


async def test_a_factory_that_cannot_spawn_fails_the_start_with_its_error(
    autojump_clock: object,
) -> None:
    class Broken:
        ping_op = "ping"

        def open_worker(self, worker_id: int) -> Any:
            raise OSError(f"no such resource {worker_id}")

    with pytest.raises(StartError, match="could not start: OSError: no such resource"):
        async with open_pool(Broken(), size=1, intensity=1):
            pass  # pragma: no cover


async def test_unsubscribe_stops_the_events(autojump_clock: object) -> None:
    seen: list[object] = []
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        unsubscribe = pool.subscribe(seen.append)
        await pool.execute("echo", 1)
        count = len(seen)
        unsubscribe()
        unsubscribe()  # idempotent
        await pool.execute("echo", 2)
        assert len(seen) == count > 0


async def test_in_process_workers_answer_ping_unknown_ops_timeouts_and_death(
    autojump_clock: object,
) -> None:
    from nursemaid import RequestTimeout, UsageError

    async def slow(seconds: float) -> str:
        await trio.sleep(seconds)
        return "done"

    factory = InProcessWorkers({"slow": slow})
    assert repr(factory) == "InProcessWorkers(['slow'], ping_op='ping')"
    async with factory.open_worker(7) as worker:
        assert repr(worker) == "<InProcessWorker 7 alive>"
        assert await worker.request("ping") == "pong"
        with pytest.raises(RemoteError, match="no handler for op 'nope'"):
            await worker.request("nope")
        with pytest.raises(RequestTimeout, match="no reply to 'slow' in time"):
            await worker.request("slow", 10, timeout=1)
        worker.crash(9, "bye\n")
        worker.crash(10)  # a second crash changes nothing
        assert repr(worker) == "<InProcessWorker 7 exited 9>"
        assert await worker.wait_exited() == 9
        with pytest.raises(PortClosed, match="has exited") as info:
            await worker.request("ping")
        assert info.value.stderr_tail == "bye\n"
    with pytest.raises(UsageError, match="handlers must be a mapping"):
        InProcessWorkers([("slow", slow)])  # type: ignore[arg-type]


async def test_an_in_process_request_runs_its_handler_exactly_when_it_says_it_did() -> None:
    # As a port writes nothing once the time is up or its caller is cancelled, an
    # in-process worker does not call the handler then; and a plain handler that
    # has run is never reported as timed out or cancelled (that would say it did
    # not happen, and count the worker's request abandoned).
    calls: list[object] = []

    def record(args: object) -> object:
        calls.append(args)
        return args

    def slow(seconds: float) -> str:
        time.sleep(seconds)  # the handler's own blocking work, past the deadline
        return "done"

    factory = InProcessWorkers({"record": record, "slow": slow})
    async with factory.open_worker(0) as worker:
        with pytest.raises(RequestTimeout, match="'record' was not run: its timeout of 0 s"):
            await worker.request("record", 1, timeout=0)
        with trio.CancelScope() as scope:
            scope.cancel()
            await worker.request("record", 2)
        assert scope.cancelled_caught
        assert await worker.request("slow", 0.02, timeout=0.001) == "done"
        assert (calls, worker.abandoned_requests) == ([], 0)
    async with open_pool(factory, size=1) as pool:
        with pytest.raises(RequestTimeout, match="was not run"):
            await pool.execute("record", 4, timeout=0)
        stats = pool.statistics()
        assert (stats.restarts, stats.idle, calls) == (0, 1, [])


async def test_closing_during_a_health_check_does_not_wait_for_the_ping(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    async with open_pool(
        fleet.factory, size=1, health_interval=10.0, init_timeout=5.0, close_grace=30.0
    ) as pool:
        fleet.ping_delay = math.inf  # the health ping hangs
        await trio.sleep(10.5)
        stats = pool.statistics()
        assert (stats.checking, stats.leased, stats.idle) == (1, 0, 0)
        assert [w.state for w in stats.workers] == [WorkerState.CHECKING]
        start = trio.current_time()
    assert trio.current_time() - start < 1.0  # not the 30 s close grace
    assert all(w.returncode is not None for w in fleet.workers)


async def test_worker_handed_to_a_waiter_cancelled_in_the_same_step_is_returned(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    got: list[int] = []
    async with open_pool(fleet.factory, size=1) as pool:
        holder = pool.checkout()
        await holder.__aenter__()
        waiter_scope = trio.CancelScope()

        async def waiter() -> None:
            with waiter_scope:
                async with pool.checkout(timeout=math.inf) as lease:
                    got.append(lease.worker_id)
                    await trio.sleep_forever()  # cancelled here, at its first checkpoint

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics().waiting == 1
            # One synchronous step: the checkin hands the worker to the parked waiter
            # (no checkpoint in __aexit__ without hooks), then the waiter is cancelled
            # before it ever runs.
            await holder.__aexit__(None, None, None)
            waiter_scope.cancel()
        stats = pool.statistics()
        assert got == [0]  # it did get the worker...
        assert (stats.idle, stats.leased, stats.waiting, stats.restarts) == (1, 0, 0, 0)


async def test_waiter_cancelled_before_the_hand_off_leaves_the_queue_and_the_worker_stays(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    async with open_pool(fleet.factory, size=1) as pool:
        holder = pool.checkout()
        await holder.__aenter__()
        waiter_scope = trio.CancelScope()

        async def waiter() -> None:
            with waiter_scope:
                async with pool.checkout(timeout=math.inf):
                    pytest.fail("a cancelled waiter must not be served")  # pragma: no cover

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            waiter_scope.cancel()  # the abort runs now: the waiter leaves the queue
            assert pool.statistics().waiting == 0
            await holder.__aexit__(None, None, None)
        stats = pool.statistics()
        assert (stats.idle, stats.leased, stats.waiting) == (1, 0, 0)


class _Instant:
    """A worker whose request returns at once: what remains is the pool's own cost."""

    async def request(self, op: str, args: Any = None, *, timeout: float | None = None) -> Any:
        return args

    async def wait_exited(self) -> int:
        await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    def stderr_tail(self) -> str:
        return ""


class _InstantWorkers:
    ping_op = "ping"

    @contextlib.asynccontextmanager
    async def open_worker(self, worker_id: int) -> AsyncIterator[_Instant]:
        yield _Instant()


async def _python_calls(call: Callable[[], Awaitable[object]]) -> list[str]:
    """The Python functions *call* runs (C functions are not counted)."""
    names: list[str] = []

    def profile(frame: Any, event: str, arg: object) -> None:
        if event == "call":
            names.append(frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        await call()
    finally:
        sys.setprofile(None)
    return names[1:]  # the call itself


@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_execute_runs_at_most_fourteen_python_functions(
    timeout: float | None,
) -> None:
    # The hot path's budget, in calls rather than microseconds so it cannot be flaky:
    # execute itself, one cancellation check (Trio's, with its current_task), the
    # clock at each end (once more with a timeout), the core's checkout and checkin
    # with their three table-checked transitions, and the worker's request. Helper
    # layers on this path (an _acquire_slot coroutine, a _checkin call, the run
    # context's current_time) made it 21 (27 with a timeout); docs/performance.md
    # ("Where a round trip's time goes") has what the pool's share costs.
    async with open_pool(_InstantWorkers(), size=1, health_interval=None) as pool:
        await pool.execute("echo", 1, timeout=timeout)
        calls = await _python_calls(lambda: pool.execute("echo", 1, timeout=timeout))
        assert calls.count("_Instant.request") == 1
        assert len(calls) <= (14 if timeout is None else 15), calls


async def test_a_block_cancelled_while_it_runs_a_nursery_keeps_its_worker(
    autojump_clock: object,
) -> None:
    # The block ends with an ExceptionGroup of Cancelled, not a bare Cancelled:
    # still the client's cancellation, not the worker's failure.
    async with open_pool(Fleet().factory, size=1) as pool:
        with trio.move_on_after(1.0):
            async with pool.checkout() as lease, trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
                await trio.sleep_forever()
        stats = pool.statistics()
        assert (stats.leased, stats.restarts, stats.idle) == (0, 0, 1)
        async with pool.checkout() as again:
            assert again.worker_id == lease.worker_id == 0


@pytest.mark.parametrize("hooked", [False, True], ids=["plain", "with-checkin-hook"])
@pytest.mark.parametrize("event", ["CHECKOUT", "CHECKIN", "ACCEPT"])
def test_ctrl_c_in_the_middle_of_the_pools_bookkeeping_waits_for_it_to_finish(
    hooked: bool, event: str
) -> None:
    # A real SIGINT, raised while the pool is between two steps of a checkout or a
    # checkin (from a subscriber, which runs inside the bookkeeping). The pool's
    # entry points are KeyboardInterrupt-protected, as Trio's own machinery is, so
    # the interrupt reaches the main task at its next checkpoint, after the
    # bookkeeping is done: no worker is left LEASED or RETURNING. (Before, the
    # worker stayed RETURNING, counted as leased, until the close grace ran out.)
    # A sync test with its own trio.run: the KeyboardInterrupt must end that run,
    # not pytest's.
    fired: list[str] = []

    def interrupt(item: object) -> None:
        if isinstance(item, Transition) and item.event.name == event and not fired:
            fired.append(event)
            signal.raise_signal(signal.SIGINT)

    def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        return Keep()

    snapshots: list[Any] = []

    async def main() -> None:
        async with open_pool(
            Fleet().factory,
            size=1,
            handle_checkin=handle_checkin if hooked else None,
            subscribers=[interrupt],
        ) as pool:
            try:
                async with pool.checkout():
                    pass
                await trio.sleep(0)  # the interrupt arrives here at the latest
            except KeyboardInterrupt:
                snapshots.append(pool.statistics())
                raise

    with pytest.raises(KeyboardInterrupt):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert fired == [event]
    (stats,) = snapshots
    assert stats.leased == 0
    assert [w.state for w in stats.workers] == [WorkerState.IDLE]


def test_ctrl_c_still_interrupts_a_hook_at_once() -> None:
    # Hooks are your code, so they run unprotected: a sync hook stuck in a loop
    # stays interruptible. The interrupt lands in the hook, and the pool hands
    # the worker back (removed: nobody knows where the hook stopped).
    def handle_checkout(lease: Lease) -> Keep:
        signal.raise_signal(signal.SIGINT)
        return Keep()  # pragma: no cover - the interrupt comes first

    seen: list[object] = []
    snapshots: list[Any] = []

    async def main() -> None:
        async with open_pool(
            Fleet().factory, size=1, handle_checkout=handle_checkout, subscribers=[seen.append]
        ) as pool:
            try:
                async with pool.checkout():
                    pytest.fail("the interrupted checkout got its lease")  # pragma: no cover
            except KeyboardInterrupt:
                snapshots.append(pool.statistics())
                raise

    with pytest.raises(KeyboardInterrupt):
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    (stats,) = snapshots
    assert stats.leased == 0
    assert _stop_causes(seen)[0] == (
        "handle_checkout was interrupted (KeyboardInterrupt); the worker's state is unknown"
    )


async def test_a_lease_ended_while_another_task_still_runs_its_request_removes_the_worker(
    autojump_clock: object,
) -> None:
    # Misuse, but it must not hand out a busy worker: a request of the lease still
    # running in a task that outlives the block leaves that request unfinished.
    seen: list[object] = []
    async with (
        open_pool(Fleet().factory, size=1, subscribers=[seen.append]) as pool,
        trio.open_nursery() as outer,
    ):
        errors: list[BaseException] = []

        async def straggler(lease: Lease) -> None:
            try:
                await lease.request("sleep", 1.0)
            except PortClosed as exc:  # the worker was stopped under it
                errors.append(exc)

        async with pool.checkout() as lease:
            outer.start_soon(straggler, lease)
            await trio.testing.wait_all_tasks_blocked()
        assert _stop_causes(seen) == ["its lease ended with a request in flight (no exception)"]
    assert len(errors) == 1


@pytest.mark.parametrize("call", ["checkout", "execute"])
async def test_a_pool_with_only_a_checkin_hook_times_waiters_out_at_its_checkout_timeout(
    autojump_clock: object, call: str
) -> None:
    # Without handle_checkout there is no hook for the checkout's deadline to
    # bound, so queued clients are timed out by the pool's timer, as in a pool
    # without hooks: exactly checkout_timeout after they queued.
    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        return Keep()

    async def queue(pool: Pool) -> None:
        if call == "execute":
            await pool.execute("echo", 1)
            return
        async with pool.checkout():
            pytest.fail("served while the only worker is leased")  # pragma: no cover

    async with open_pool(
        Fleet().factory, size=1, checkout_timeout=1.5, handle_checkin=handle_checkin
    ) as pool:
        async with pool.checkout():
            start = trio.current_time()
            with pytest.raises(CheckoutTimeout):
                await queue(pool)
            assert trio.current_time() - start == 1.5
            assert pool.statistics().waiting == 0
        assert await pool.execute("echo", 2) == 2


async def test_aclose_while_an_eager_pool_is_opening_closes_it_at_once(
    autojump_clock: object,
) -> None:
    # The workers' handshakes hang: without the close, the pool would keep
    # replacing them until it gave up with StartError. aclose() is the user's
    # word: the pool stops waiting for them, closes, and its run ends normally.
    fleet = Fleet()
    fleet.ping_delay = math.inf
    pool = Pool(fleet.factory, size=2, init_timeout=5.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pool.run)
        await trio.sleep(1.0)
        start = trio.current_time()
        await pool.aclose()
        assert trio.current_time() - start < 1.0  # not init_timeout, nor the give-up
    assert all(w.returncode is not None for w in fleet.workers)
    with pytest.raises(PoolClosed):
        await pool.execute("echo", 1)


async def test_cancelling_a_pools_run_during_a_health_check_starts_no_replacement(
    autojump_clock: object,
) -> None:
    # A supervisor stops a pool by cancelling its run(). The check's task may run
    # before run()'s clean-up closes the pool: its ping then ends "cancelled" in
    # an open pool, which must not count a restart nor spawn into the dying
    # nursery. The order is the scheduler's, so try it many times.
    for _ in range(20):
        fleet = Fleet()
        seen: list[object] = []
        async with trio.open_nursery() as nursery:
            pool = Pool(fleet.factory, size=1, health_interval=10.0, subscribers=[seen.append])
            await nursery.start(pool.run)
            fleet.ping_delay = math.inf
            await trio.sleep(10.5)
            assert pool.statistics().checking == 1
            nursery.cancel_scope.cancel()
        assert (len(fleet.workers), pool.statistics().restarts) == (1, 0), _stop_causes(seen)


async def test_a_session_client_arriving_during_its_workers_check_waits_for_it(
    autojump_clock: object,
) -> None:
    fleet = Fleet()
    seen: list[object] = []
    async with open_pool(
        fleet.factory, size=2, health_interval=10.0, init_timeout=5.0, subscribers=[seen.append]
    ) as pool:
        async with pool.checkout(session="s") as lease:
            first = lease.worker_id
        fleet.ping_delay = 1.0
        checked = trio.Event()

        def watch(event: object) -> None:
            if (
                isinstance(event, Transition)
                and event.event is WorkerEvent.CHECK
                and event.worker_id == first
            ):
                checked.set()

        pool.subscribe(watch)
        await checked.wait()
        async with pool.checkout(session="s") as lease:
            assert lease.worker_id == first  # waited out the check; did not move
    assert not [e for e in seen if isinstance(e, SessionMoved)]
