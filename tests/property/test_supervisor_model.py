"""A real supervisor against a small reference model of OTP's semantics.

Hypothesis draws a supervisor (strategy, intensity, period, auto_shutdown, initial
children, some significant) and a sequence of operations: crashes, normal exits,
failing starts, clock advances and the dynamic calls (start_child,
terminate_child, restart_child, delete_child). Each example is one ``trio.run``
on ``MockClock(autojump_threshold=0)`` with ``st.random_module()`` drawn, so
Trio's scheduler order varies reproducibly.
After every operation the log of starts, stops, crashes and exits (in order), the
outcome of the call and ``which_children`` must equal the model's; at the end so
must the final error.

The model is written from OTP's supervisor.erl (do_restart, restart/2,
restart_multiple_children, try_again_restart, terminate_children), not from
nursemaid's code: it shares only the vocabulary.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import given, note
from hypothesis import strategies as st
from trio.testing import MockClock

from nursemaid import (
    AutoShutdown,
    ChildNotFound,
    ChildRunning,
    ChildState,
    Restart,
    RestartIntensityExceeded,
    StartError,
    Strategy,
    UsageError,
    open_supervisor,
)
from nursemaid.testing import ScriptedChildren

P, T, TMP = Restart.PERMANENT, Restart.TRANSIENT, Restart.TEMPORARY
RUNNING, RESTARTING, STOPPED = ChildState.RUNNING, ChildState.RESTARTING, ChildState.STOPPED


# ------------------------------------------------------------------- the model


@attrs.define
class ModelChild:
    id: str
    restart: Restart
    state: ChildState
    significant: bool = False


@attrs.define
class OtpModel:
    """OTP's supervisor, reduced to what the test observes."""

    strategy: Strategy
    intensity: int
    period: int
    children: list[ModelChild]
    auto_shutdown: AutoShutdown = AutoShutdown.NEVER
    stopped: bool = False  # by an auto-shutdown: calls now fail
    now: int = 0
    restarts: list[int] = attrs.Factory(list)
    fail: dict[str, int] = attrs.Factory(dict)
    log: list[tuple[str, Hashable]] = attrs.Factory(list)
    try_again: deque[str] = attrs.Factory(deque)
    gave_up: bool = False
    # (child id, type name of its reason or None): what RestartIntensityExceeded names
    gave_up_on: tuple[str, str | None] | None = None

    def find(self, id: str) -> ModelChild | None:
        return next((c for c in self.children if c.id == id), None)

    def running(self) -> set[str]:
        return {c.id for c in self.children if c.state is RUNNING}

    def start(self, child: ModelChild) -> bool:
        self.log.append(("start", child.id))
        if self.fail.get(child.id, 0):
            self.fail[child.id] -= 1
            return False
        child.state = RUNNING
        return True

    def terminate(self, child: ModelChild) -> None:
        if child.state is RUNNING:
            self.log.append(("stop", child.id))
        child.state = STOPPED

    # exits the child makes by itself
    def child_exit(self, id: str, crashed: bool) -> None:
        child = self.find(id)
        assert child is not None
        self.log.append(("crash" if crashed else "exit", id))
        child.state = STOPPED
        restart = child.restart is P or (child.restart is T and crashed)
        if not restart:
            if child.restart is TMP:
                self.children.remove(child)
            # do_auto_shutdown: a significant sibling counts unless its pid is undefined
            others = any(c.significant and c.state is not STOPPED for c in self.children)
            if child.significant and (
                self.auto_shutdown is AutoShutdown.ANY_SIGNIFICANT
                or (self.auto_shutdown is AutoShutdown.ALL_SIGNIFICANT and not others)
            ):
                self.shutdown()
                self.stopped = True
            return
        self.restart(child, "ScriptedCrash" if crashed else None)
        self.drain()

    def drain(self) -> None:
        while self.try_again and not self.gave_up:
            child = self.find(self.try_again.popleft())
            if child is not None and child.state is RESTARTING:
                self.restart(child, "ScriptedStartFailure")  # why it is being retried

    def restart(self, child: ModelChild, reason: str | None) -> None:
        # add_restart: keep R >= Now - Period, then compare with the intensity
        self.restarts = [t for t in self.restarts if t >= self.now - self.period] + [self.now]
        if len(self.restarts) > self.intensity:
            child.state = STOPPED
            self.shutdown()
            self.gave_up = True
            self.gave_up_on = (child.id, reason)
            return
        ids = [c.id for c in self.children]
        index = ids.index(child.id)
        if self.strategy is Strategy.ONE_FOR_ONE:
            group = [child]
        elif self.strategy is Strategy.REST_FOR_ONE:
            group = self.children[index:]
        else:
            group = list(self.children)
        for other in reversed(group):  # terminate_children: reverse start order
            if other is not child:
                self.terminate(other)
                if other.restart is TMP:
                    self.children.remove(other)
        for member in [g for g in group if g is child or g.restart is not TMP]:
            if not self.start(member):
                member.state = RESTARTING
                self.try_again.append(member.id)
                return

    def shutdown(self) -> None:
        for child in reversed(self.children):
            self.terminate(child)
        self.children = [c for c in self.children if c.restart is not TMP]

    # calls
    def start_child(self, id: str, restart: Restart, significant: bool = False) -> str:
        if self.stopped:
            return "UsageError"
        child = ModelChild(id, restart, STOPPED, significant)
        if not self.start(child):
            return "StartError"
        self.children.append(child)
        return "ok"

    def terminate_child(self, id: str) -> str:
        if self.stopped:
            return "UsageError"
        child = self.find(id)
        if child is None:
            return "ChildNotFound"
        self.terminate(child)
        if child.restart is TMP:
            self.children.remove(child)
        return "ok"

    def restart_child(self, id: str) -> str:
        if self.stopped:
            return "UsageError"
        child = self.find(id)
        if child is None:
            return "ChildNotFound"
        if child.state is not STOPPED:
            return "ChildRunning"
        return "ok" if self.start(child) else "StartError"

    def delete_child(self, id: str) -> str:
        if self.stopped:
            return "UsageError"
        child = self.find(id)
        if child is None:
            return "ChildNotFound"
        if child.state is not STOPPED:
            return "ChildRunning"
        self.children.remove(child)
        return "ok"


