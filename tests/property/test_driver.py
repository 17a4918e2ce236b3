"""The Trio state-machine driver finds a planted bug, shrinks it, and replays it.

The toy under test is a bounded resource that hands a freed slot straight to the
longest waiter. Its planted bug is the one NimblePool's and poolboy's users met: a
waiter cancelled while queued is left in the queue, so a later release hands the slot
to nobody and it leaks. The model is a plain set of the clients holding a slot.
"""

from __future__ import annotations

import functools
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
from hypothesis import Phase, seed, settings
from hypothesis import strategies as st

from nursemaid.testing import Harness, TrioStateMachine

CAPACITY = 1


class HandoffResource:
    """At most ``capacity`` holders; a release hands the slot to the first waiter."""

    def __init__(self, capacity: int, *, forget_cancelled_waiters: bool) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._waiters: deque[trio.Event] = deque()
        self._forget_cancelled_waiters = forget_cancelled_waiters

    async def acquire(self) -> None:
        await trio.lowlevel.checkpoint()
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            return
        granted = trio.Event()
        self._waiters.append(granted)
        try:
            await granted.wait()
        except trio.Cancelled:
            if granted.is_set():  # handed over just as we were cancelled: pass it on
                self.release()
            elif not self._forget_cancelled_waiters:  # the planted bug skips this
                self._waiters.remove(granted)
            raise

    def release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # the slot passes on: in_use is unchanged
        else:
            self.in_use -= 1


@attrs.define
class Client:
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done_holding: trio.Event = attrs.field(factory=trio.Event)


@attrs.define
class ResourceState:
    harness: Harness
    resource: HandoffResource
    clients: dict[int, Client] = attrs.field(factory=dict)
    holders: set[int] = attrs.field(factory=set)
    next_id: int = 0


def resource_machine(*, forget_cancelled_waiters: bool) -> TrioStateMachine[ResourceState]:
    @asynccontextmanager
    async def setup(harness: Harness) -> AsyncIterator[ResourceState]:
        resource = HandoffResource(CAPACITY, forget_cancelled_waiters=forget_cancelled_waiters)
        yield ResourceState(harness, resource)

    machine: TrioStateMachine[ResourceState] = TrioStateMachine(setup, name="handoff resource")

    async def client(state: ResourceState, client_id: int) -> None:
        me = state.clients[client_id]
        with me.scope:
            await state.resource.acquire()
            state.holders.add(client_id)
            try:
                await me.done_holding.wait()
            finally:
                state.holders.discard(client_id)
                state.resource.release()
        del state.clients[client_id]

    @machine.rule()
    async def start_client(state: ResourceState) -> None:
        state.clients[state.next_id] = Client()
        state.harness.start_soon(client, state, state.next_id)
        state.next_id += 1

    @machine.rule(
        precondition=lambda state: bool(state.holders),
        client_id=lambda state: st.sampled_from(sorted(state.holders)),
    )
    async def release_client(state: ResourceState, client_id: int) -> None:
        state.clients[client_id].done_holding.set()

    @machine.rule(
        precondition=lambda state: bool(state.clients),
        client_id=lambda state: st.sampled_from(sorted(state.clients)),
    )
    async def cancel_client(state: ResourceState, client_id: int) -> None:
        state.clients[client_id].scope.cancel()

    @machine.invariant
    def slots_in_use_are_held_by_clients(state: ResourceState) -> None:
        assert state.resource.in_use == len(state.holders), (state.resource.in_use, state.holders)

    @machine.invariant
    def never_over_capacity(state: ResourceState) -> bool:
        return state.resource.in_use <= CAPACITY

    return machine


QUICK = settings(max_examples=300, database=None)
# For machines that fail at once: no "explain" phase (it reruns variations to
# comment the report), which is most of the time such a test would take.
FAILING = settings(max_examples=10, database=None, phases=[Phase.generate, Phase.shrink])


def _failure_of(test: object) -> AssertionError:
    with pytest.raises(AssertionError) as info:
        test()  # type: ignore[operator]
    return info.value


def _log(exc: BaseException) -> str:
    return next(note for note in exc.__notes__ if note.startswith("steps of the failing run"))


