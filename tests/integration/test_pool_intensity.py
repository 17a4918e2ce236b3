"""The pool's restart intensity for workers that die *after* a good handshake.

A worker that passes its handshake and then dies (at its first request, say)
counts against the pool's restart window exactly as a failed start does, as an
OTP child that keeps crashing soon after its start exhausts its supervisor's
intensity; crashes spaced out beyond the window never do. Real fault-worker
processes on a :class:`trio.testing.MockClock` that stands still: the test
moves it by hand between crashes (``clock.jump``), so the spacing is exact and
costs no waiting. (Should the pool wait on the clock where it must not, the
clock jumps after ``STUCK`` real seconds of idleness and ``fail_after`` ends the
test instead of letting it hang.) A pool that gives up under a supervisor is
that supervisor's crash, and its own intensity decides the rest (in-process
workers, autojump clock).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from nursemaid import (
    ChildSpec,
    InProcessWorkers,
    Pool,
    RestartIntensityExceeded,
    StartError,
    WorkerCrashed,
    open_pool,
    open_supervisor,
)
from nursemaid.testing import FaultPlan, LeakCheck
from nursemaid.workers._lifecycle import Transition, WorkerState
from nursemaid.workers._pool_inprocess import InProcessWorker

# Each worker answers one request, then dies on the next with status 70.
ANSWERS_ONCE = FaultPlan(crash_after=1).argv()
STUCK = 5.0  # real seconds with nothing to do: then the mock clock jumps
BOUND = 1000.0  # virtual seconds, reached only by such a jump


def _ends(transitions: list[Transition]) -> list[tuple[WorkerState, WorkerState]]:
    return [
        (t.from_state, t.to_state)
        for t in transitions
        if t.to_state in (WorkerState.FAILED, WorkerState.STOPPING)
    ]


async def _serve_once_then_crash(pool: Pool, i: int) -> None:
    """One fresh worker's life: it answers, then dies under the next request."""
    assert await pool.execute("echo", i) == i
    with pytest.raises(WorkerCrashed) as info:
        await pool.execute("echo", i)
    assert info.value.returncode == 70


@pytest.mark.slow
async def test_workers_that_die_soon_after_their_handshake_exhaust_the_pools_intensity(
    mock_clock: trio.testing.MockClock, nursemaid_leak_check: LeakCheck
) -> None:
    mock_clock.autojump_threshold = STUCK
    transitions: list[Transition] = []

    async def crash_twice() -> None:
        async with open_pool(
            ANSWERS_ONCE, size=1, intensity=1, period=1.0, subscribers=[transitions.append]
        ) as pool:
            await _serve_once_then_crash(pool, 0)  # at t=0: one failure in the window
            mock_clock.jump(1.0)  # the window's boundary counts, as in OTP
            await _serve_once_then_crash(pool, 1)  # at t=1: two, more than intensity=1
            await pool.aclose()  # returns (or is cancelled) once the run has given up

    with (
        trio.fail_after(BOUND),
        pytest.raises(StartError, match=r"2 worker failures within 1\.0 s") as info,
    ):
        await crash_twice()
    # Crashes, not failed starts: every handshake succeeded, and the give-up names
    # the last death, with the worker's status and stderr.
    assert "worker exited with status 70" in str(info.value)
    assert "crashing (--crash-after 1)" in info.value.stderr_tail
    assert info.value.returncode == 70
    assert _ends(transitions) == [(WorkerState.LEASED, WorkerState.FAILED)] * 2
    assert trio.current_time() == 1.0


@pytest.mark.slow
async def test_crashes_spaced_wider_than_the_window_never_make_the_pool_give_up(
    mock_clock: trio.testing.MockClock, nursemaid_leak_check: LeakCheck
) -> None:
    mock_clock.autojump_threshold = STUCK
    transitions: list[Transition] = []
    with trio.fail_after(BOUND):
        async with open_pool(
            ANSWERS_ONCE, size=1, intensity=1, period=1.0, subscribers=[transitions.append]
        ) as pool:
            for i in range(4):
                await _serve_once_then_crash(pool, i)
                mock_clock.jump(1.5)  # the last crash has left the window by the next one
            assert await pool.execute("echo", "still serving") == "still serving"
            assert pool.statistics().restarts == 4
    assert _ends(transitions)[:4] == [(WorkerState.LEASED, WorkerState.FAILED)] * 4
    # Only the test moved the clock: a crash's replacement starts at once (the
    # backoff is for failed starts), so nobody waited on it.
    assert trio.current_time() == 6.0


async def test_a_supervised_pool_that_keeps_giving_up_exhausts_its_supervisors_intensity(
    autojump_clock: object,
) -> None:
    workers: list[InProcessWorker] = []
    broken = False

    def ping(_: object) -> str:
        if broken:
            raise RuntimeError("weights.bin is gone")
        return "pong"

    factory = InProcessWorkers({"ping": ping, "echo": lambda a: a}, on_open=workers.append)
    pool = Pool(factory, size=1, intensity=1)

    async def break_the_program() -> None:
        nonlocal broken
        async with open_supervisor([ChildSpec("workers", pool.run)], intensity=2, period=5.0):
            assert await pool.execute("echo", 1) == 1
            broken = True
            workers[0].crash(70, "segfault\n")  # its replacements cannot start
            await trio.sleep_forever()

    with pytest.raises(RestartIntensityExceeded) as info:
        await break_the_program()
    # The pool gave up (StartError: the child's crash); each restart of pool.run
    # then failed to open (a failed restart, retried, each try counted): the third
    # restart within the period is one too many for intensity=2.
    assert info.value.child_id == "workers"
    assert len(info.value.restarts) == 3
    assert isinstance(info.value.reason, StartError)
    assert "pool gave up" in str(info.value.reason)
    assert "weights.bin is gone" in str(info.value.reason)
    assert all(w.returncode is not None for w in workers)  # every worker is gone
