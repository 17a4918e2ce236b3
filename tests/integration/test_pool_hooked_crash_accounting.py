"""A death under a lease is a counted crash, and the dead worker is never handed on,
in pools with ``handle_checkin``/``handle_checkout`` hooks too.

``test_pool_crash_accounting.py`` makes these claims for pools without hooks. A
hook decides what becomes of a worker at checkin or checkout, but never of a dead
one: whichever way the client reached the worker, each death under a lease counts
once against the restart intensity (``LEASED``/``RETURNING → FAILED``), and a
worker killed while its client waits on something else is not made idle and given
to the next client. The pool's watch on the worker and the client are woken in
the same batch of Trio's scheduler, in random order, so each test repeats its
round ``ROUNDS`` times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

from nursemaid import InProcessWorkers, PortClosed, StartError, WorkerCrashed, open_pool
from nursemaid.workers._lifecycle import Transition, WorkerState
from nursemaid.workers._pool import Keep, Pool
from nursemaid.workers._pool_inprocess import InProcessWorker

ROUNDS = 12


async def _block_forever(_: object) -> None:
    await trio.sleep_forever()


def _fleet() -> tuple[InProcessWorkers, list[InProcessWorker]]:
    workers: list[InProcessWorker] = []
    handlers: dict[str, Callable[[Any], Any]] = {"echo": lambda a: a, "block": _block_forever}
    return InProcessWorkers(handlers, on_open=workers.append), workers


HOOKS: dict[str, dict[str, Any]] = {
    "checkin": {"handle_checkin": lambda lease, exc: Keep()},
    "checkout": {"handle_checkout": lambda lease: Keep()},
    "both": {
        "handle_checkin": lambda lease, exc: Keep(),
        "handle_checkout": lambda lease: Keep(),
    },
}


@pytest.mark.parametrize("hooks", list(HOOKS))
@pytest.mark.parametrize("via", ["execute", "lease.request", "lease.port.request"])
async def test_a_hooked_pool_counts_every_death_under_a_lease_once(
    autojump_clock: object, hooks: str, via: str
) -> None:
    factory, workers = _fleet()
    transitions: list[Transition] = []
    intensity = ROUNDS - 1

    def record(event: object) -> None:
        if isinstance(event, Transition):
            transitions.append(event)

    async def kill_it_mid_request() -> None:
        await trio.testing.wait_all_tasks_blocked()
        workers[-1].crash(70, "segfault\n")

    async def blocking(pool: Pool) -> None:
        if via == "execute":
            await pool.execute("block")
        else:
            async with pool.checkout() as lease:
                if via == "lease.request":
                    await lease.request("block")
                else:
                    await lease.port.request("block")

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
                        await blocking(pool)
                if crash < intensity:
                    assert pool.statistics().restarts == crash + 1
            await trio.testing.wait_all_tasks_blocked()
            pytest.fail("the pool carries on")

    with pytest.raises(StartError, match=f"{ROUNDS} worker failures within"):
        await crash_every_worker()
    died = [t for t in transitions if t.from_state in (WorkerState.LEASED, WorkerState.RETURNING)]
    assert [t.to_state for t in died] == [WorkerState.FAILED] * ROUNDS


@pytest.mark.parametrize("hooks", ["none", *HOOKS])
async def test_an_in_process_worker_killed_while_its_client_waits_elsewhere_is_not_handed_on(
    autojump_clock: object, hooks: str
) -> None:
    factory, workers = _fleet()
    handed_a_dead_one = 0
    async with open_pool(
        factory, size=1, intensity=10 * ROUNDS, period=1000.0, **HOOKS.get(hooks, {})
    ) as pool:
        for _ in range(ROUNDS):
            async with trio.open_nursery() as nursery:

                async def holder(task_status: trio.TaskStatus[None]) -> None:
                    async with pool.checkout() as lease:
                        task_status.started()
                        await trio.testing.wait_all_tasks_blocked()
                        workers[-1].crash(70, "segfault\n")
                        await lease.port.wait_exited()

                async def next_client() -> None:
                    nonlocal handed_a_dead_one
                    try:
                        await pool.execute("echo", 1)
                    except (WorkerCrashed, PortClosed):
                        handed_a_dead_one += 1

                await nursery.start(holder)
                nursery.start_soon(next_client)
    assert handed_a_dead_one == 0, (
        f"{handed_a_dead_one} of {ROUNDS} next clients got the dead worker"
    )