# ------------------------------------------------------------- the operations

restarts = st.sampled_from([P, T, TMP])
ops = st.one_of(
    st.tuples(st.just("crash"), st.integers(0, 7)),
    st.tuples(st.just("exit"), st.integers(0, 7)),
    st.tuples(st.just("fail_next_start"), st.integers(0, 7)),
    st.tuples(st.just("advance"), st.integers(1, 4)),
    st.tuples(st.just("start_child"), st.tuples(restarts, st.booleans())),
    st.tuples(st.just("terminate_child"), st.integers(0, 7)),
    st.tuples(st.just("restart_child"), st.integers(0, 7)),
    st.tuples(st.just("delete_child"), st.integers(0, 7)),
)


@given(
    strategy=st.sampled_from(list(Strategy)),
    intensity=st.integers(0, 4),
    period=st.integers(1, 6),
    auto_shutdown=st.sampled_from(list(AutoShutdown)),
    initial=st.lists(st.tuples(restarts, st.booleans()), min_size=1, max_size=4),
    operations=st.lists(ops, max_size=25),
    _random=st.random_module(),
)
def test_supervisor_matches_the_otp_model(
    strategy: Strategy,
    intensity: int,
    period: int,
    auto_shutdown: AutoShutdown,
    initial: list[tuple[Restart, bool]],
    operations: list[tuple[str, Any]],
    _random: Any,  # noqa: PT019 - hypothesis seeds random (Trio scheduling) through it
) -> None:
    def can_be_significant(restart: Restart, wanted: bool) -> bool:
        return wanted and restart is not P and auto_shutdown is not AutoShutdown.NEVER

    kids = ScriptedChildren()
    initial = [(r, can_be_significant(r, s)) for r, s in initial]
    specs = [kids.spec(f"c{n}", r, significant=s) for n, (r, s) in enumerate(initial)]
    model = OtpModel(
        strategy,
        intensity,
        period,
        [ModelChild(f"c{n}", r, STOPPED, s) for n, (r, s) in enumerate(initial)],
        auto_shutdown,
    )
    for child in model.children:
        model.start(child)
    next_id = len(initial)
    final: dict[str, object] = {}

    def pick(index: int, pool: list[str]) -> str | None:
        return sorted(pool)[index % len(pool)] if pool else None

    async def apply(sup: Any, op: tuple[str, Any]) -> str:
        nonlocal next_id
        verb, arg = op
        known = [c.id for c in model.children]
        if verb in ("crash", "exit"):
            target = pick(arg, list(model.running()))
            if target is None:
                return "skip"
            model.child_exit(target, crashed=verb == "crash")
            await (kids.crash(target) if verb == "crash" else kids.exit(target))
            return "ok"
        if verb == "fail_next_start":
            target = pick(arg, known)
            if target is None:
                return "skip"
            model.fail[target] = model.fail.get(target, 0) + 1
            kids.fail_start[target] = kids.fail_start.get(target, 0) + 1
            return "ok"
        if verb == "advance":
            model.now += arg
            await trio.sleep(arg)
            return "ok"
        if verb == "start_child":
            id = f"c{next_id}"
            next_id += 1
            restart, significant = arg[0], can_be_significant(*arg)
            expected = model.start_child(id, restart, significant)
            spec = kids.spec(id, restart, significant=significant)
            return await outcome(sup.start_child(spec), expected)
        target = pick(arg, known) or "nobody"
        expected = getattr(model, verb)(target)
        return await outcome(getattr(sup, verb)(target), expected)

    async def outcome(call: Any, expected: str) -> str:
        try:
            await call
            got = "ok"
        except (StartError, ChildNotFound, ChildRunning, UsageError) as exc:
            got = type(exc).__name__
        await trio.testing.wait_all_tasks_blocked()
        assert got == expected
        return got

    async def scenario() -> None:
        try:
            async with open_supervisor(
                specs,
                strategy=strategy,
                intensity=intensity,
                period=period,
                auto_shutdown=auto_shutdown,
            ) as sup:
                for op in operations:
                    note(f"{op!r}")
                    await apply(sup, op)
                    assert kids.log == model.log
                    if model.gave_up:
                        await trio.sleep_forever()  # the supervisor is giving up: cancelled
                    assert [(c.id, c.state) for c in sup.which_children()] == [
                        (c.id, c.state) for c in model.children
                    ]
                    assert kids.running() == model.running()
                if not model.stopped:
                    model.shutdown()
            final["result"] = "stopped"
        except RestartIntensityExceeded as exc:
            reason = None if exc.reason is None else type(exc.reason).__name__
            final["result"] = ("RestartIntensityExceeded", exc.child_id, reason)

    trio.run(scenario, clock=MockClock(autojump_threshold=0))
    assert kids.log == model.log
    expected = ("RestartIntensityExceeded", *model.gave_up_on) if model.gave_up_on else "stopped"
    assert final["result"] == expected
    assert kids.running() == set()
