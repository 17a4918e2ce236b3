"""The port's exit watcher, and how a worker that goes away under a write is named.

The watcher reaps the worker (after ending what is left of its process group) and
sets the event the close sequence waits on: a Ctrl-C that lands inside it must
still end the program, not leave the close waiting for ever. A worker that stops
reading its stdin in the middle of a frame is *lost* — its fault, a
``WorkerCrashed`` — not a frame the caller *cut* by giving up, which a pool
judges differently (see ``test_pool_crash_accounting.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nursemaid import WorkerCrashed
from nursemaid.workers import open_port

KI_IN_WATCHER = Path(__file__).parent / "workers" / "ki_in_watcher.py"

STOPS_READING_MID_FRAME = [
    sys.executable,
    str(Path(__file__).parent / "workers" / "stops_reading_mid_frame.py"),
]
BIG = "x" * 5_000_000  # more than a pipe holds: the write blocks part-way


@pytest.mark.slow  # a Python program and its worker, ended by a real SIGINT
def test_a_keyboard_interrupt_in_the_exit_watcher_ends_the_program() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(KI_IN_WATCHER)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"hung for 15 s after a KeyboardInterrupt in the watcher; output: {out!r}")
    assert "ended KeyboardInterrupt" in out, out


@pytest.mark.slow  # waits the port's 1 s for the lingering worker's exit status
async def test_a_worker_that_stops_reading_mid_frame_is_lost_not_cut() -> None:
    async with open_port(STOPS_READING_MID_FRAME, shutdown=0.2) as port:
        with pytest.raises(WorkerCrashed):
            await port.request("echo", BIG)
        assert port._closed_how == "lost"


@pytest.mark.slow  # the worker lingers; the timeout cuts the wait for its status
async def test_with_a_timeout_a_worker_lost_mid_frame_is_still_a_crash() -> None:
    async with open_port(STOPS_READING_MID_FRAME, shutdown=0.2) as port:
        with pytest.raises(WorkerCrashed):  # the timeout cuts only the wait for its status
            await port.request("echo", BIG, timeout=0.5)
