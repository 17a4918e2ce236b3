"""The public pool state machine and strategies of nursemaid.testing, run on our pool.

``pool_state_machine`` is the same machine the pool's own property tests use; here
it is exercised the way a user would: built from the factory, extended with a rule
and an invariant of one's own, pointed at the fault worker as a real program.
"""

from __future__ import annotations

import sys

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from nursemaid import (
    CheckoutTimeout,
    PoolClosed,
    PortClosed,
    RemoteProtocolError,
    WorkerError,
    open_pool,
    open_port,
)
from nursemaid.testing import (
    ClientVisit,
    FaultPlan,
    PoolWorld,
    PortTarget,
    ScriptedWorkers,
    client_schedules,
    fault_plans,
    pool_state_machine,
    run_client_schedule,
)

# The pool's own shapes (lazy of one and two, eager of three) run in
# tests/property/test_pool_machine.py; here: extension, real processes, strategies.


def test_users_extend_the_machine_with_their_own_rules_and_invariants() -> None:
    machine = pool_state_machine(size=1, lazy=True, name="extended")
    executed: list[int] = []

    @machine.rule()
    async def execute_and_check(world: PoolWorld) -> None:
        async def call() -> None:
            try:
                reply = await world.pool.execute("work", {"seconds": 0.1, "token": "mine"})
            except (CheckoutTimeout, PoolClosed, WorkerError):
                return  # the machine crashes workers and closes the pool: fair outcomes
            executed.append(1 if reply["token"] == "mine" else 0)

        world.harness.start_soon(call)

    @machine.invariant
    def statistics_never_negative(world: PoolWorld) -> None:
        stats = world.pool.statistics()
        assert min(stats.idle, stats.leased, stats.starting, stats.waiting) >= 0

    assert "execute_and_check" in {rule.name for rule in machine.rules}
    # Enough examples that some run the rule and see an execute through: each one
    # does so only now and then (swarm testing may switch the rule off, and the
    # machine crashes workers and closes the pool). 15 examples missed 1 run in 8.
    machine.test(settings(max_examples=60, database=None))()
    # Some executes finished (the rule really ran), and each got its own reply.
    assert executed
    assert set(executed) == {1}


test_public_machine_on_fault_worker_processes = pytest.mark.slow(
    pool_state_machine(PortTarget, size=2, lazy=False).test(settings(max_examples=5))
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(plan=fault_plans(kinds=("fail_init", "crash_after", "garbage_after", "slow")))
def test_each_drawn_fault_plan_happens_as_planned(plan: FaultPlan) -> None:
    async def main() -> None:
        with trio.fail_after(20):
            async with open_port(plan.argv(), shutdown=0.5) as port:
                if not plan.starts:
                    with pytest.raises(PortClosed):
                        await port.request("ping")
                    return
                assert await port.request("ping") == "pong"
                answers = plan.answers
                for number in range(answers if answers is not None else 3):
                    assert await port.request("echo", number) == number
                if answers is None:
                    return
                expected = PortClosed if plan.crash_after == answers else RemoteProtocolError
                with pytest.raises(expected):
                    await port.request("echo", "the one that fails")

    trio.run(main)


@settings(max_examples=40)
@given(schedule=client_schedules(max_clients=6), seed=st.random_module())
def test_client_schedules_leave_a_pool_of_in_process_workers_whole(
    schedule: list[ClientVisit], seed: object
) -> None:
    async def main() -> None:
        workers = ScriptedWorkers()
        async with open_pool(workers, size=2, lazy=True, checkout_timeout=5.0) as pool:
            outcomes = await run_client_schedule(
                pool, schedule, op="work", args={"seconds": 0.05, "token": "t"}
            )
            assert len(outcomes) == len(schedule)
            assert set(outcomes) <= {"checked in", "error", "cancelled", "timed out"}
            for visit, outcome in zip(schedule, outcomes, strict=True):
                if outcome != "timed out":
                    assert outcome == {"checkin": "checked in"}.get(visit.end.value, outcome)
            await trio.testing.wait_all_tasks_blocked()
            stats = pool.statistics()
            assert stats.leased == stats.waiting == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_fault_worker_argv_is_what_python_runs() -> None:
    assert FaultPlan().argv("python") == ["python", "-m", "nursemaid.testing.fault_worker"]
    assert FaultPlan(crash_after=2).argv()[0] == sys.executable
