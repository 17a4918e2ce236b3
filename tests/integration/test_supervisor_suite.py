"""OTP's supervisor_SUITE, the single-node cases that apply, ported to nursemaid.

Each test is named after its Erlang case (``sup_start_normal`` →
``test_sup_start_normal``); where one test runs several cases that differ only in
their data, its parameter ids are the cases' names. Children are scripted doubles
(:class:`nursemaid.testing.ScriptedChildren`): the test tells a child to crash or
to return, and every start, stop, crash and normal exit lands in one ordered log,
which the tests compare with what OTP does. Time is Trio's MockClock (the
``autojump_clock`` fixture): no real sleeps.

Cases that do not apply: ``sup_start_ignore_*`` (a Trio start function has no
``ignore`` return), ``simple_one_for_one*`` (no such strategy: use
``start_child``), ``code_change*``, ``child_unlink``, ``simple_global_supervisor``
(no processes, links or global names), ``*_shutdown`` exits with reason
``shutdown`` (a Trio child cannot be cancelled by anyone but its supervisor;
the table row exists and is tested in ``tests/unit/test_policy.py``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from nursemaid import (
    BRUTAL_KILL,
    INFINITY,
    AutoShutdown,
    ChildAlreadyExists,
    ChildNotFound,
    ChildRunning,
    ChildSpec,
    ChildState,
    Restart,
    RestartIntensityExceeded,
    StartError,
    Strategy,
    Supervisor,
    UsageError,
    open_supervisor,
)
from nursemaid.testing import ScriptedChildren, ScriptedCrash, ScriptedStartFailure

P, T, TMP = Restart.PERMANENT, Restart.TRANSIENT, Restart.TEMPORARY


def states(sup: Supervisor) -> list[tuple[Hashable, ChildState]]:
    return [(c.id, c.state) for c in sup.which_children()]


def counts(sup: Supervisor) -> list[int]:
    c = sup.count_children()
    return [c.specs, c.active, c.supervisors, c.workers]


# ------------------------------------------------------------------ sup_start


async def test_sup_start_normal(autojump_clock: MockClock) -> None:
    async with open_supervisor([], strategy=Strategy.ONE_FOR_ONE, intensity=2, period=3600) as sup:
        assert sup.which_children() == []
    assert counts(sup) == [0, 0, 0, 0]


async def test_sup_start_fail(autojump_clock: MockClock) -> None:
    # An initial child fails: the ones started before it stop in reverse order.
    kids = ScriptedChildren()
    kids.fail_start["c"] = 1
    with pytest.raises(StartError) as info:
        async with open_supervisor(
            [kids.spec("a"), kids.spec("b"), kids.spec("c"), kids.spec("d")]
        ):
            pytest.fail("the block must not run")  # pragma: no cover
    assert info.value.child_id == "c"
    assert isinstance(info.value.reason, ScriptedStartFailure)
    assert info.value.__cause__ is info.value.reason
    assert kids.take() == [
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
        ("stop", "b"),
        ("stop", "a"),
    ]


async def test_sup_start_error_return(autojump_clock: MockClock) -> None:
    # Returning without calling started is a start failure, not a hang.
    async def returns(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        return None

    with pytest.raises(StartError, match=r"returned without calling task_status\.started"):
        async with open_supervisor([ChildSpec("r", returns)]):
            pass  # pragma: no cover


async def test_sup_start_timeout_is_a_start_failure(autojump_clock: MockClock) -> None:
    async def never(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep_forever()

    start = trio.current_time()
    with pytest.raises(StartError) as info:
        async with open_supervisor([ChildSpec("slow", never, start_timeout=2.5)]):
            pass  # pragma: no cover
    assert isinstance(info.value.reason, TimeoutError)
    assert trio.current_time() - start == pytest.approx(2.5)


async def test_sup_start_map(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    specs = [kids.spec("child1"), kids.spec("child2", shutdown=BRUTAL_KILL)]
    async with open_supervisor(specs) as sup:
        (c1, c2) = sup.which_children()
        assert (c1.spec.restart, c1.spec.shutdown) == (P, 5.0)
        assert c2.spec.shutdown is BRUTAL_KILL


async def test_sup_flags(autojump_clock: MockClock) -> None:
    for options in (
        {"strategy": "none_for_one"},
        {"intensity": -1},
        {"period": 0},
        {"auto_shutdown": "never"},
    ):
        with pytest.raises((TypeError, ValueError)):
            Supervisor([], **options)


async def test_child_specs(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([]) as sup:
        with pytest.raises(TypeError, match="children must be ChildSpec instances"):
            await sup.start_child("hej")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="is significant but the supervisor has"):
            await sup.start_child(kids.spec("s", T, significant=True))
        assert sup.which_children() == []


# ------------------------------------------------------------------- sup_stop


@pytest.mark.parametrize(
    ("cleanup", "shutdowns", "took", "cut"),
    [
        # child2 stops first (reverse order); each gets all the time it needs
        ((100.0, 100.0), (INFINITY, INFINITY), 200.0, []),
        # child2 is cut after its 1 s; child1 needs only 0.5 s of its 1 s
        ((0.5, 200.0), (1.0, 1.0), 1.5, ["child2"]),
        # child2 gets no grace at all
        ((0.5, 200.0), (1.0, BRUTAL_KILL), 0.5, ["child2"]),
    ],
    ids=["sup_stop_infinity", "sup_stop_timeout", "sup_stop_brutal_kill"],
)
async def test_sup_stop_gives_each_child_its_shutdown(
    autojump_clock: MockClock,
    cleanup: tuple[float, float],
    shutdowns: tuple[Any, Any],
    took: float,
    cut: list[str],
) -> None:
    kids = ScriptedChildren()
    kids.cleanup.update(child1=cleanup[0], child2=cleanup[1])
    start = trio.current_time()
    async with open_supervisor([]) as sup:
        await sup.start_child(kids.spec("child1", shutdown=shutdowns[0]))
        await sup.start_child(kids.spec("child2", shutdown=shutdowns[1]))
    assert trio.current_time() - start == pytest.approx(took)
    assert kids.grace_cut == cut


# ------------------------------------------------------------------ child_adm


async def test_child_adm(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("child1")], name="sup_test") as sup:
        assert states(sup) == [("child1", ChildState.RUNNING)]
        assert counts(sup) == [1, 1, 0, 1]

        with pytest.raises(ChildAlreadyExists, match="already has a child 'child1', running"):
            await sup.start_child(kids.spec("child1"))

        with pytest.raises(ChildNotFound) as info:
            await sup.terminate_child("hej")
        assert info.value.child_id == "hej"
        await sup.terminate_child("child1")
        assert kids.take()[-1] == ("stop", "child1")
        assert states(sup) == [("child1", ChildState.STOPPED)]
        assert counts(sup) == [1, 0, 0, 1]
        await sup.terminate_child("child1")  # like deleting what does not exist: fine

        with pytest.raises(ChildAlreadyExists, match="present \\(not running\\)"):
            await sup.start_child(kids.spec("child1"))

        handle = await sup.restart_child("child1")
        assert sup.which_children()[0].handle == handle
        assert counts(sup) == [1, 1, 0, 1]
        with pytest.raises(ChildRunning):
            await sup.restart_child("child1")
        with pytest.raises(ChildNotFound):
            await sup.restart_child("child2")

        with pytest.raises(ChildRunning):
            await sup.delete_child("child1")
        with pytest.raises(ChildNotFound):
            await sup.delete_child("hej")
        await sup.terminate_child("child1")
        await sup.delete_child("child1")
        with pytest.raises(ChildNotFound):
            await sup.restart_child("child1")
        assert sup.which_children() == []
        assert counts(sup) == [0, 0, 0, 0]

        handle3 = await sup.start_child(kids.spec("child1"))
        assert sup.which_children()[0].handle == handle3
        assert counts(sup) == [1, 1, 0, 1]
    with pytest.raises(UsageError, match="is not running"):
        await sup.start_child(kids.spec("late"))


async def test_extra_return(autojump_clock: MockClock) -> None:
    # start_child and restart_child return what the child passed to started().
    kids = ScriptedChildren()
    async with open_supervisor([]) as sup:
        first = await sup.start_child(kids.spec("child1"))
        assert first == "child1#1"
        await sup.terminate_child("child1")
        assert await sup.restart_child("child1") == "child1#2"


# ------------------------------------------------ normal / abnormal termination


@pytest.mark.parametrize(
    ("restart", "how", "after"),
    [
        (P, "exit", [("child1", ChildState.RUNNING)]),
        (T, "exit", [("child1", ChildState.STOPPED)]),
        (TMP, "exit", []),
        (P, "crash", [("child1", ChildState.RUNNING)]),
        (T, "crash", [("child1", ChildState.RUNNING)]),
        (TMP, "crash", []),
    ],
    ids=[
        "permanent_normal",
        "transient_normal",
        "temporary_normal",
        "permanent_abnormal",
        "transient_abnormal",
        "temporary_abnormal",
    ],
)
async def test_restart_type_termination(
    autojump_clock: MockClock, restart: Restart, how: str, after: list[tuple[Hashable, ChildState]]
) -> None:
    # permanent_normal, transient_normal, temporary_normal,
    # permanent_abnormal, transient_abnormal, temporary_abnormal
    kids = ScriptedChildren()
    async with open_supervisor([], intensity=2, period=3600) as sup:
        await sup.start_child(kids.spec("child1", restart))
        await (kids.crash("child1") if how == "crash" else kids.exit("child1"))
        assert states(sup) == after
        restarted = after and after[0][1] is ChildState.RUNNING
        assert kids.take()[-1] == (("start", "child1") if restarted else (how, "child1"))


async def test_permanent_normal(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("child1")]) as sup:
        await kids.exit("child1")
        assert counts(sup) == [1, 1, 0, 1]
        assert sup.which_children()[0].restarts == 1


async def test_transient_normal(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("child1", T)]) as sup:
        await kids.exit("child1")
        assert counts(sup) == [1, 0, 0, 1]


async def test_temporary_abnormal(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("child1", TMP)]) as sup:
        await kids.crash("child1")
        assert counts(sup) == [0, 0, 0, 0]


async def test_temporary_bystander(autojump_clock: MockClock) -> None:
    # A temporary sibling stopped by a one_for_all restart is dropped, not restarted.
    kids = ScriptedChildren()
    children = [kids.spec("child1", P), kids.spec("child2", TMP)]
    async with open_supervisor(children, strategy=Strategy.ONE_FOR_ALL) as sup:
        kids.take()
        await kids.crash("child1")
        assert kids.take() == [("crash", "child1"), ("stop", "child2"), ("start", "child1")]
        assert states(sup) == [("child1", ChildState.RUNNING)]


async def test_do_not_save_child_specs_for_temporary_children(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([]) as sup:
        await sup.start_child(kids.spec("t1", TMP))
        await sup.start_child(kids.spec("t2", TMP))
        await sup.start_child(kids.spec("t3", TMP))
        await sup.terminate_child("t1")
        await kids.crash("t2")
        await kids.exit("t3")
        assert sup.which_children() == []
        with pytest.raises(ChildNotFound):
            await sup.restart_child("t1")


# --------------------------------------------------------- restart strategies


async def test_multiple_restarts(autojump_clock: MockClock) -> None:
    # Restarts within the intensity keep the child alive; one more escalates.
    kids = ScriptedChildren()
    with pytest.raises(RestartIntensityExceeded) as info:  # noqa: PT012 - the scenario is the block
        async with open_supervisor([kids.spec("child1")], intensity=3, period=3600):
            for _ in range(3):
                await kids.crash("child1")
                assert kids.running() == {"child1"}
            await kids.crash("child1")
            pytest.fail("the block must be cancelled")  # pragma: no cover
    assert info.value.intensity == 3
    assert len(info.value.restarts) == 4
    assert info.value.child_id == "child1"
    assert isinstance(info.value.reason, ScriptedCrash)


async def test_restart_intensity_forgets_restarts_older_than_period(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("child1")], intensity=1, period=10) as sup:
        for _ in range(5):
            await kids.crash("child1")
            await trio.sleep(11)
        assert sup.which_children()[0].restarts == 5


async def test_restart_intensity_follows_the_worked_timeline(autojump_clock: MockClock) -> None:
    # docs/supervision.md: intensity 3, period 5; crashes at 0, 1, 2, 6, 6.5 are
    # restarted, the one at 7 is the fourth within 5 s and stops the supervisor.
    kids = ScriptedChildren()
    start = trio.current_time()
    with pytest.raises(RestartIntensityExceeded) as info:  # noqa: PT012 - the scenario is the block
        async with open_supervisor([kids.spec("a")], intensity=3, period=5.0):
            for at in (0, 1, 2, 6, 6.5, 7):
                await trio.sleep(start + at - trio.current_time())
                await kids.crash("a")
            pytest.fail("the sixth crash must stop the supervisor")  # pragma: no cover
    assert [t - start for t in info.value.restarts] == [2, 6, 6.5, 7]


async def test_one_for_one(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("child1"), kids.spec("child2")]) as sup:
        kids.take()
        await kids.crash("child1")
        assert kids.take() == [("crash", "child1"), ("start", "child1")]
        assert counts(sup) == [2, 2, 0, 2]


async def test_one_for_one_escalation(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    kids.fail_start["child1"] = -1
    with pytest.raises(RestartIntensityExceeded):  # noqa: PT012 - the scenario is the block
        async with open_supervisor([kids.spec("child2")], intensity=1, period=3600) as sup:
            kids.fail_start["child1"] = 0
            await sup.start_child(kids.spec("child1"))
            kids.fail_start["child1"] = -1
            await kids.crash("child1")
            await trio.sleep_forever()  # the failed restart is retried until intensity is exceeded
    log = kids.take()
    assert log[-1] == ("stop", "child2")
    # intensity 1: the first restart is tolerated and fails; its retry is the
    # second restart, which exceeds the intensity before it is attempted
    assert log.count(("start", "child1")) == 2


async def test_one_for_all(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    children = [kids.spec("a"), kids.spec("b"), kids.spec("c")]
    async with open_supervisor(children, strategy=Strategy.ONE_FOR_ALL) as sup:
        kids.take()
        await kids.crash("b")
        assert kids.take() == [
            ("crash", "b"),
            ("stop", "c"),
            ("stop", "a"),
            ("start", "a"),
            ("start", "b"),
            ("start", "c"),
        ]
        assert [c.restarts for c in sup.which_children()] == [1, 1, 1]


async def test_rest_for_one(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    children = [kids.spec("a"), kids.spec("b"), kids.spec("c")]
    async with open_supervisor(children, strategy=Strategy.REST_FOR_ONE):
        kids.take()
        await kids.crash("b")
        assert kids.take() == [("crash", "b"), ("stop", "c"), ("start", "b"), ("start", "c")]
        await kids.crash("c")
        assert kids.take() == [("crash", "c"), ("start", "c")]


@pytest.mark.parametrize(
    ("strategy", "crashes", "tail"),
    [
        (Strategy.ONE_FOR_ALL, ["a", "b"], [("crash", "b"), ("stop", "a")]),
        (Strategy.REST_FOR_ONE, ["a", "a"], [("crash", "a"), ("stop", "b")]),
    ],
    ids=["one_for_all_escalation", "rest_for_one_escalation"],
)
async def test_escalation_stops_the_other_children_and_raises(
    autojump_clock: MockClock,
    strategy: Strategy,
    crashes: list[str],
    tail: list[tuple[str, Hashable]],
) -> None:
    # intensity 1: the second restart gives up; what still runs is stopped.
    kids = ScriptedChildren()
    children = [kids.spec("a"), kids.spec("b")]
    with pytest.raises(RestartIntensityExceeded):  # noqa: PT012 - the scenario is the block
        async with open_supervisor(children, strategy=strategy, intensity=1):
            for child_id in crashes:
                await kids.crash(child_id)
            pytest.fail("cancelled")  # pragma: no cover
    assert kids.take()[-2:] == tail


@pytest.mark.parametrize(
    ("strategy", "fails", "log"),
    [
        (
            Strategy.ONE_FOR_ALL,
            "c",
            [
                ("crash", "a"),
                ("stop", "c"),
                ("stop", "b"),
                ("start", "a"),
                ("start", "b"),
                ("start", "c"),  # fails
                # try again: the others are stopped and everything starts again
                ("stop", "b"),
                ("stop", "a"),
                ("start", "a"),
                ("start", "b"),
                ("start", "c"),
            ],
        ),
        (
            Strategy.REST_FOR_ONE,
            "b",
            [
                ("crash", "a"),
                ("stop", "c"),
                ("stop", "b"),
                ("start", "a"),
                ("start", "b"),  # fails; c is not started
                ("start", "b"),  # try again from b
                ("start", "c"),
            ],
        ),
    ],
    ids=["one_for_all_other_child_fails_restart", "rest_for_one_other_child_fails_restart"],
)
async def test_sibling_failing_its_restart_is_retried(
    autojump_clock: MockClock, strategy: Strategy, fails: str, log: list[tuple[str, Hashable]]
) -> None:
    # A sibling failing to start during a restart is retried (from the strategy's
    # first child again), each try counting towards the intensity.
    kids = ScriptedChildren()
    children = [kids.spec("a"), kids.spec("b"), kids.spec("c")]
    async with open_supervisor(children, strategy=strategy, intensity=3) as sup:
        kids.take()
        kids.fail_start[fails] = 1
        await kids.crash("a")
        assert kids.take() == log
        assert all(state is ChildState.RUNNING for _, state in states(sup))


async def test_hanging_restart_loop(autojump_clock: MockClock) -> None:
    # A child whose restarts keep failing: the retries go through the mailbox,
    # so a terminate_child call still gets its turn and ends the loop.
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("child1")], intensity=10**6, period=1) as sup:
        kids.fail_start["child1"] = -1
        kids.crash_nowait("child1")
        await kids.wait_failed_starts(3)
        assert states(sup) == [("child1", ChildState.RESTARTING)]
        await sup.terminate_child("child1")
        assert states(sup) == [("child1", ChildState.STOPPED)]
        before = len(kids.take())
        await trio.testing.wait_all_tasks_blocked()
        assert before > 1
        assert kids.take() == []


async def test_hanging_restart_loop_escalates_at_intensity(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    with pytest.raises(RestartIntensityExceeded) as info:  # noqa: PT012 - the scenario is the block
        async with open_supervisor([kids.spec("child1")], intensity=5, period=3600):
            kids.fail_start["child1"] = -1
            await kids.crash("child1")
            await trio.sleep_forever()
    assert len(info.value.restarts) == 6
    assert kids.take().count(("start", "child1")) == 1 + 5


@pytest.mark.parametrize(
    ("strategy", "fails"),
    [(Strategy.ONE_FOR_ONE, "a"), (Strategy.ONE_FOR_ALL, "b"), (Strategy.REST_FOR_ONE, "b")],
)
async def test_giving_up_on_failed_restarts_names_why_they_failed(
    autojump_clock: MockClock, strategy: Strategy, fails: str
) -> None:
    # Not OTP's exact report (its exit reason is plain `shutdown`), but what the
    # supervisor's own log already says: the failed restart's exception, with
    # the child that raised it (a sibling, under one_for_all and rest_for_one).
    kids = ScriptedChildren()
    children = [kids.spec("a"), kids.spec("b")]
    with pytest.raises(RestartIntensityExceeded) as info:  # noqa: PT012 - the scenario is the block
        async with open_supervisor(children, strategy=strategy, intensity=2, period=3600):
            kids.fail_start[fails] = -1
            await kids.crash("a")
            await trio.sleep_forever()
    assert info.value.child_id == fails
    assert isinstance(info.value.reason, ScriptedStartFailure)
    assert info.value.reason.child_id == fails
    assert info.value.__cause__ is info.value.reason
    assert f"child {fails!r} failed to restart with {info.value.reason!r}" in str(info.value)


# ----------------------------------------------------------------------- tree


async def test_tree(autojump_clock: MockClock) -> None:
    # Supervisor tree: a crash in an inner supervisor's child is handled there;
    # the inner one escalating is a crash of a child in the outer one.
    kids = ScriptedChildren()
    inner = Supervisor([kids.spec("w1"), kids.spec("w2")], name="inner", intensity=1)
    outer_children = [inner.child_spec(), kids.spec("o1")]
    async with open_supervisor(outer_children, name="outer", intensity=1) as outer:
        assert counts(outer) == [2, 2, 1, 1]
        kids.take()
        await kids.crash("w1")
        assert kids.take() == [("crash", "w1"), ("start", "w1")]
        await kids.crash("w2")  # second restart in inner: it gives up
        assert kids.take() == [
            ("crash", "w2"),
            ("stop", "w1"),
            # the outer supervisor restarts inner, which starts its children again
            ("start", "w1"),
            ("start", "w2"),
        ]
        assert outer.which_children()[0].restarts == 1
        assert inner.which_children()[0].restarts == 0


async def test_child_supervisor_restarts_from_its_constructor_children(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    inner = Supervisor([kids.spec("w1")], name="inner", intensity=0)
    async with open_supervisor([inner.child_spec()]):
        await inner.start_child(kids.spec("dyn"))
        assert [c.id for c in inner.which_children()] == ["w1", "dyn"]
        await kids.crash("w1")  # intensity 0: inner escalates, outer restarts it
        assert [c.id for c in inner.which_children()] == ["w1"]


async def test_count_children(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    inner = Supervisor([], name="inner")
    async with open_supervisor([kids.spec("w"), inner.child_spec("s")]) as sup:
        assert counts(sup) == [2, 2, 1, 1]
        await sup.terminate_child("s")
        assert counts(sup) == [2, 1, 1, 1]


async def test_count_children_leaves_out_a_child_whose_exit_waits_in_the_queue(
    autojump_clock: MockClock,
) -> None:
    # OTP counts a child active only while its process is alive, even before the
    # supervisor has handled the 'EXIT'. Here "w" ends while the control loop is
    # busy starting "slow", so its exit waits in the queue.
    kids = ScriptedChildren()
    gate = trio.Event()

    async def slow(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await gate.wait()
        task_status.started()
        await trio.sleep_forever()

    async with open_supervisor([kids.spec("w", T)]) as sup, trio.open_nursery() as nursery:
        nursery.start_soon(sup.start_child, ChildSpec("slow", slow, start_timeout=math.inf))
        await trio.testing.wait_all_tasks_blocked()
        kids.exit_nowait("w")
        await trio.testing.wait_all_tasks_blocked()
        try:
            assert kids.running() == set()
            assert states(sup)[0] == ("w", ChildState.RUNNING)  # not handled yet
            assert counts(sup) == [2, 0, 0, 2]
        finally:
            gate.set()  # else leaving the block waits for the start, which never ends
        await trio.testing.wait_all_tasks_blocked()
        assert states(sup) == [("w", ChildState.STOPPED), ("slow", ChildState.RUNNING)]
        assert counts(sup) == [2, 1, 0, 2]


# ------------------------------------------------ significant / auto_shutdown


async def test_auto_shutdown_any_significant(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    children = [
        kids.spec("a"),
        kids.spec("s1", T, significant=True),
        kids.spec("s2", T, significant=True),
    ]
    async with trio.open_nursery() as nursery:
        sup = Supervisor(children, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
        await nursery.start(sup.run)
        kids.take()
        await kids.exit("s1")
        assert kids.take() == [("exit", "s1"), ("stop", "s2"), ("stop", "a")]


async def test_auto_shutdown_all_significant(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    children = [
        kids.spec("a"),
        kids.spec("s1", TMP, significant=True),
        kids.spec("s2", T, significant=True),
    ]
    async with trio.open_nursery() as nursery:
        sup = Supervisor(children, auto_shutdown=AutoShutdown.ALL_SIGNIFICANT)
        await nursery.start(sup.run)
        kids.take()
        await kids.crash("s1")  # temporary: not restarted, but s2 still runs
        assert kids.running() == {"a", "s2"}
        await kids.exit("s2")
        assert kids.take() == [("crash", "s1"), ("exit", "s2"), ("stop", "a")]


async def test_significant_transient_crash_is_restarted_not_shut_down(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    children = [kids.spec("s", T, significant=True)]
    async with open_supervisor(children, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT):
        await kids.crash("s")
        assert kids.running() == {"s"}


async def test_terminating_a_significant_child_does_not_auto_shutdown(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    children = [kids.spec("a"), kids.spec("s", T, significant=True)]
    async with open_supervisor(children, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT) as sup:
        await sup.terminate_child("s")
        assert kids.running() == {"a"}


async def test_an_unnamed_supervisor_is_called_unnamed_in_its_errors_not_none(
    autojump_clock: MockClock,
) -> None:
    async with open_supervisor([]) as sup:
        with pytest.raises(ChildNotFound, match=r"^supervisor \(unnamed\) has no child 'x'$"):
            await sup.terminate_child("x")
