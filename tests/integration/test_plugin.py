"""The pytest plugin, as a user's project sees it: fixtures work, leaks fail the test.

Each test writes a small test module and runs pytest on it in a fresh process
(``pytester.runpytest_subprocess``), where the plugin is loaded through its
``pytest11`` entry point exactly as in a user's project.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = """
[pytest]
trio_mode = true
filterwarnings = error
"""

USER_TESTS = """
import sys

import pytest
import trio

from nursemaid import ChildSpec
from nursemaid.supervisor import ChildExited, ChildRestarting, ExitKind
from nursemaid.testing import FAULT_WORKER
from nursemaid.workers import Transition, WorkerState


async def test_pool_fixture_serves_and_its_transitions_are_captured(
    nursemaid_pool, nursemaid_events
):
    assert await nursemaid_pool.execute("echo", [1, 2]) == [1, 2]
    idle = nursemaid_events.matching(Transition, to_state=WorkerState.IDLE)
    assert len({event.worker_id for event in idle}) == 2  # size=2 by default


async def test_supervisor_fixture_restarts_and_events_say_so(
    nursemaid_supervisor, nursemaid_events
):
    crashes = []

    async def crashes_once(*, task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()
        if not crashes:
            crashes.append(1)
            raise LookupError("first run fails")
        await trio.sleep_forever()

    await nursemaid_supervisor.start_child(ChildSpec("w", crashes_once))
    with trio.fail_after(5):
        restarting = await nursemaid_events.wait_for(ChildRestarting, child_id="w")
    assert restarting.supervisor == nursemaid_supervisor.name
    assert nursemaid_events.matching(ChildExited, child_id="w", kind=ExitKind.CRASH)
    assert nursemaid_supervisor.name.startswith("supervisor:test_supervisor_fixture")


names = []


@pytest.mark.parametrize("n", [1, 2])
async def test_every_test_gets_its_own_supervisor_name(nursemaid_supervisor, n):
    names.append(nursemaid_supervisor.name)
    assert len(set(names)) == len(names)


async def test_open_pool_factory_makes_several_pools(nursemaid_open_pool):
    one = await nursemaid_open_pool(FAULT_WORKER, size=1)
    two = await nursemaid_open_pool(FAULT_WORKER, size=1)
    assert await one.execute("pid") != await two.execute("pid")
"""

OVERRIDE_TESTS = """
import pytest


@pytest.fixture
def nursemaid_pool_options():
    return {"size": 1, "lazy": True}


async def test_overridden_options_reach_the_pool(nursemaid_pool):
    assert nursemaid_pool.statistics().size == 1
    assert await nursemaid_pool.execute("echo", "x") == "x"
"""

LEAKY_TESTS = """
import os
import subprocess
import sys


async def test_leaves_a_pipe_open(nursemaid_leak_check):
    os.pipe()


async def test_leaves_a_child_running(nursemaid_leak_check):
    # It exits when this pytest process ends and its stdin closes.
    subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)


async def test_cleans_up(nursemaid_leak_check):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
"""


@pytest.mark.slow
def test_fixtures_give_each_test_a_supervisor_and_pools_with_captured_events(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_user=USER_TESTS, test_override=OVERRIDE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


@pytest.mark.slow
def test_leak_check_fails_a_test_that_leaves_a_descriptor_or_a_process(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(INI.replace("filterwarnings = error", ""))
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore")
    # pytest-trio runs fixture teardown inside the test's trio.run: a leak fails the test.
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_leaves_a_pipe_open*",
            "*nursemaid leak check: descriptors left open: {*pipe:*",
            "*test_leaves_a_child_running*",
            "*child processes left behind: [[]*",
        ]
    )
