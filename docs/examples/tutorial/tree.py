"""Step 4 of the tutorial: the pool as a supervised child, and its lifecycle events."""

import os
import signal
import sys

import trio

from nursemaid import ChildSpec, WorkerState, open_pool, open_supervisor


def show(event):
    # Called with every lifecycle transition of every worker (and session moves).
    if getattr(event, "to_state", None) is WorkerState.FAILED:
        print(f"  a worker went {event.from_state.name} -> FAILED on {event.event.name}")


async def workers(*, task_status=trio.TASK_STATUS_IGNORED):
    async with open_pool([sys.executable, "worker.py"], size=2) as pool:
        pool.subscribe(show)
        task_status.started(pool)  # the child's handle: what start_child returns
        await trio.sleep_forever()


async def main():
    async with open_supervisor([ChildSpec("workers", workers, shutdown=2.0)]) as sup:
        [child] = sup.which_children()
        pool = child.handle
        print("child", child.id, "is", child.state.name)
        print("add ->", await pool.execute("add", [3, 4]))
        async with pool.checkout() as lease:
            os.kill(lease.port.pid, signal.SIGKILL)  # the leased worker crashes
            try:
                await lease.request("add", [1, 1])
            except Exception as exc:
                print("request on the dead worker ->", type(exc).__name__)
        print("add ->", await pool.execute("add", [5, 6]))
    print("tree stopped; every worker reaped")


trio.run(main)
