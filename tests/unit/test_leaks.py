"""The leak checks see descriptors and children come and go."""

from __future__ import annotations

import os
import subprocess
import sys

from nursemaid.testing._leaks import child_pids, describe_fds, open_fds


def test_open_fds_sees_a_new_pipe_and_its_closing() -> None:
    before = open_fds()
    read_end, write_end = os.pipe()
    try:
        assert open_fds() - before == {read_end, write_end}
        assert describe_fds({read_end})[read_end].startswith("pipe:")
    finally:
        os.close(read_end)
        os.close(write_end)
    assert open_fds() == before


def test_child_pids_lists_a_child_until_it_is_reaped() -> None:
    before = child_pids()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        assert child.pid in child_pids()
    finally:
        child.wait()
    assert child_pids() == before