def _steps(exc: BaseException) -> list[str]:
    log = _log(exc)
    return [line.strip() for line in log.splitlines() if line.strip().startswith("await ")]


@pytest.mark.slow
def test_correct_resource_passes() -> None:
    resource_machine(forget_cancelled_waiters=False).test(QUICK)()


@functools.cache
def _shrunk_failure() -> AssertionError:
    test = seed(20261128)(resource_machine(forget_cancelled_waiters=True).test(QUICK))
    return _failure_of(test)


@pytest.mark.slow
def test_planted_bug_is_found_and_shrinks_to_the_four_step_story() -> None:
    failure = _shrunk_failure()
    assert "(1, set())" in str(failure)  # one slot in use, nobody holding it
    steps = _steps(failure)
    # Holder, waiter, cancel the waiter, release the holder: the slot goes to nobody.
    assert [re.match(r"await (\w+)", step).group(1) for step in steps] == [  # type: ignore[union-attr]
        "start_client",
        "start_client",
        "cancel_client",
        "release_client",
    ]
    assert steps[2] == "await cancel_client(state, client_id=1)"


@pytest.mark.slow
def test_failing_example_replays_identically_with_the_same_seed() -> None:
    again = _failure_of(seed(20261128)(resource_machine(forget_cancelled_waiters=True).test(QUICK)))
    assert _steps(again) == _steps(_shrunk_failure())
    assert _log(again) == _log(_shrunk_failure())


@pytest.mark.slow
def test_step_log_is_replayable_python() -> None:
    body = "\n".join("    " + step for step in _steps(_shrunk_failure()))
    compile(f"async def replay(state):\n{body}\n", "<step log>", "exec")


# ----------------------------------------------------- schedules vary and replay


def scheduling_machine(orders: list[tuple[int, ...]]) -> TrioStateMachine[Harness]:
    """Each step spawns four tasks at once; the order they run in is recorded."""
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="race", max_steps=1)

    @machine.rule()
    async def spawn_four(harness: Harness) -> None:
        ran: list[int] = []

        async def task(number: int) -> None:
            ran.append(number)

        async with trio.open_nursery() as nursery:
            for number in range(4):
                nursery.start_soon(task, number)
        orders.append(tuple(ran))

    return machine


def test_trio_schedule_varies_between_examples_and_replays_with_the_seed() -> None:
    runs: list[list[tuple[int, ...]]] = []
    for _ in range(2):
        orders: list[tuple[int, ...]] = []
        seed(7)(scheduling_machine(orders).test(settings(max_examples=40, database=None)))()
        runs.append(orders)
    assert runs[0] == runs[1]  # same seed: same schedules, example by example
    assert len(set(runs[0])) > 1  # random_module() is drawn: the schedule varies


# ----------------------------------------------------------------- time, tasks


def test_rule_waiting_on_a_later_step_fails_with_a_clear_message() -> None:
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="stuck", step_timeout=5.0)

    @machine.rule()
    async def wait_forever(harness: Harness) -> None:
        await trio.sleep_forever()

    failure = _failure_of(machine.test(FAILING))
    assert "rule 'wait_forever' did not return within 5.0 s" in str(failure)
    assert "harness.start_soon()" in str(failure)


@pytest.mark.slow
def test_a_machine_run_is_not_held_to_hypothesis_default_deadline() -> None:
    # A user's settings built on hypothesis's defaults carry its 200 ms deadline
    # (nursemaid's own profiles do not, so the default profile is named here): a
    # whole run of steps may take longer, and must not fail for it.
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="slow checks", max_steps=1)
    checks: list[float] = []

    @machine.rule()
    async def step(harness: Harness) -> None:
        await trio.lowlevel.checkpoint()

    @machine.invariant
    def slow(harness: Harness) -> None:  # checked before the first step too
        time.sleep(0.25)  # its own blocking work, in real time
        checks.append(0.25)

    defaults = settings.get_profile("default")
    assert defaults.deadline is not None
    machine.test(settings(defaults, max_examples=1, database=None))()
    assert checks


