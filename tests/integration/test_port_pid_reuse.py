"""A port's last SIGKILL to its worker's group never reaches a process not its own.

Once the worker has exited, its port kills what is left of the worker's group.
Anyone may read ``Port.returncode`` before that happens (the pool's
``_judge_death`` does), and Trio's ``Process.returncode`` reaps as it polls. A
reaped worker whose group is empty frees its pid, and so the group's id: a
``killpg`` sent after that could reach whichever process leads that group now.
Real pid reuse needs the pid counter to wrap within that window (``pid_max``
here is 32768); this test forces it with ``ns_last_pid``, so it needs root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import trio
import trio.testing

from nursemaid import open_port

NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"
ATTEMPTS = 5  # another process on the machine may take the pid first


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to set ns_last_pid")
async def test_the_ports_late_killpg_reaches_no_process_that_is_not_its_own() -> None:
    for _ in range(ATTEMPTS):
        async with open_port([sys.executable, "-c", "import sys; sys.exit(3)"]) as port:
            pid = port.pid
            # Without a checkpoint (so the port's exit watcher cannot run
            # meanwhile), wait for the exit by reading port.returncode, as
            # Pool._judge_death does: a read that reaps, unless the port prevents it.
            deadline = time.monotonic() + 10
            while port.returncode is None and time.monotonic() < deadline:
                time.sleep(0.001)
            assert port.returncode == 3
            # Still before the watcher runs: someone else's group leader gets the pid.
            with open(NS_LAST_PID, "w") as f:
                f.write(str(pid - 1))
            innocent = subprocess.Popen(["sleep", "30"], process_group=0)
            if innocent.pid != pid:
                held = os.path.exists(f"/proc/{pid}")  # the unreaped worker still holds it
                innocent.kill()
                innocent.wait()
                if held:
                    return  # the pid (so the group's id) cannot be reused: fine
                continue
            await trio.testing.wait_all_tasks_blocked()  # the watcher runs: killpg(pid)
        try:
            returncode = innocent.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            innocent.kill()
            innocent.wait()
            return  # not hit
        pytest.fail(
            f"the port's SIGKILL reached pid {pid}, not its own, now (returncode {returncode})"
        )
    pytest.skip("could not get the pid reused")
