"""A worker that loses its stdout under every request exhausts the pool's intensity.

Such a worker (say, a careless library closed every fd it did not open) cannot
answer, and lingers instead of exiting within ``EXIT_STATUS_WAIT``. Its request
fails with ``WorkerCrashed``, and the pool counts it against the restart
intensity like a worker that crashes or answers garbage: a pool whose every
worker is lost this way gives up with ``StartError`` rather than replace them
for ever.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import trio

from nursemaid import StartError, WorkerCrashed, open_pool

WORKER = """
import os
import time

from nursemaid import serve


def lose(args):
    os.closerange(3, 256)  # whatever holds the reply pipe: e.g. a careless library
    os.close(1)
    time.sleep(30)


serve({"lose": lose})
"""

ROUNDS = 3


@pytest.mark.slow  # each lost worker lingers for EXIT_STATUS_WAIT (1 s)
async def test_a_worker_that_loses_its_stdout_under_every_request_exhausts_the_intensity(
    tmp_path: Path,
) -> None:
    script = tmp_path / "w.py"
    script.write_text(WORKER)

    async def lose_every_worker() -> None:
        async with open_pool(
            [sys.executable, str(script)],
            size=1,
            intensity=ROUNDS - 1,
            period=1000.0,
            shutdown=0.1,
        ) as pool:
            for _ in range(ROUNDS):
                with pytest.raises(WorkerCrashed):
                    await pool.execute("lose")
            with trio.move_on_after(5):  # the give-up cancels this (after its drain)
                await trio.sleep_forever()
            restarts = pool.statistics().restarts
            pytest.fail(
                f"{ROUNDS} workers lost under their leases, {restarts} replaced,"
                " and the pool carries on"
            )

    with trio.fail_after(30), pytest.raises(StartError):
        await lose_every_worker()
