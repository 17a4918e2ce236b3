"""The Trio shell: shutdown grace, one control loop, errors out of open_supervisor,
cancellation, the registry, events and logs. MockClock throughout; no real sleeps."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from nursemaid import (
    BRUTAL_KILL,
    INFINITY,
    ChildAlreadyExists,
    ChildExited,
    ChildRestarting,
    ChildSpec,
    ChildStarted,
    ChildStartFailed,
    ExitKind,
    Restart,
    RestartIntensityExceeded,
    StartError,
    Strategy,
    Supervisor,
    SupervisorEscalated,
    SupervisorEvent,
    UsageError,
    current_shutdown,
    open_supervisor,
    shutdown_grace,
    whereis,
)
from nursemaid.testing import ScriptedChildren, ScriptedCrash

# ------------------------------------------------------------ shutdown grace


def graceful(seconds: float, record: dict[str, Any]) -> Any:
    """A child that needs *seconds* of awaiting to clean up, inside shutdown_grace."""

    async def child(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        record["shutdown"] = current_shutdown()
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            start = trio.current_time()
            with shutdown_grace() as grace:
                await trio.sleep(seconds)
            record["granted"] = trio.current_time() - start
            record["cut"] = grace.cancelled_caught

    return child


@pytest.mark.parametrize(
    ("shutdown", "needs", "granted", "cut"),
    [
        (BRUTAL_KILL, 10.0, 0.0, True),
        (2.5, 10.0, 2.5, True),
        (2.5, 1.0, 1.0, False),
        (INFINITY, 1000.0, 1000.0, False),
    ],
)
async def test_shutdown_grace_gives_exactly_the_child_shutdown(
    autojump_clock: MockClock, shutdown: Any, needs: float, granted: float, cut: bool
) -> None:
    record: dict[str, Any] = {}
    async with open_supervisor([ChildSpec("c", graceful(needs, record), shutdown=shutdown)]):
        pass
    expected_shutdown = {BRUTAL_KILL: 0.0, INFINITY: math.inf}.get(shutdown, shutdown)
    assert record == {"shutdown": expected_shutdown, "granted": granted, "cut": cut}


async def test_plain_child_stops_at_once_without_grace(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    start = trio.current_time()
    async with open_supervisor([kids.spec("a", shutdown=INFINITY)]):
        pass
    assert trio.current_time() == start


async def test_grace_counts_from_the_stop_request_across_several_graces(
    autojump_clock: MockClock,
) -> None:
    record: list[float] = []

    async def child(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with shutdown_grace():
                await trio.sleep(2)
            record.append(trio.current_time())
            with shutdown_grace():
                await trio.sleep(2)  # only 1 s of the 3 s budget is left
            record.append(trio.current_time())

    start = trio.current_time()
    async with open_supervisor([ChildSpec("c", child, shutdown=3.0)]):
        pass
    assert [t - start for t in record] == [2.0, 3.0]


async def test_current_shutdown_is_none_outside_a_supervised_child() -> None:
    assert current_shutdown() is None
    with shutdown_grace(default=1.5) as grace:
        assert grace.shield
        assert grace.deadline == pytest.approx(trio.current_time() + 1.5)


async def test_current_shutdown_reaches_tasks_the_child_spawns(autojump_clock: MockClock) -> None:
    seen: list[float | None] = []

    async def child(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async def helper() -> None:
            seen.append(current_shutdown())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(helper)
        task_status.started()

    async with open_supervisor([ChildSpec("c", child, Restart.TEMPORARY, shutdown=7)]):
        pass
    assert seen == [7.0]


async def test_parent_kills_a_child_supervisor_that_outlives_its_shutdown(
    autojump_clock: MockClock,
) -> None:
    record: dict[str, Any] = {}
    inner = Supervisor([ChildSpec("slow", graceful(100.0, record), shutdown=INFINITY)])
    start = trio.current_time()
    async with open_supervisor([inner.child_spec(shutdown=4.0)]):
        pass
    assert trio.current_time() - start == 4.0
    assert record["cut"] is True


# ------------------------------------------------------------- control loop


async def test_two_crashes_at_once_never_interleave_their_restarts(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    children = [kids.spec("a"), kids.spec("b"), kids.spec("c")]
    async with open_supervisor(children, strategy=Strategy.REST_FOR_ONE, intensity=10):
        kids.take()
        kids.crash_nowait("a")
        kids.crash_nowait("b")
        await trio.testing.wait_all_tasks_blocked()
        log = kids.take()
        # Trio may run either crashing child first; its exit is first in the
        # mailbox and its whole restart runs before the other exit is looked at.
        if log[0] == ("crash", "a"):
            # a's restart stops c (b is dead already) and starts a, b, c; b's
            # crash was of an incarnation already replaced: stale, dropped.
            assert log == [
                ("crash", "a"),
                ("crash", "b"),
                ("stop", "c"),
                ("start", "a"),
                ("start", "b"),
                ("start", "c"),
            ]
        else:
            assert log == [
                ("crash", "b"),
                ("crash", "a"),
                ("stop", "c"),  # b's restart, complete
                ("start", "b"),
                ("start", "c"),
                ("stop", "c"),  # then a's
                ("stop", "b"),
                ("start", "a"),
                ("start", "b"),
                ("start", "c"),
            ]


async def test_a_call_during_a_restart_waits_its_turn(autojump_clock: MockClock) -> None:
    started = trio.Event()
    release = trio.Event()
    log: list[str] = []

    async def slow_start(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        log.append("slow start")
        if started.is_set():
            await release.wait()
        started.set()
        task_status.started()
        await trio.sleep_forever()

    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("a"), ChildSpec("slow", slow_start)]) as sup:
        await sup.terminate_child("slow")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sup.restart_child, "slow")  # blocks in the loop until released
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(sup.terminate_child, "a")
            await trio.testing.wait_all_tasks_blocked()
            assert kids.running() == {"a"}  # the terminate has not had its turn
            release.set()
        assert kids.running() == set()
        assert log == ["slow start", "slow start"]


async def test_run_raises_when_already_running(autojump_clock: MockClock) -> None:
    async with open_supervisor([]) as sup:
        with pytest.raises(UsageError, match="is already running"):
            await sup.run()


async def test_run_can_run_again_after_it_ended(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    sup = Supervisor([kids.spec("a")])
    for _ in range(2):
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            await sup.start_child(kids.spec("b"))
            await sup.stop()
    assert kids.take() == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")] * 2


async def test_a_call_in_progress_when_the_supervisor_is_cancelled_fails_not_hangs(
    autojump_clock: MockClock,
) -> None:
    async def never_ready(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep_forever()

    sup = Supervisor([])
    with trio.fail_after(60):  # a hang fails (MockClock jumps), it does not hang the suite
        await _cancel_supervisor_during_a_call(sup, never_ready)


async def _cancel_supervisor_during_a_call(sup: Supervisor, never_ready: Any) -> None:
    async with trio.open_nursery() as callers:
        with trio.CancelScope() as supervisor_scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(sup.run)

                async def call() -> None:
                    with pytest.raises(UsageError, match="stopped while handling the call"):
                        await sup.start_child(
                            ChildSpec("slow", never_ready, start_timeout=math.inf)
                        )

                callers.start_soon(call)
                await trio.testing.wait_all_tasks_blocked()
                supervisor_scope.cancel()


async def test_stop_is_idempotent(autojump_clock: MockClock) -> None:
    async with open_supervisor([]) as sup:
        await sup.stop()
        await sup.stop()


# ------------------------------------------------ errors out of open_supervisor


async def test_block_exception_comes_out_unchanged(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    with pytest.raises(KeyError, match="mine") as info:
        async with open_supervisor([kids.spec("a"), kids.spec("b")]):
            raise KeyError("mine")
    assert kids.take()[-2:] == [("stop", "b"), ("stop", "a")]
    assert info.value.__context__ is None  # no group left behind in the chain


async def test_intensity_exceeded_comes_out_alone_not_in_a_group(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    with pytest.raises(RestartIntensityExceeded):  # noqa: PT012 - the scenario is the block
        async with open_supervisor([kids.spec("a")], intensity=0):
            await kids.crash("a")
            await trio.sleep_forever()


async def _clean_up_fails_when_cancelled(error: BaseException) -> None:
    try:
        await trio.sleep_forever()
    finally:
        raise error


async def _fails_after_a_shielded_wait(error: BaseException) -> None:
    # Not a consequence of the give-up: the block raises on its own, just after it.
    with trio.CancelScope(shield=True):
        await trio.testing.wait_all_tasks_blocked()
    raise error


@pytest.mark.parametrize("block", [_clean_up_fails_when_cancelled, _fails_after_a_shielded_wait])
async def test_giving_up_while_the_block_raises_gives_our_error_with_the_block_one_as_context(
    autojump_clock: MockClock, block: Any
) -> None:
    kids = ScriptedChildren()
    mine = ValueError("clean-up failed")
    with pytest.raises(RestartIntensityExceeded) as info:  # noqa: PT012 - the scenario is the block
        async with open_supervisor([kids.spec("a"), kids.spec("b")], intensity=0):
            kids.crash_nowait("a")
            await block(mine)
    assert info.value.__context__ is mine
    assert isinstance(info.value.reason, ScriptedCrash)
    assert info.value.__cause__ is info.value.reason  # what a printed traceback shows...
    assert any(repr(mine) in note for note in info.value.__notes__)  # ...so a note names it
    assert kids.take()[-2:] == [("crash", "a"), ("stop", "b")]


async def test_keyboard_interrupt_in_the_block_while_giving_up_is_never_folded_away(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    with pytest.RaisesGroup(RestartIntensityExceeded, KeyboardInterrupt):
        async with open_supervisor([kids.spec("a")], intensity=0):
            kids.crash_nowait("a")
            await _clean_up_fails_when_cancelled(KeyboardInterrupt())


async def test_start_error_comes_out_of_nursery_start_alone(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    kids.fail_start["a"] = 1
    async with trio.open_nursery() as nursery:
        with pytest.raises(StartError):
            await nursery.start(Supervisor([kids.spec("a")]).run)


async def test_outside_cancellation_stops_children_in_reverse_order_and_passes_through(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    with trio.move_on_after(5) as scope:
        async with open_supervisor([kids.spec("a"), kids.spec("b"), kids.spec("c")]):
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert kids.take()[-3:] == [("stop", "c"), ("stop", "b"), ("stop", "a")]


async def test_keyboard_interrupt_from_a_child_passes_through(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()

    async def interrupt(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        async with open_supervisor([kids.spec("a"), ChildSpec("k", interrupt)]):
            await trio.sleep_forever()
    assert kids.take()[-1] == ("stop", "a")


async def test_start_error_carries_the_worker_details(autojump_clock: MockClock) -> None:
    from nursemaid import WorkerError

    async def dies(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        raise WorkerError("worker exited", returncode=3, stderr_tail="boom\n", pid=42)

    with pytest.raises(StartError) as info:
        async with open_supervisor([ChildSpec("w", dies)]):
            pass  # pragma: no cover
    assert (info.value.returncode, info.value.stderr_tail, info.value.pid) == (3, "boom\n", 42)
    assert str(info.value).count("boom") == 1  # the stderr tail is shown once


# ------------------------------------------------------------------ registry


def named(name: str, seen: list[object]) -> ChildSpec:
    async def child(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(f"handle of {name}")
        seen.append(whereis(name))
        await trio.sleep_forever()

    return ChildSpec(name, child, name=name)


async def test_named_child_registers_on_start_and_unregisters_on_exit(
    autojump_clock: MockClock,
) -> None:
    seen: list[object] = []
    async with open_supervisor([named("db", seen)]) as sup:
        assert sup.whereis("db") == "handle of db"
        assert seen == ["handle of db"]
        await sup.terminate_child("db")
        assert sup.whereis("db") is None


async def test_nested_supervisors_share_one_registry_per_tree(autojump_clock: MockClock) -> None:
    seen: list[object] = []
    inner = Supervisor([named("deep", seen)])
    async with open_supervisor([inner.child_spec("inner")]) as outer:
        assert outer.whereis("deep") == "handle of deep"
        assert inner.registry is outer.registry


async def test_two_trees_never_collide(autojump_clock: MockClock) -> None:
    seen: list[object] = []
    async with (
        open_supervisor([named("db", seen)]) as one,
        open_supervisor([named("db", seen)]) as two,
    ):
        assert one.registry is not two.registry
        assert one.whereis("db") == two.whereis("db") == "handle of db"


async def test_a_taken_name_is_a_start_failure(autojump_clock: MockClock) -> None:
    seen: list[object] = []
    async with open_supervisor([named("db", seen)]) as sup:
        twin = ChildSpec("twin", named("db", seen).start, name="db")
        with pytest.raises(StartError) as info:
            await sup.start_child(twin)
        assert isinstance(info.value.reason, ChildAlreadyExists)


async def test_whereis_outside_a_tree_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="outside a supervision tree"):
        whereis("db")


# -------------------------------------------------------------- events, logs


def received(events: trio.MemoryReceiveChannel[SupervisorEvent]) -> list[SupervisorEvent]:
    """Every event already sent on *events*, without waiting for more."""
    seen = []
    while True:
        try:
            seen.append(events.receive_nowait())
        except trio.WouldBlock:
            return seen


async def test_every_start_exit_restart_and_escalation_is_an_event(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    sup = Supervisor([kids.spec("a"), kids.spec("b")], intensity=1, name="sup")
    events = sup.subscribe()
    with pytest.RaisesGroup(RestartIntensityExceeded):
        async with trio.open_nursery() as nursery:  # a plain nursery: its group is Trio's
            await nursery.start(sup.run)
            await kids.crash("a")
            await kids.crash("a")
    seen = received(events)
    kinds = [(type(e).__name__, e.child_id) for e in seen]
    assert kinds == [
        ("ChildStarted", "a"),
        ("ChildStarted", "b"),
        ("ChildExited", "a"),
        ("ChildRestarting", "a"),
        ("ChildStarted", "a"),
        ("ChildExited", "a"),
        ("SupervisorEscalated", "a"),
        ("ChildExited", "b"),
    ]
    assert all(e.supervisor == "sup" for e in seen)
    crash = seen[2]
    assert isinstance(crash, ChildExited)
    assert (crash.kind, crash.stopped, type(crash.exception)) == (
        ExitKind.CRASH,
        False,
        ScriptedCrash,
    )
    assert isinstance(seen[3], ChildRestarting)
    assert isinstance(seen[4], ChildStarted)
    assert seen[4].restart
    assert isinstance(seen[6], SupervisorEscalated)
    stop = seen[7]
    assert isinstance(stop, ChildExited)
    assert (stop.kind, stop.stopped) == (ExitKind.SHUTDOWN, True)


async def test_subscribers_use_async_for_and_unsubscribe_by_closing(
    autojump_clock: MockClock,
) -> None:
    kids = ScriptedChildren()
    kids.fail_start["bad"] = 1
    async with open_supervisor([]) as sup:
        with sup.subscribe() as events:
            with pytest.raises(StartError):
                await sup.start_child(kids.spec("bad"))
            async for event in events:
                assert isinstance(event, ChildStartFailed)
                break
        await sup.start_child(kids.spec("good"))  # the closed channel is dropped quietly


async def test_crash_logs_warning_with_traceback_and_otp_report(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    kids = ScriptedChildren()
    with caplog.at_level(logging.INFO, logger="nursemaid.supervisor"):
        with pytest.raises(RestartIntensityExceeded):  # noqa: PT012 - the scenario is the block
            async with open_supervisor([kids.spec("a")], intensity=0, name="s"):
                await kids.crash("a")
                await trio.sleep_forever()
    crash = next(r for r in caplog.records if getattr(r, "context", None) == "child_terminated")
    assert crash.levelno == logging.WARNING
    assert crash.exc_info is not None
    assert crash.exc_info[0] is ScriptedCrash
    assert crash.offender["id"] == "a"  # type: ignore[attr-defined]
    gave_up = next(r for r in caplog.records if getattr(r, "context", None) == "shutdown")
    assert gave_up.levelno == logging.ERROR
    assert gave_up.reason == "reached_max_restart_intensity"  # type: ignore[attr-defined]


# ------------------------------------------------------------------ edge cases


async def test_calling_started_twice_is_a_crash(autojump_clock: MockClock) -> None:
    async def twice(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        task_status.started()

    sup = Supervisor([ChildSpec("t", twice, Restart.TEMPORARY)])
    events = sup.subscribe()
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.testing.wait_all_tasks_blocked()
        await sup.stop()
    exits = [e for e in received(events) if isinstance(e, ChildExited)]
    assert [(e.kind, type(e.exception)) for e in exits] == [(ExitKind.CRASH, RuntimeError)]


async def test_restart_child_that_fails_to_start_stays_stopped(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    async with open_supervisor([kids.spec("a")]) as sup:
        await sup.terminate_child("a")
        kids.fail_start["a"] = 1
        with pytest.raises(StartError) as info:
            await sup.restart_child("a")
        assert info.value.child_id == "a"
        assert [c.state.name for c in sup.which_children()] == ["STOPPED"]


async def test_stop_on_a_supervisor_that_is_not_running_does_nothing() -> None:
    await Supervisor([]).stop()


async def test_auto_shutdown_is_an_event(autojump_clock: MockClock) -> None:
    from nursemaid import AutoShutdown, SupervisorAutoShutdown

    kids = ScriptedChildren()
    sup = Supervisor(
        [kids.spec("s", Restart.TRANSIENT, significant=True)],
        auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
    )
    events = sup.subscribe()
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await kids.exit("s")
    seen = received(events)
    assert isinstance(seen[-1], SupervisorAutoShutdown)
    assert seen[-1].child_id == "s"


async def test_starts_and_orderly_exits_log_at_debug(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    kids = ScriptedChildren()
    with caplog.at_level(logging.DEBUG, logger="nursemaid.supervisor"):
        async with open_supervisor([kids.spec("a")], name="s"):
            pass
    contexts = [(r.levelno, getattr(r, "context", None)) for r in caplog.records]
    assert contexts == [(logging.DEBUG, "progress"), (logging.DEBUG, "child_terminated")]


async def test_a_started_child_may_stop_its_own_supervisor(autojump_clock: MockClock) -> None:
    kids = ScriptedChildren()
    holder: dict[str, Supervisor] = {}

    async def stopper(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await holder["sup"].stop()

    sup = holder["sup"] = Supervisor([kids.spec("a"), ChildSpec("stopper", stopper)])
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
    assert kids.take() == [("start", "a"), ("stop", "a")]


async def test_a_started_child_may_terminate_itself(autojump_clock: MockClock) -> None:
    async def quitter(*, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await sup.terminate_child("q")

    async with open_supervisor([ChildSpec("q", quitter)]) as sup:
        await trio.testing.wait_all_tasks_blocked()
        assert [(c.id, c.state.name) for c in sup.which_children()] == [("q", "STOPPED")]