def test_a_rules_own_timeout_is_its_failure_not_the_step_timeout() -> None:
    # The step timeout is the harness's; a rule that times itself out (its own
    # trio.fail_after, well inside the step timeout) fails with its own error.
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="own timeout", step_timeout=5.0)

    @machine.rule()
    async def wait_for_reply(harness: Harness) -> None:
        with trio.fail_after(1.0):
            await trio.sleep(2.0)

    with pytest.raises(trio.TooSlowError) as info:
        machine.test(FAILING)()
    assert "await wait_for_reply(state)" in _log(info.value)


def test_runs_of_an_average_of_one_step_do_take_steps() -> None:
    # average_steps is the mean run length: even 1 must run rules (once it ran
    # none, and a machine whose every rule fails passed).
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="short", average_steps=1)

    @machine.rule()
    async def broken(harness: Harness) -> None:
        raise RuntimeError("the rule ran")

    # A run stops before its first step with chance 1/2 here, so 10 examples may all
    # stop at once (the test failed once in 22 runs of this file); 40 make it rarer.
    with pytest.raises(RuntimeError, match="the rule ran"):
        machine.test(settings(FAILING, max_examples=40))()


def test_virtual_time_passes_only_when_a_rule_waits() -> None:
    seen: list[float] = []
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="clock")

    @machine.rule(seconds=st.integers(1, 100))
    async def advance(harness: Harness, seconds: int) -> None:
        before = trio.current_time()
        await trio.sleep(seconds)
        seen.append(trio.current_time() - before - seconds)

    @machine.invariant
    def clock_is_a_mock_clock(harness: Harness) -> None:
        assert isinstance(harness.clock, trio.testing.MockClock)

    machine.test(settings(max_examples=20, database=None))()
    assert seen
    assert all(abs(extra) < 1e-6 for extra in seen)


def test_background_task_crash_fails_the_example_with_the_step_log() -> None:
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="crashy")

    async def crash() -> None:
        raise LookupError("boom")

    @machine.rule()
    async def start_crashing_task(harness: Harness) -> None:
        harness.start_soon(crash)

    with pytest.raises(LookupError, match="boom") as info:
        machine.test(FAILING)()
    assert _steps(info.value) == ["await start_crashing_task(state)"]


def test_teardown_runs_after_the_last_step_with_background_tasks_alive() -> None:
    alive_at_teardown: list[tuple[int, int]] = []
    counts = {"started": 0, "alive": 0}

    @asynccontextmanager
    async def fresh_count(harness: Harness) -> AsyncIterator[Harness]:
        # Counted from setup: an example hypothesis cuts short (StopTest) never
        # reaches its teardown hooks, so a count reset there would carry over.
        counts["started"] = 0
        yield harness

    machine: TrioStateMachine[Harness] = TrioStateMachine(fresh_count, name="teardown", max_steps=3)

    async def background() -> None:
        counts["alive"] += 1
        try:
            await trio.sleep_forever()
        finally:
            counts["alive"] -= 1

    @machine.rule()
    async def start_background(harness: Harness) -> None:
        counts["started"] += 1
        harness.start_soon(background)

    @machine.teardown
    async def check_at_end(harness: Harness) -> None:
        alive_at_teardown.append((counts["alive"], counts["started"]))

    machine.test(settings(max_examples=10, database=None))()
    assert alive_at_teardown
    assert all(alive == started for alive, started in alive_at_teardown)
    assert counts["alive"] == 0


def test_teardown_hook_that_never_returns_fails_with_a_clear_message() -> None:
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="stuck end", step_timeout=5.0)

    @machine.rule()
    async def noop(harness: Harness) -> None:
        pass

    @machine.teardown
    async def wait_forever(harness: Harness) -> None:
        await trio.sleep_forever()

    failure = _failure_of(machine.test(FAILING))
    assert "teardown hook 'wait_forever' did not return within 5.0 s" in str(failure)
    assert _log(failure).rstrip().endswith("await wait_forever(state)  # teardown")


