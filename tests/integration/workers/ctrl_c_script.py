"""A Trio program with port workers, for ``test_ctrl_c_in_a_terminal.py`` to run under a pty.

Usage: ``ctrl_c_script.py port|pool 1|0 FIFO`` (``process_group`` on or off).
It starts one port, or a pool of two, whose workers each start a child of their
own; prints ``PIDS`` (every worker's pid and its child's) and ``READY``; then
waits on a 30 s request until ^C. The worker writes a line to FIFO when that
request has begun. Its ``finally`` prints ``FINALLY``.
"""

import sys

import trio

from nursemaid import PortWorkers, open_pool, open_port

WORKER = r"""
import os
import subprocess
import sys
import time

from nursemaid import serve

kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def slow(args):
    seconds, fifo = args
    with open(fifo, "w") as started:  # tell the test the request is under way
        started.write("started\n")
    time.sleep(seconds)
    return "done"


serve({"pid": lambda a: [os.getpid(), kid.pid], "slow": slow})
"""


async def main(kind: str, group: bool, fifo: str) -> None:
    pids: list[int] = []
    try:
        if kind == "port":
            async with open_port(
                [sys.executable, "-c", WORKER], shutdown=1.0, process_group=group
            ) as port:
                pids += await port.request("pid")
                print("PIDS", *pids, flush=True)
                print("READY", flush=True)
                await port.request("slow", [30, fifo])
        else:
            factory = PortWorkers((sys.executable, "-c", WORKER), process_group=group, shutdown=1.0)
            async with open_pool(factory, size=2) as pool:
                async with pool.checkout() as a, pool.checkout() as b:
                    pids += await a.request("pid")
                    pids += await b.request("pid")
                print("PIDS", *pids, flush=True)
                print("READY", flush=True)
                await pool.execute("slow", [30, fifo])
    finally:
        print("FINALLY", flush=True)


trio.run(main, sys.argv[1], sys.argv[2] == "1", sys.argv[3])
