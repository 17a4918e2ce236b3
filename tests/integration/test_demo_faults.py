"""Each fault the demo injects, one at a time, through a real pool of demo workers.

These back the demo's claims (and rows of docs/bad-input.md): a worker killed
mid-request, a hung worker, a worker writing garbage, a worker whose init fails,
each gives the client a named error (or none at all), and the pool replaces the
worker. The ``nursemaid_leak_check`` fixture checks no process or descriptor leaks.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from nursemaid import (
    Pool,
    PortClosed,
    RemoteError,
    RemoteProtocolError,
    RequestTimeout,
    UsageError,
    WorkerState,
    open_pool,
)
from nursemaid._cli._demo import worker_argv
from nursemaid.testing._plugin import LeakCheck

pytestmark = pytest.mark.slow


@pytest.fixture
async def pool(tmp_path: Path, nursemaid_leak_check: LeakCheck) -> AsyncIterator[Pool]:
    async with open_pool(worker_argv(str(tmp_path)), size=1, shutdown=0.5) as pool:
        yield pool


def arm(pool_dir: Path, fault: str) -> None:
    (pool_dir / fault).touch()


class ReadyWorkers:
    """Counts workers that became ready (HANDSHAKING -> IDLE) since it subscribed."""

    def __init__(self, pool: Pool) -> None:
        self.ready = 0
        self._changed = trio.Event()
        pool.subscribe(self._see)

    def _see(self, event: object) -> None:
        if getattr(event, "from_state", None) is WorkerState.HANDSHAKING and (
            getattr(event, "to_state", None) is WorkerState.IDLE
        ):
            self.ready += 1
            self._changed.set()
            self._changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(10):
            while self.ready < count:
                await self._changed.wait()


async def test_worker_killed_mid_lease_is_port_closed_and_replaced(pool: Pool) -> None:
    new_workers = ReadyWorkers(pool)
    async with pool.checkout() as lease:
        os.kill(lease.port.pid, signal.SIGKILL)
        with pytest.raises(PortClosed) as info:
            await lease.request("work", {"n": 10})
        # caught inside the block: the pool must still see that this worker is dead
    assert info.value.returncode == -signal.SIGKILL
    await new_workers.wait_for(1)
    assert pool.statistics().restarts == 1
    assert (await pool.execute("work", {"n": 10}))["value"] == 45


async def test_hung_worker_is_request_timeout_and_replaced(pool: Pool, tmp_path: Path) -> None:
    new_workers = ReadyWorkers(pool)
    arm(tmp_path, "hang")
    with pytest.raises(RequestTimeout):
        await pool.execute("work", {"n": 10}, timeout=0.5)
    await new_workers.wait_for(1)
    assert pool.statistics().restarts == 1
    assert (await pool.execute("work", {"n": 10}))["value"] == 45


async def test_worker_writing_garbage_is_remote_protocol_error_and_replaced(
    pool: Pool, tmp_path: Path
) -> None:
    new_workers = ReadyWorkers(pool)
    arm(tmp_path, "garbage")
    with pytest.raises(RemoteProtocolError):
        await pool.execute("work", {"n": 10})
    await new_workers.wait_for(1)
    assert pool.statistics().restarts == 1
    assert (await pool.execute("work", {"n": 10}))["value"] == 45


async def test_worker_whose_init_fails_is_replaced_and_no_client_sees_it(
    pool: Pool, tmp_path: Path
) -> None:
    new_workers = ReadyWorkers(pool)
    failed = []
    pool.subscribe(
        lambda event: (
            failed.append(event) if getattr(event, "to_state", None) is WorkerState.FAILED else None
        )
    )
    arm(tmp_path, "init-fail")
    [worker] = pool.statistics().workers
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)  # its replacement takes the armed init failure
    await new_workers.wait_for(1)  # the second replacement: the first one failed its init
    assert pool.statistics().restarts == 2
    assert [event.from_state for event in failed] == [WorkerState.IDLE, WorkerState.HANDSHAKING]
    assert "init failed (an injected fault" in failed[1].cause
    assert (await pool.execute("work", {"n": 10}))["value"] == 45


async def test_handler_error_is_remote_error_and_the_worker_stays(pool: Pool) -> None:
    with pytest.raises(RemoteError, match="the fail op always fails"):
        await pool.execute("fail", 1)
    assert pool.statistics().restarts == 0
    assert (await pool.execute("work", {"n": 10}))["value"] == 45


async def test_lease_used_after_its_block_is_a_usage_error(pool: Pool) -> None:
    async with pool.checkout() as lease:
        pass
    with pytest.raises(UsageError, match="has ended"):
        await lease.request("work", {"n": 10})
