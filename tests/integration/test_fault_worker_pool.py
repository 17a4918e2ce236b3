"""The fault worker under a real pool: the seed project's failures, staged on demand.

A worker that dies at start-up must not be a black box (its stderr reaches the
error), and a worker that crashes mid-service is replaced while the pool carries on.
"""

from __future__ import annotations

import pytest
import trio

from nursemaid import PortClosed, StartError, WorkerCrashed, open_pool
from nursemaid.testing import FaultPlan, LeakCheck

BOUND = 30  # seconds: a generous bound on anything that waits for real processes


@pytest.mark.slow
async def test_pool_of_workers_that_fail_init_gives_up_with_their_stderr(
    nursemaid_leak_check: LeakCheck,
) -> None:
    argv = FaultPlan(fail_init=True, exit_code=3).argv()
    with trio.fail_after(BOUND), pytest.raises(StartError) as info:
        async with open_pool(argv, size=1, intensity=1, period=60.0):
            pass  # pragma: no cover - the pool never opens
    assert "failing init as asked (--fail-init)" in str(info.value)
    assert info.value.returncode == 3


async def test_pool_replaces_a_worker_that_crashes_and_carries_on(
    nursemaid_leak_check: LeakCheck,
) -> None:
    argv = FaultPlan(crash_after=1).argv()
    with trio.fail_after(BOUND):
        async with open_pool(argv, size=1) as pool:
            assert await pool.execute("echo", "first") == "first"
            with pytest.raises((WorkerCrashed, PortClosed)) as info:
                await pool.execute("echo", "second")  # the worker dies on this one
            assert "crashing (--crash-after 1)" in info.value.stderr_tail
            assert await pool.execute("echo", "third") == "third"  # a fresh worker
            assert pool.statistics().restarts == 1
