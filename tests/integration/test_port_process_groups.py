"""A port's worker leaves nothing behind, and its port's signals always reach it.

A worker runs in a process group of its own, so its port can end whatever it
started: a grandchild that ignores SIGTERM and whose parent has already exited,
or the background job of a shell wrapper that ``exec``'d the worker. All of it
ends with the port, whether the port closes, its worker wedges, or its worker
crashes; a supervisor's ``BRUTAL_KILL`` does not wait for it. A worker that
moves itself into another group (say, to get the terminal's Ctrl-C back) is
still signalled by its port, or closing the port would wait for it for ever.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import trio
import trio.testing

from nursemaid import BRUTAL_KILL, ChildSpec, open_port, open_supervisor
from nursemaid.testing._leaks import child_pids, open_fds

# "grandchild" starts MID, which starts GRAND and exits at once: GRAND is left
# in the worker's group with no parent but init, and ignores SIGTERM. "wedge"
# makes the worker ignore SIGTERM and stdin close too.
WORKER = r"""
import os
import signal
import subprocess
import sys
import time

from nursemaid import serve

GRAND = '''
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(os.getpid(), flush=True)
time.sleep(60)
'''
MID = '''
import subprocess, sys
p = subprocess.Popen([sys.executable, "-c", %r], stdout=subprocess.PIPE)
print(p.stdout.readline().decode().strip(), flush=True)
''' % GRAND


def grandchild(args):
    out = subprocess.run([sys.executable, "-c", MID], stdout=subprocess.PIPE, check=True).stdout
    return int(out.decode().split()[0])


def wedge(args):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)


def leave_group(args):
    os.setpgid(0, os.getpgid(os.getppid()))  # e.g. to get the terminal's Ctrl-C again
    return os.getpgid(0)


serve({
    "grandchild": grandchild,
    "wedge": wedge,
    "leave_group": leave_group,
    "pid": lambda a: os.getpid(),
})
"""

SERVE_PID = "import os\nfrom nursemaid import serve\nserve({'pid': lambda a: os.getpid()})\n"


def _pidfd(pid: int) -> int:
    return os.pidfd_open(pid)


async def _ended_within(fds: list[int], seconds: float) -> bool:
    with trio.move_on_after(seconds):
        for fd in fds:
            await trio.lowlevel.wait_readable(fd)
        return True
    return False


@pytest.mark.parametrize(
    "how",
    [
        "close",
        pytest.param("close-wedged", marks=pytest.mark.slow),  # waits out the 0.3 s shutdown
        "crash",
    ],
)
async def test_a_grandchild_that_ignores_sigterm_ends_with_the_port(how: str) -> None:
    fds, children = open_fds(), child_pids()
    async with open_port([sys.executable, "-c", WORKER], shutdown=0.3) as port:
        grand = _pidfd(await port.request("grandchild"))
        if how == "close-wedged":
            with trio.move_on_after(0.2):
                await port.request("wedge")
        if how == "crash":
            os.kill(port.pid, signal.SIGKILL)
            await port.wait_exited()
    try:
        assert await _ended_within([grand], 5), "grandchild outlived its port"
    finally:
        os.close(grand)
    assert open_fds() == fds
    assert child_pids() == children


async def test_a_shell_wrappers_background_job_ends_with_the_port(tmp_path: Path) -> None:
    script = tmp_path / "w.py"
    script.write_text(SERVE_PID)
    argv = ["sh", "-c", f"sleep 100 & echo $! > {tmp_path}/bg; exec {sys.executable} {script}"]
    async with open_port(argv, shutdown=1.0) as port:
        assert await port.request("pid") == port.pid  # exec'd in place
        bg = _pidfd(int((tmp_path / "bg").read_text()))
    try:
        assert await _ended_within([bg], 5), "the wrapper's background job outlived the port"
    finally:
        os.close(bg)


async def test_brutal_kill_supervisor_ends_the_grandchildren_too() -> None:
    grands: list[int] = []

    async def child(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with open_port([sys.executable, "-c", WORKER], shutdown=5.0) as port:
            grands.append(await port.request("grandchild"))
            task_status.started()
            await port.request("wedge")

    t0 = time.monotonic()
    async with open_supervisor() as sup:
        await sup.start_child(ChildSpec(id="w", start=child, shutdown=BRUTAL_KILL))
        await trio.testing.wait_all_tasks_blocked()
        await sup.terminate_child("w")
    took = time.monotonic() - t0
    fd = _pidfd(grands[0])
    try:
        assert await _ended_within([fd], 5)
    finally:
        os.close(fd)
    assert took < 2, took


@pytest.mark.slow  # waits out the 0.3 s shutdown
async def test_a_worker_that_leaves_its_group_is_still_ended_by_its_port() -> None:
    # A port that signalled only its group would send neither SIGTERM nor SIGKILL
    # to a worker that moved to another group, and its shielded reap would wait
    # for ever. A watchdog thread kills the worker if the close has not ended it
    # within 5 s, so the test ends; the assertion says whether it had to. (Through
    # a pidfd: a pid read earlier may be another process's by then.)
    rescued: list[int] = []
    closed = threading.Event()
    async with open_port([sys.executable, "-c", WORKER], shutdown=0.3) as port:
        pid = port.pid
        pidfd = os.pidfd_open(pid)
        assert await port.request("leave_group") == os.getpgid(0)

        def watchdog() -> None:
            if not closed.wait(5):
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    rescued.append(pid)

        guard = threading.Thread(target=watchdog, daemon=True)
        guard.start()
        with trio.move_on_after(0.2):
            await port.request("wedge")
    closed.set()
    guard.join()
    os.close(pidfd)
    assert not rescued, (
        "the port's SIGTERM/SIGKILL never reached its worker: hung until the watchdog killed it"
    )
