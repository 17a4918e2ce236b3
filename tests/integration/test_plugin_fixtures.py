"""The plugin's fixtures, used by our own suite as a user would use them.

In-process workers (``ScriptedWorkers``) and plain Trio children keep these fast;
``test_plugin.py`` covers the plugin end to end in a fresh pytest process.
"""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

from nursemaid import ChildSpec
from nursemaid.supervisor import ChildExited, ChildRestarting, ChildStarted, ExitKind
from nursemaid.testing import EventCapture, LeakCheck, ScriptedWorkers
from nursemaid.workers import Transition, WorkerState


@pytest.fixture
def nursemaid_pool_worker() -> ScriptedWorkers:
    return ScriptedWorkers()


@pytest.fixture
def nursemaid_pool_options() -> dict[str, object]:
    return {"size": 3}


async def test_pool_fixture_takes_the_overridden_worker_and_options(
    nursemaid_pool: object, nursemaid_events: EventCapture
) -> None:
    stats = nursemaid_pool.statistics()  # type: ignore[attr-defined]
    assert (stats.size, stats.idle) == (3, 3)
    ready = nursemaid_events.matching(Transition, to_state=WorkerState.IDLE)
    assert sorted(event.worker_id for event in ready) == [0, 1, 2]


async def test_events_are_recorded_in_the_order_they_happened(
    nursemaid_open_pool: object, nursemaid_events: EventCapture
) -> None:
    pool = await nursemaid_open_pool(ScriptedWorkers(), size=1)  # type: ignore[operator]
    nursemaid_events.clear()
    async with pool.checkout() as lease:
        assert await lease.request("work", {"seconds": 0, "token": "t"}) == {
            "worker": 0,
            "token": "t",
        }
    states = [event.to_state for event in nursemaid_events.of_type(Transition)]
    assert states[0] is WorkerState.LEASED
    assert states[-1] is WorkerState.IDLE


async def test_each_pool_is_named_after_its_test(nursemaid_open_pool: object) -> None:
    one = await nursemaid_open_pool(ScriptedWorkers(), size=1)  # type: ignore[operator]
    two = await nursemaid_open_pool(ScriptedWorkers(), size=1)  # type: ignore[operator]
    assert "test_each_pool_is_named_after_its_test" in repr(one)
    assert repr(one) != repr(two)


async def test_wait_for_returns_the_event_once_it_happens(
    nursemaid_supervisor: object, nursemaid_events: EventCapture, autojump_clock: object
) -> None:
    runs: list[int] = []

    async def crashes_once(
        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        runs.append(1)
        if len(runs) == 1:
            raise LookupError("first run fails")
        await trio.sleep_forever()

    await nursemaid_supervisor.start_child(ChildSpec("w", crashes_once))  # type: ignore[attr-defined]
    with trio.fail_after(5):
        event = await nursemaid_events.wait_for(ChildRestarting, child_id="w")
    assert event.supervisor == nursemaid_supervisor.name  # type: ignore[attr-defined]
    crash = nursemaid_events.matching(ChildExited, child_id="w", kind=ExitKind.CRASH)
    assert isinstance(crash[0].exception, LookupError)
    with trio.fail_after(5):
        await nursemaid_events.wait_for(ChildStarted, child_id="w", restart=True)


def test_attach_supervisor_without_a_nursery_says_how_to_get_one() -> None:
    with pytest.raises(RuntimeError, match="use the nursemaid_events fixture"):
        EventCapture().attach_supervisor(object())


async def test_leak_check_names_a_leaked_descriptor_and_a_nursemaid_task() -> None:
    check = LeakCheck()
    read, write = os.pipe()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever, name="nursemaid.left-running")
        await trio.testing.wait_all_tasks_blocked()
        problems = check.problems()
        nursery.cancel_scope.cancel()
    os.close(read)
    os.close(write)
    assert problems[0].startswith("descriptors left open: {")
    assert "pipe:" in problems[0]
    assert problems[1] == "tasks left running: ['nursemaid.left-running']"
    assert check.problems() == []  # cleaned up: nothing left
