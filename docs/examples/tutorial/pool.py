"""Step 3 of the tutorial: a pool of worker processes, and a worker killed under it."""

import os
import signal
import sys

import trio

from nursemaid import Transition, WorkerState, open_pool


async def main():
    async with open_pool([sys.executable, "worker.py"], size=2) as pool:
        # The pool does checkout, request and checkin for you:
        print("add ->", await pool.execute("add", [1, 2]))

        # Or hold one worker for several requests (its port is yours meanwhile):
        async with pool.checkout() as lease:
            pid = await lease.request("whoami")
            print("leased one worker, pid", type(pid).__name__)

        # Kill that worker behind the pool's back; the pool notices and replaces it.
        failed = trio.Event()
        pool.subscribe(
            lambda event: (
                isinstance(event, Transition)
                and event.to_state is WorkerState.FAILED
                and failed.set()
            )
        )
        os.kill(pid, signal.SIGKILL)
        await failed.wait()
        print("restarts:", pool.statistics().restarts)
        print("add ->", await pool.execute("add", [20, 22]))


trio.run(main)