def test_invariant_returning_false_names_itself_and_the_step() -> None:
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="false")

    @machine.rule()
    async def step(harness: Harness) -> None:
        pass

    @machine.invariant
    def holds_only_before_the_first_step(harness: Harness) -> bool:
        return harness.step == 0

    failure = _failure_of(machine.test(FAILING))
    assert str(failure) == "invariant 'holds_only_before_the_first_step' does not hold after step 1"


def test_run_ends_when_no_rule_is_enabled() -> None:
    ran: list[int] = []
    notes: list[bool] = []
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="once")

    @machine.rule(precondition=lambda harness: not ran)
    async def only_once(harness: Harness) -> None:
        ran.append(harness.step)

    @machine.teardown
    async def reset(harness: Harness) -> None:
        assert len(ran) <= 1
        notes.append("# no rule is enabled: the run ends" in harness.log)
        ran.clear()

    machine.test(settings(max_examples=20, database=None))()
    assert any(notes)


# ---- runs that never settle, misused hooks, big states ------------------------------

# Each busy example takes BUSY_LIMIT_SECONDS of real time: no shrinking.
BUSY = settings(max_examples=10, database=None, phases=[Phase.generate])


def test_a_background_task_that_only_checkpoints_fails_with_a_named_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under the autojump clock such a task stops virtual time, so no step timeout
    # could end the run: it used to hang the test for ever.
    monkeypatch.setattr("nursemaid.testing._driver.BUSY_LIMIT_SECONDS", 0.2)
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="busy background task")

    async def busy_wait() -> None:
        while True:
            await trio.sleep(0)

    @machine.rule()
    async def start_busy(harness: Harness) -> None:
        harness.start_soon(busy_wait)

    failure = _failure_of(machine.test(BUSY))
    assert re.search(r"no task blocked for 0\.2 s .*busy tasks: \[.*busy_wait", str(failure))


def test_a_rule_that_only_checkpoints_fails_naming_its_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("nursemaid.testing._driver.BUSY_LIMIT_SECONDS", 0.2)
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="busy rule")

    @machine.rule()
    async def spins(harness: Harness) -> None:
        while True:
            await trio.sleep(0)

    failure = _failure_of(machine.test(BUSY))
    assert "in step 1" in str(failure)


def test_an_async_invariant_is_refused_when_it_is_registered() -> None:
    # It would never be awaited, so it could never fail.
    machine: TrioStateMachine[Harness] = TrioStateMachine()
    with pytest.raises(ValueError, match="invariant 'holds' must be a plain function"):

        @machine.invariant
        async def holds(harness: Harness) -> bool:  # pragma: no cover - refused
            return False


def test_a_teardown_hook_that_returns_no_awaitable_fails_naming_itself() -> None:
    machine: TrioStateMachine[Harness] = TrioStateMachine()

    @machine.rule()
    async def noop(harness: Harness) -> None:
        pass

    @machine.teardown  # type: ignore[arg-type]
    def ends(harness: Harness) -> None:
        pass

    with pytest.raises(TypeError, match="teardown hook 'ends' returned None, not an awaitable"):
        machine.test(settings(max_examples=3, database=None))()


def test_a_teardown_hook_may_be_any_callable_returning_an_awaitable() -> None:
    machine: TrioStateMachine[Harness] = TrioStateMachine()
    ended: list[int] = []

    @machine.rule()
    async def noop(harness: Harness) -> None:
        pass

    async def end(harness: Harness) -> None:
        ended.append(1)

    machine.teardown(lambda harness: end(harness))
    machine.test(settings(max_examples=3, database=None))()
    assert ended


def test_an_invariant_object_with_an_async_call_fails_instead_of_never_failing() -> None:
    class Holds:
        async def __call__(self, harness: Harness) -> bool:  # pragma: no cover - not awaited
            return False

    machine: TrioStateMachine[Harness] = TrioStateMachine()

    @machine.rule()
    async def noop(harness: Harness) -> None:
        pass

    machine.invariant(Holds())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="returned an awaitable: it must be a plain function"):
        machine.test(settings(max_examples=3, database=None))()


