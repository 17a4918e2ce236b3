"""A port whose worker died under a lease is never handed to the next client.

The port can know of the death (its watcher has reaped the worker, and
``wait_exited`` has returned) before the pool does: the port's ``state`` stays
``OPEN`` until a request notices. The client whose block ends in the same batch
of Trio's scheduler as the pool's own watch on the worker (``Pool._live``) checks
the port in; the pool must see that its worker is gone, rather than make it idle
and hand it to the queued client, whose request would then fail with
``WorkerCrashed`` through no fault of its own. Each round is a coin toss on the
scheduler's order, so the test repeats it ``ROUNDS`` times.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from nursemaid import PortClosed, WorkerCrashed, open_pool

WORKER = "import os\nfrom nursemaid import serve\nserve({'echo': lambda a: a})\n"
ROUNDS = 12


@pytest.mark.slow  # ROUNDS real worker processes, started one after another
async def test_a_port_whose_worker_died_under_a_lease_is_never_handed_on(tmp_path: Path) -> None:
    script = tmp_path / "w.py"
    script.write_text(WORKER)
    handed_a_dead_one = 0
    with trio.fail_after(60):
        async with open_pool(
            [sys.executable, str(script)], size=1, intensity=100, period=1000.0
        ) as pool:
            for _ in range(ROUNDS):
                async with trio.open_nursery() as nursery:

                    async def holder(task_status: trio.TaskStatus[None]) -> None:
                        async with pool.checkout() as lease:
                            task_status.started()
                            await trio.testing.wait_all_tasks_blocked()  # the other client queues
                            os.kill(lease.port.pid, signal.SIGKILL)
                            # Woken with Pool._live (same event): the block ends in that batch.
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
