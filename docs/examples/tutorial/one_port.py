"""Step 2 of the tutorial: one worker process, one port, one owner task."""

import sys

import trio

from nursemaid import RemoteError, open_port


async def main():
    async with open_port([sys.executable, "worker.py"]) as port:
        print("add ->", await port.request("add", [2, 3]))
        try:
            await port.request("divide", [1, 0])
        except RemoteError as exc:
            print("divide ->", type(exc).__name__, exc.type)
        print("the worker is still there:", await port.request("add", [4, 5]))
    print("closed; exit status", port.returncode)


trio.run(main)