def test_a_long_synchronous_rule_is_slow_not_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    # One scheduler round that takes long is not a loop that only checkpoints.
    monkeypatch.setattr("nursemaid.testing._driver.BUSY_LIMIT_SECONDS", 0.05)
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="slow rule", max_steps=2)

    async def ticks() -> None:
        for _ in range(5):
            await trio.sleep(0)

    @machine.rule()
    async def sleeps_in_sync_code(harness: Harness) -> None:
        harness.start_soon(ticks)
        await trio.sleep(0)
        time.sleep(0.1)  # blocks the whole run, with a task runnable before and after
        await trio.sleep(0)

    machine.test(settings(max_examples=3, database=None, phases=[Phase.generate]))()


def test_a_strategy_error_shows_the_enabled_rules_not_the_whole_state() -> None:
    from hypothesis.errors import InvalidArgument

    machine: TrioStateMachine[Harness] = TrioStateMachine(name="empty sample")

    @machine.rule()
    async def add(harness: Harness) -> None:
        pass

    @machine.rule(item=lambda harness: st.sampled_from([]))
    async def use(harness: Harness, item: object) -> None:  # pragma: no cover
        pass

    with pytest.raises(InvalidArgument) as info:
        machine.test(settings(max_examples=20, database=None))()
    text = "\n".join([str(info.value), *info.value.__notes__])
    # Both rules, or one of them if this run's swarm draw switched the other off.
    assert re.search(r"_next_step\(choices=<enabled rules: (add, use|add|use)>", text)


# ---- pick(), and runs against the real clock ------------------------------------------


def test_pick_draws_one_of_the_live_items_and_a_failure_shrinks_to_the_first() -> None:
    from nursemaid.testing import pick

    items: list[int] = []

    @asynccontextmanager
    async def no_items(harness: Harness) -> AsyncIterator[Harness]:
        items.clear()  # in setup: an example hypothesis cuts short has no teardown
        yield harness

    machine: TrioStateMachine[Harness] = TrioStateMachine(no_items, name="pick")

    @machine.rule()
    async def add(harness: Harness) -> None:
        items.append(len(items))

    @machine.rule(precondition=lambda harness: bool(items), item=pick(lambda harness: items))
    async def use(harness: Harness, item: int) -> None:
        assert item in items
        assert item != 0, "picked the first item"

    failure = _failure_of(machine.test(FAILING))
    assert "picked the first item" in str(failure)
    assert _steps(failure)[-1] == "await use(state, item=0)"


def test_under_the_real_clock_what_is_enabled_may_change_between_runs_of_an_example() -> None:
    # The enabled rules follow the wall clock here, as they follow real processes in
    # a pool machine over ports; the draws must not, or hypothesis gives up with
    # FlakyStrategyDefinition instead of running the examples.
    from nursemaid.testing import pick

    machine: TrioStateMachine[Harness] = TrioStateMachine(name="wall clock", clock=None)
    seen = {"steps": 0}

    def odd_microsecond(harness: Harness) -> bool:
        return time.perf_counter_ns() // 1000 % 2 == 1

    @machine.rule(size=st.integers(0, 3))
    async def always(harness: Harness, size: int) -> None:
        seen["steps"] += 1

    @machine.rule(precondition=odd_microsecond, n=st.integers(0, 100), x=st.booleans())
    async def sometimes(harness: Harness, n: int, x: bool) -> None:
        seen["steps"] += 1

    @machine.rule(
        precondition=odd_microsecond,
        item=pick(lambda harness: [1, 2, 3][: time.perf_counter_ns() // 1000 % 3 + 1]),
    )
    async def picky(harness: Harness, item: int) -> None:
        seen["steps"] += 1

    machine.test(settings(max_examples=200, database=None))()
    assert seen["steps"] > 0


def test_under_the_real_clock_each_pick_of_a_rule_draws_its_own_index() -> None:
    from nursemaid.testing import pick

    machine: TrioStateMachine[Harness] = TrioStateMachine(name="two picks", clock=None)
    pairs: set[tuple[int, int]] = set()
    digits = list(range(10))

    @machine.rule(a=pick(lambda harness: digits), b=pick(lambda harness: digits))
    async def both(harness: Harness, a: int, b: int) -> None:
        pairs.add((a, b))

    machine.test(settings(max_examples=50, database=None))()
    assert any(a != b for a, b in pairs)
