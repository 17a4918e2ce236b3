"""A Ctrl-C that lands in the port's exit watcher, for ``test_port_exit_watcher.py``.

Trio delivers a ``KeyboardInterrupt`` into whatever unprotected frame runs when
SIGINT arrives. Here ``os.pidfd_open``, which the watcher calls first, raises a
real SIGINT once, so the signal's handler runs inside the watcher. The program
must end with the ``KeyboardInterrupt``; it prints ``ended <exception>`` once
``open_port``'s block has been left.
"""

import os
import signal
import sys

import trio

from nursemaid.workers import open_port

real_pidfd_open = os.pidfd_open
fired = False


def pidfd_open(pid: int, flags: int = 0) -> int:
    global fired
    if not fired:
        fired = True
        signal.raise_signal(signal.SIGINT)  # its handler runs at the next bytecode
    return real_pidfd_open(pid, flags)


async def main() -> None:
    worker = "import sys; sys.stdin.buffer.read()"
    async with open_port([sys.executable, "-c", worker], shutdown=0.2):
        os.pidfd_open = pidfd_open  # the watcher has not run yet
        await trio.sleep(0)
        print("block ends", flush=True)


try:
    trio.run(main)
except BaseException as exc:
    print("ended", repr(exc), flush=True)
