"""Ctrl-C typed at a real terminal ends the program and every worker it started.

The program (``workers/ctrl_c_script.py``) runs under a pty, so ^C goes through
the line discipline to the terminal's foreground process group, exactly as when
a user presses it. With ``process_group=True`` the workers are not in that group
and get no SIGINT: the program's ``KeyboardInterrupt`` must close their ports,
which end them and the processes they started. With ``process_group=False`` they
get the SIGINT too. Either way the program's ``finally`` runs, it exits within
seconds, and nothing it started is left running.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "workers" / "ctrl_c_script.py"


def _read_until(fd: int, marker: bytes, limit: float) -> bytes:
    out = b""
    end = time.monotonic() + limit
    while marker not in out and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def _wait_line(fifo: Path, limit: float) -> bytes:
    """The first line a writer puts in *fifo*, or b"" after *limit* seconds."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # readable once a writer writes
    try:
        ready, _, _ = select.select([fd], [], [], limit)
        return os.read(fd, 100) if ready else b""
    finally:
        os.close(fd)


def _still_running(pidfds: dict[int, int], limit: float) -> list[int]:
    """The pids whose process has not ended within *limit* seconds."""
    running = dict(pidfds)
    end = time.monotonic() + limit
    while running and (left := end - time.monotonic()) > 0:
        ended, _, _ = select.select(list(running.values()), [], [], left)
        for pid in [p for p, fd in running.items() if fd in ended]:
            del running[pid]
    return list(running)


@pytest.mark.slow  # starts a Python program and its workers under a pty
@pytest.mark.parametrize("group", [True, False], ids=["group", "nogroup"])
@pytest.mark.parametrize("kind", ["port", "pool"])
def test_ctrl_c_at_a_terminal_ends_the_program_and_every_worker(
    kind: str, group: bool, tmp_path: Path
) -> None:
    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    pid, fd = pty.fork()
    if pid == 0:
        argv = [sys.executable, str(SCRIPT), kind, "1" if group else "0", str(fifo)]
        os.execv(sys.executable, argv)
    pidfds: dict[int, int] = {}
    try:
        out = _read_until(fd, b"READY", 20)
        assert b"READY" in out, out
        pids = [int(p) for p in out.split(b"PIDS")[1].split(b"\n")[0].split()]
        pidfds = {p: os.pidfd_open(p) for p in pids}
        assert _wait_line(fifo, 20) == b"started\n"  # the slow request is under way
        t0 = time.monotonic()
        os.write(fd, b"\x03")
        out += _read_until(fd, b"\n>>>>never", 10)
        _, status = os.waitpid(pid, 0)
        took = time.monotonic() - t0
        pid = 0
        text = out.decode(errors="replace")
        left = _still_running(pidfds, 2.0)
        for p in left:
            signal.pidfd_send_signal(pidfds[p], signal.SIGKILL)
        print(text[-3000:])  # shown when an assertion below fails
        print("status", status, "took", took)
        assert "KeyboardInterrupt" in text
        assert "FINALLY" in text
        assert not left, f"left running: {left}"
        assert took < 5
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
        for pidfd in pidfds.values():
            os.close(pidfd)
