"""nursemaid.testing.ScriptedChildren: the log, the orders, failing starts, clean-up
and what misuse raises. Real supervisors on Trio's MockClock; no real sleeps."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from nursemaid import (
    BRUTAL_KILL,
    ChildState,
    Restart,
    StartError,
    Strategy,
    Supervisor,
    UsageError,
    open_supervisor,
)
from nursemaid.testing import ScriptedChildren, ScriptedCrash, ScriptedStartFailure


async def test_log_records_starts_crashes_exits_and_stops_in_order(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("a"), kids.spec("b", Restart.TRANSIENT)]):
        await kids.crash("a")
        await kids.exit("b")
    assert kids.log == [
        ("start", "a"),
        ("start", "b"),
        ("crash", "a"),
        ("start", "a"),
        ("exit", "b"),
        ("stop", "a"),
    ]


async def test_take_returns_the_log_and_starts_an_empty_one(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("a")]):
        assert kids.take() == [("start", "a")]
        assert kids.log == []
        assert kids.take() == []


async def test_started_value_names_the_child_and_counts_every_start(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("a")]) as sup:
        assert await sup.start_child(kids.spec("b")) == "b#2"
        await sup.terminate_child("a")
        assert await sup.restart_child("a") == "a#3"


async def test_running_is_the_children_started_and_not_yet_ended(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    assert kids.running() == set()
    async with open_supervisor([kids.spec("a", Restart.TEMPORARY), kids.spec("b")]):
        assert kids.running() == {"a", "b"}
        await kids.crash("a")
        assert kids.running() == {"b"}
    assert kids.running() == set()


async def test_a_crash_raises_scripted_crash_naming_the_child(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    with pytest.RaisesGroup(pytest.RaisesExc(ScriptedCrash, check=lambda e: e.child_id == "a")):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(kids.spec("a").start)
            await trio.testing.wait_all_tasks_blocked()
            await kids.crash("a")


async def test_fail_start_fails_the_next_n_starts_then_lets_them_succeed(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    kids.fail_start["a"] = 2
    async with open_supervisor([]) as sup:
        for _ in range(2):
            with pytest.raises(StartError) as info:
                await sup.start_child(kids.spec("a", Restart.TEMPORARY))
            assert isinstance(info.value.reason, ScriptedStartFailure)
            assert info.value.reason.child_id == "a"
        await sup.start_child(kids.spec("a", Restart.TEMPORARY))
    assert kids.failed_starts == 2
    assert kids.fail_start == {"a": 0}
    assert kids.take() == [("start", "a")] * 3 + [("stop", "a")]


async def test_negative_fail_start_fails_every_start_until_changed(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("a")], intensity=100, period=1) as sup:
        kids.fail_start["a"] = -1
        kids.crash_nowait("a")
        await kids.wait_failed_starts(3)
        assert [c.state for c in sup.which_children()] == [ChildState.RESTARTING]
        kids.fail_start["a"] = 0
        await trio.testing.wait_all_tasks_blocked()
        assert kids.running() == {"a"}
    assert kids.fail_start == {"a": 0}


async def test_wait_failed_starts_returns_at_once_once_reached(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    kids.fail_start["a"] = 1
    with pytest.raises(StartError):
        async with open_supervisor([kids.spec("a")]):
            pass  # pragma: no cover
    with trio.fail_after(1):
        await kids.wait_failed_starts(1)
        await kids.wait_failed_starts(0)


@pytest.mark.parametrize(
    ("shutdown", "needs", "took", "cut"),
    [(2.0, 0.5, 0.5, []), (2.0, 10.0, 2.0, ["a"]), (BRUTAL_KILL, 10.0, 0.0, ["a"])],
)
async def test_cleanup_takes_its_seconds_inside_shutdown_grace_and_is_cut_at_the_shutdown(
    autojump_clock: MockClock, shutdown: object, needs: float, took: float, cut: list[str]
) -> None:
    kids = ScriptedChildren()
    kids.cleanup["a"] = needs
    async with open_supervisor([kids.spec("a", shutdown=shutdown)]):
        start = trio.current_time()
    assert trio.current_time() - start == pytest.approx(took)
    assert kids.grace_cut == cut


async def test_crash_nowait_lets_several_children_crash_at_once(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    specs = [kids.spec("a", Restart.TEMPORARY), kids.spec("b", Restart.TEMPORARY)]
    async with open_supervisor(specs, strategy=Strategy.ONE_FOR_ALL):
        kids.take()
        kids.crash_nowait("a")
        kids.exit_nowait("b")
        assert kids.log == []  # nothing happens until the children run
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(kids.take()) == [("crash", "a"), ("exit", "b")]


async def test_spec_passes_child_spec_options_through() -> None:
    kids = ScriptedChildren()
    spec = kids.spec("db", Restart.TRANSIENT, shutdown=BRUTAL_KILL, name="db")
    assert (spec.id, spec.restart, spec.shutdown, spec.name) == (
        "db",
        Restart.TRANSIENT,
        BRUTAL_KILL,
        "db",
    )
    with pytest.raises(ValueError, match="significant"):
        kids.spec("db", Restart.PERMANENT, significant=True)


# ------------------------------------------------------------------- misuse


@pytest.mark.parametrize("order", ["crash", "exit"])
async def test_ordering_a_child_that_is_not_running_is_a_usage_error(
    autojump_clock: MockClock, order: str
) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("a")]):
        with pytest.raises(
            UsageError,
            match=rf"^cannot {order} scripted child 'b': it is not running \(running: 'a'\); ",
        ):
            await getattr(kids, order)("b")
    with pytest.raises(UsageError, match=r"\(running: none\)"):
        getattr(kids, f"{order}_nowait")("a")


async def test_a_second_order_before_the_first_is_acted_on_is_a_usage_error(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("a")]):
        kids.exit_nowait("a")
        with pytest.raises(
            UsageError, match=r"^cannot crash scripted child 'a': it was already told to exit"
        ):
            kids.crash_nowait("a")
        await trio.testing.wait_all_tasks_blocked()
        assert kids.take()[-2:] == [("exit", "a"), ("start", "a")]


async def test_two_children_running_under_one_id_is_a_start_failure(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("a")]), open_supervisor([]) as other:
        with pytest.raises(StartError) as info:
            await other.start_child(kids.spec("a"))
        assert isinstance(info.value.reason, UsageError)
        assert str(info.value.reason) == (
            "scripted child 'a' is already running; "
            "give each child that runs at the same time its own id"
        )
        assert kids.running() == {"a"}


async def test_repr_shows_the_running_children_and_the_log(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    sup = Supervisor([kids.spec("a")])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        assert repr(kids) == "<ScriptedChildren running=['a'] log=[('start', 'a')]>"
        await sup.stop()


async def test_crash_returns_once_a_siblings_cleanup_and_the_restart_are_done(
    autojump_clock: MockClock,
) -> None:
    # Every task blocked is not quiet yet while a stopped sibling sleeps through
    # its clean-up: crash() waits for that, and for the restart after it.
    kids = ScriptedChildren()
    kids.cleanup["a"] = 2.0
    specs = [kids.spec("a", shutdown=5.0), kids.spec("b")]
    async with open_supervisor(specs, strategy=Strategy.ONE_FOR_ALL) as sup:
        kids.take()
        start = trio.current_time()
        await kids.crash("b")
        assert trio.current_time() - start == 2.0
        assert kids.take() == [("crash", "b"), ("stop", "a"), ("start", "a"), ("start", "b")]
        assert {c.id: c.state for c in sup.which_children()} == {
            "a": ChildState.RUNNING,
            "b": ChildState.RUNNING,
        }


async def test_every_task_waiting_for_failed_starts_wakes(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    woke: list[str] = []

    async def waiter(name: str) -> None:
        await kids.wait_failed_starts(1)
        woke.append(name)

    with trio.fail_after(60):  # virtual: a waiter left asleep fails the test
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter, "first")
            nursery.start_soon(waiter, "second")
            await trio.testing.wait_all_tasks_blocked()
            kids.fail_start["a"] = 1
            with pytest.raises(StartError):
                async with open_supervisor([kids.spec("a")]):
                    pass  # pragma: no cover
    assert sorted(woke) == ["first", "second"]
