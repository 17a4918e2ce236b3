"""Start a worker process, talk to it through a port, and shut it down.

    python examples/port_hello.py

The worker is ``hello_worker.py`` beside this file. The port starts it (no
shell), sends framed JSON requests, and when the ``async with`` block ends closes
its stdin, waits for it to exit and reaps it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from nursemaid import RemoteError, open_port

WORKER = Path(__file__).with_name("hello_worker.py")


async def main() -> None:
    async with open_port([sys.executable, str(WORKER)]) as port:
        print(f"started worker pid {port.pid}")
        print(await port.request("hello", "world"))
        print("2 + 3 =", await port.request("add", [2, 3]))
        try:
            await port.request("divide", [1, 0])
        except RemoteError as exc:
            print(f"the worker raised {exc.type}: {exc.message}")
        print("ping ->", await port.request("ping"))
    print(f"worker exited with status {port.returncode}")


if __name__ == "__main__":
    trio.run(main)
