"""What counts against a pool's restart intensity, and what is never handed on.

A worker that dies under a lease (or under its health ping) is a crash, counted
once, whichever task learns of it first: the worker's own task (``Pool._live``,
parked in ``wait_exited``) and the task whose request the death cut short wake in
the same batch of Trio's scheduler, in either order, so the checkin asks the
worker before it decides. A worker that died, or whose port closed, under a lease
whose block caught the error is removed, never made idle for the next client. A
worker that breaks the protocol counts as a failure too; hooks change none of it.
``open_pool`` raises the pool's ``StartError`` even when the block lets the
``PoolClosed`` it was given escape. The in-process tests repeat their round
``ROUNDS`` times, since each round's order is the scheduler's coin toss.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from nursemaid import (
    InProcessWorkers,
    PoolClosed,
    PortClosed,
    RemoteProtocolError,
    StartError,
    WorkerCrashed,
    open_pool,
)
from nursemaid.testing import FaultPlan, LeakCheck
from nursemaid.workers._lifecycle import Transition, WorkerState
from nursemaid.workers._pool import Keep, Lease, Pool
from nursemaid.workers._pool_inprocess import InProcessWorker

ROUNDS = 16


async def _block_forever(_: object) -> None:
    await trio.sleep_forever()


def _fleet(
    ping: Callable[[Any], Any] | None = None,
) -> tuple[InProcessWorkers, list[InProcessWorker]]:
    workers: list[InProcessWorker] = []
    handlers: dict[str, Callable[[Any], Any]] = {"echo": lambda args: args, "block": _block_forever}
    if ping is not None:
        handlers["ping"] = ping
    return InProcessWorkers(handlers, on_open=workers.append), workers


async def _via_execute(pool: Pool) -> None:
    await pool.execute("block")


async def _via_lease_request(pool: Pool) -> None:
    async with pool.checkout() as lease:
        await lease.request("block")


async def _via_lease_port(pool: Pool) -> None:
    lease: Lease
    async with pool.checkout() as lease:
        await lease.port.request("block")


# Hooks decide what becomes of a worker at checkout or checkin, never of a dead one.
HOOKS: dict[str, dict[str, Any]] = {
    "no hooks": {},
    "handle_checkin": {"handle_checkin": lambda lease, exc: Keep()},
    "handle_checkout": {"handle_checkout": lambda lease: Keep()},
    "both hooks": {
        "handle_checkin": lambda lease, exc: Keep(),
        "handle_checkout": lambda lease: Keep(),
    },
}


@pytest.mark.parametrize("hooks", list(HOOKS))
@pytest.mark.parametrize(
    "request_blocking",
    [_via_execute, _via_lease_request, _via_lease_port],
    ids=["execute", "lease.request", "lease.port.request"],
)
async def test_a_worker_that_dies_under_every_request_exhausts_the_intensity_exactly(
    autojump_clock: object, request_blocking: Callable[[Pool], Awaitable[None]], hooks: str
) -> None:
    factory, workers = _fleet()
    transitions: list[Transition] = []
    intensity = ROUNDS - 1

    def record(event: object) -> None:
        if isinstance(event, Transition):
            transitions.append(event)

    async def kill_it_mid_request() -> None:
        await trio.testing.wait_all_tasks_blocked()  # the request is in flight
        workers[-1].crash(70, "segfault\n")

    async def crash_every_worker() -> None:
        async with open_pool(
            factory,
            size=1,
            intensity=intensity,
            period=1000.0,
            subscribers=[record],
            **HOOKS[hooks],
        ) as pool:
            for crash in range(ROUNDS):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(kill_it_mid_request)
                    with pytest.raises(WorkerCrashed):
                        await request_blocking(pool)
                if crash < intensity:
                    assert pool.statistics().restarts == crash + 1
            await trio.testing.wait_all_tasks_blocked()  # the give-up cancels us here
            pytest.fail(f"{ROUNDS} crashes within the period and the pool carries on")

    with pytest.raises(StartError, match=f"{ROUNDS} worker failures within"):
        await crash_every_worker()
    # LEASED, or RETURNING while handle_checkin runs: each death once, as a crash.
    died = [t for t in transitions if t.from_state in (WorkerState.LEASED, WorkerState.RETURNING)]
    assert [t.to_state for t in died] == [WorkerState.FAILED] * ROUNDS


async def test_a_crash_the_block_swallows_never_reaches_the_next_client(
    autojump_clock: object,
) -> None:
    factory, workers = _fleet()
    answers: list[object] = []
    async with open_pool(factory, size=1, intensity=10 * ROUNDS) as pool:

        async def swallow_the_crash(task_status: trio.TaskStatus[None]) -> None:
            async with pool.checkout() as lease:
                task_status.started()
                with contextlib.suppress(WorkerCrashed):  # the block ends normally
                    await lease.port.request("block")

        async def queue_behind_it() -> None:
            answers.append(await pool.execute("echo", "served by a live worker"))

        for _ in range(ROUNDS):
            async with trio.open_nursery() as nursery:
                await nursery.start(swallow_the_crash)
                nursery.start_soon(queue_behind_it)
                await trio.testing.wait_all_tasks_blocked()
                workers[-1].crash(70, "segfault\n")
    assert answers == ["served by a live worker"] * ROUNDS


async def test_open_pool_raises_start_error_when_the_block_lets_its_pool_closed_escape(
    autojump_clock: object,
) -> None:
    broken = False

    async def ping(_: object) -> str:
        if broken:
            await trio.sleep(1.0)
            raise RuntimeError("cannot start any more")
        return "pong"

    factory, workers = _fleet(ping)

    async def let_pool_closed_escape() -> None:
        nonlocal broken
        async with open_pool(factory, size=1, intensity=1) as pool:
            broken = True
            workers[0].crash(70, "segfault\n")  # its replacement cannot start
            await trio.testing.wait_all_tasks_blocked()  # the replacement is handshaking
            await pool.execute("echo", 1)  # queues; the give-up answers PoolClosed

    with pytest.raises(StartError, match="pool gave up") as info:
        await let_pool_closed_escape()
    assert isinstance(info.value.__context__, PoolClosed)


async def test_a_worker_that_dies_under_its_health_ping_is_a_counted_crash(
    autojump_clock: object,
) -> None:
    block_pings = False
    checking = trio.Event()
    transitions: list[Transition] = []

    async def ping(_: object) -> str:
        if block_pings:
            await trio.sleep_forever()
        return "pong"

    def record(event: object) -> None:
        if isinstance(event, Transition):
            transitions.append(event)
            if event.to_state is WorkerState.CHECKING:
                checking.set()

    factory, workers = _fleet(ping)
    async with open_pool(
        factory,
        size=1,
        intensity=10 * ROUNDS,
        period=1000.0,
        health_interval=1.0,
        subscribers=[record],
    ) as pool:
        for _ in range(ROUNDS):
            await trio.testing.wait_all_tasks_blocked()  # the worker is idle
            block_pings = True
            checking = trio.Event()
            await checking.wait()  # the health check pings it, and the ping hangs
            workers[-1].crash(70, "segfault\n")
            block_pings = False  # its replacement's handshake is answered
        await trio.testing.wait_all_tasks_blocked()
        assert len(pool._core.window.restarts) == ROUNDS
    died = [t for t in transitions if t.from_state is WorkerState.CHECKING]
    assert [t.to_state for t in died if t.to_state is not WorkerState.IDLE] == (
        [WorkerState.FAILED] * ROUNDS
    )


async def test_a_port_closed_under_a_lease_that_caught_the_error_never_reaches_the_next_client(
    nursemaid_leak_check: LeakCheck,
) -> None:
    # The worker answers with a frame that is not JSON, then hangs: the port
    # closes itself (RemoteProtocolError); the block catches that and ends normally.
    argv = FaultPlan().argv()
    answers: list[object] = []
    with trio.fail_after(30):
        async with open_pool(argv, size=1, shutdown=0.1) as pool:

            async def break_the_port(task_status: trio.TaskStatus[None]) -> None:
                async with pool.checkout() as lease:
                    task_status.started()
                    await trio.testing.wait_all_tasks_blocked()  # the other client queues
                    with contextlib.suppress(RemoteProtocolError):
                        await lease.port.request("garbage")

            async def queue_behind_it() -> None:
                answers.append(await pool.execute("echo", "served by a live worker"))

            async with trio.open_nursery() as nursery:
                await nursery.start(break_the_port)
                nursery.start_soon(queue_behind_it)
    assert answers == ["served by a live worker"]


class _OwnWorker:
    """A user's worker type whose attribute names happen to be a port's."""

    state = "ready"
    returncode = 0

    def __init__(self, inner: InProcessWorker) -> None:
        self._inner = inner

    async def request(self, op: str, args: Any = None, *, timeout: float | None = None) -> Any:
        return await self._inner.request(op, args, timeout=timeout)

    async def wait_exited(self) -> int:
        return await self._inner.wait_exited()

    def stderr_tail(self) -> str:
        return self._inner.stderr_tail()


class _OwnWorkers:
    ping_op = "ping"

    def __init__(self) -> None:
        self._inner, _ = _fleet()

    @contextlib.asynccontextmanager
    async def open_worker(self, worker_id: int) -> Any:
        async with self._inner.open_worker(worker_id) as inner:
            yield _OwnWorker(inner)


async def test_a_user_workers_attributes_are_not_read_as_a_ports(autojump_clock: object) -> None:
    async with open_pool(_OwnWorkers(), size=1) as pool:
        for i in range(3):
            async with pool.checkout() as lease:
                assert await lease.request("echo", i) == i
        stats = pool.statistics()
        assert (stats.restarts, stats.checkouts, [w.uses for w in stats.workers]) == (0, 3, [3])


def _keep(lease: Lease, exc: BaseException | None) -> Keep:
    return Keep()


async def _execute_echo(pool: Pool) -> None:
    await pool.execute("echo", 1)


async def _lease_catching(pool: Pool) -> None:
    async with pool.checkout() as lease:
        with contextlib.suppress(RemoteProtocolError):
            await lease.request("echo", 1)
    raise RemoteProtocolError("caught in the block")  # for the caller's count


@pytest.mark.parametrize(
    ("use", "hooks"),
    [(_execute_echo, {}), (_execute_echo, {"handle_checkin": _keep}), (_lease_catching, {})],
    ids=["execute", "execute with handle_checkin", "a block that catches the error"],
)
async def test_a_program_that_breaks_the_protocol_on_every_request_exhausts_the_intensity(
    use: Callable[[Pool], Awaitable[None]],
    hooks: dict[str, Any],
    nursemaid_leak_check: LeakCheck,
) -> None:
    # A garbage frame is the worker's fault, as a crash is: replacing such a
    # program for ever, one process per request, would hide a broken deployment.
    argv = FaultPlan(garbage_after=0).argv()  # handshakes pass; every request: garbage
    broken = 0

    async def until_it_gives_up() -> None:
        nonlocal broken
        options: dict[str, Any] = {"intensity": 2, "period": 600.0, "shutdown": 0.1}
        async with open_pool(argv, size=1, **options, **hooks) as pool:
            while True:
                with pytest.raises(RemoteProtocolError):
                    await use(pool)
                broken += 1

    with trio.fail_after(30), pytest.raises(StartError, match="3 worker failures") as info:
        await until_it_gives_up()
    assert broken == 3
    assert "broke the protocol" in str(info.value)


async def _next_clients_handed_a_dead_worker(pool: Pool, kill: Callable[[Lease], None]) -> int:
    """Kill the worker under a lease, ROUNDS times, while another client queues; the
    holder's block ends in the batch that learns of the death (it waits for the exit
    too). Return how many queued clients were handed the dead worker."""
    handed_a_dead_one = 0
    for _ in range(ROUNDS):
        async with trio.open_nursery() as nursery:

            async def holder(task_status: trio.TaskStatus[None]) -> None:
                async with pool.checkout() as lease:
                    task_status.started()
                    await trio.testing.wait_all_tasks_blocked()  # the other client queues
                    kill(lease)
                    await lease.port.wait_exited()

            async def next_client() -> None:
                nonlocal handed_a_dead_one
                try:
                    await pool.execute("echo", 1)
                except (WorkerCrashed, PortClosed):
                    handed_a_dead_one += 1

            await nursery.start(holder)
            nursery.start_soon(next_client)
    return handed_a_dead_one


@pytest.mark.parametrize("hooks", list(HOOKS))
async def test_an_in_process_worker_killed_while_its_client_waits_elsewhere_is_not_handed_on(
    autojump_clock: object, hooks: str
) -> None:
    factory, workers = _fleet()
    async with open_pool(
        factory, size=1, intensity=10 * ROUNDS, period=1000.0, **HOOKS[hooks]
    ) as pool:
        handed = await _next_clients_handed_a_dead_worker(
            pool, lambda lease: workers[-1].crash(70, "segfault\n")
        )
    assert handed == 0, f"{handed} of {ROUNDS} next clients got the dead worker"


@pytest.mark.slow  # ROUNDS real worker processes, started one after another
async def test_a_port_whose_worker_its_port_saw_die_is_not_handed_on(tmp_path: Path) -> None:
    # The port can know of the death (its watcher reaped the worker) before the
    # pool does, and its state stays OPEN until a request notices: the checkin
    # must see that the worker is gone.
    script = tmp_path / "worker.py"
    script.write_text("from nursemaid import serve\nserve({'echo': lambda a: a})\n")
    with trio.fail_after(60):
        async with open_pool(
            [sys.executable, str(script)], size=1, intensity=100, period=1000.0
        ) as pool:
            handed = await _next_clients_handed_a_dead_worker(
                pool, lambda lease: os.kill(lease.port.pid, signal.SIGKILL)
            )
    assert handed == 0, f"{handed} of {ROUNDS} next clients got the dead worker"


@pytest.mark.slow  # waits the port's 1 s for the lingering worker's exit status
async def test_a_worker_lost_in_the_middle_of_a_frame_counts() -> None:
    argv = [sys.executable, str(Path(__file__).parent / "workers" / "stops_reading_mid_frame.py")]

    async def lose_it() -> None:
        async with open_pool(argv, size=1, intensity=0, period=1000.0, shutdown=0.2) as pool:
            with pytest.raises(WorkerCrashed):
                await pool.execute("echo", "x" * 5_000_000)
            with trio.move_on_after(5):  # the give-up cancels this
                await trio.sleep_forever()

    with trio.fail_after(20), pytest.raises(StartError):
        await lose_it()


async def _cancel_when_blocked(scope: trio.CancelScope) -> None:
    await trio.testing.wait_all_tasks_blocked()  # the write is stuck
    scope.cancel()


_COUNTS_ITS_ARGS = """
from nursemaid import serve
serve({"echo": lambda args: len(args)})
"""


@pytest.mark.slow  # real workers, a 5 MB frame cut a few times
@pytest.mark.parametrize("slow_checkin", [False, True], ids=["checkin", "slow checkin"])
async def test_a_frame_the_client_cut_is_not_the_workers_crash(
    tmp_path: Path, slow_checkin: bool
) -> None:
    # The client cancels in the middle of its write; the port closes the worker's
    # stdin; serve exits 2 at the torn frame. The exit is the client's doing: it
    # must not count, even when it is seen before the checkin judges the worker
    # (a slow handle_checkin here; a loaded machine in life). intensity=0 would
    # give up at the first count.
    script = tmp_path / "worker.py"
    script.write_text(_COUNTS_ITS_ARGS)
    cuts = 0

    async def checkin(lease: Lease, exc: BaseException | None) -> Keep:
        nonlocal cuts
        if lease.port._closed_how == "cut":
            cuts += 1
            if slow_checkin:
                with trio.fail_after(5):
                    await lease.port.wait_exited()
        return Keep()

    options: dict[str, Any] = {"intensity": 0, "period": 1000.0, "shutdown": 0.2}
    async with open_pool(
        [sys.executable, str(script)], size=1, handle_checkin=checkin, **options
    ) as pool:
        for _ in range(10):
            async with pool.checkout() as lease, trio.open_nursery() as nursery:
                scope = trio.CancelScope()
                nursery.start_soon(_cancel_when_blocked, scope)
                with scope:
                    await lease.request("echo", "x" * 5_000_000)
            assert await pool.execute("echo", "ok") == 2
            if cuts >= 3:
                break
    assert cuts >= 1, "no write was cut: the test did not test anything"
