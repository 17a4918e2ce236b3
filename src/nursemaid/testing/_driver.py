"""A small Trio driver for hypothesis state machines.

Rules:
    * One :func:`trio.run` per hypothesis example, on a fresh clock (by default
      ``MockClock(autojump_threshold=0)``: virtual time, so timeouts cost nothing).
    * Every example draws :func:`hypothesis.strategies.random_module` first. Trio's
      hypothesis hook registers the scheduler's private ``Random`` with hypothesis;
      drawing ``random_module()`` seeds it from the example's own data, so the task
      order varies from example to example and a failing example replays with the
      same schedule. (Without the draw every example runs the same task order.)
    * Steps are drawn one at a time *inside* the run, from ``st.data()``: which rule,
      then its arguments. Preconditions and argument strategies may look at the
      state, and hypothesis shrinks and replays the whole run for free.
    * After setup and after every step the driver lets the system settle
      (:func:`trio.testing.wait_all_tasks_blocked`), then checks every invariant.
    * Extension is by composition: a :class:`TrioStateMachine` is a registry of
      rules, invariants and teardown hooks around one ``setup`` factory. Factory
      functions (such as the pool machine) return one; users add their own rules to it.

Theory of operation:
    ``run(data)`` draws the scheduler seed, then calls ``trio.run(_main)``. ``_main``
    enters ``setup(harness)`` (an async context manager yielding the *state* the rules
    act on), opens the *background nursery* that rules may start tasks in (clients
    blocking in a checkout, say), and loops: draw "go on?" (shrinks towards stopping),
    draw a rule among the enabled ones and its arguments, run it under a per-step
    timeout, settle, check invariants. Then the teardown hooks run (background tasks
    still alive), the background nursery is cancelled, and setup's block exits. Every
    step is written to a log as a Python statement; when anything fails, the log is
    attached to the exception as a note (PEP 678), so the shrunk counterexample reads
    as a script.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, Generic, TypeVar, cast

import attrs
import trio
import trio.testing
from hypothesis import given
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from nursemaid._errors import UsageError
from nursemaid.testing._public import show_public_module

__all__ = [
    "DEFAULT_AVERAGE_STEPS",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_STEP_TIMEOUT",
    "Harness",
    "Rule",
    "TrioStateMachine",
    "autojump_clock",
]

S = TypeVar("S")

#: Upper bound on the number of steps in one example.
DEFAULT_MAX_STEPS: Final = 50
#: Mean number of steps hypothesis aims for before shrinking (each step goes on
#: with probability ``1 - 1/average_steps``).
DEFAULT_AVERAGE_STEPS: Final = 12
#: A rule that has not returned after this many seconds of the run's clock fails
#: the example with a message saying so (virtual seconds under the default clock).
DEFAULT_STEP_TIMEOUT: Final = 600.0
#: Seconds of *real* time with a runnable task at every scheduler batch before the
#: run is declared busy: a task that only checkpoints (``while True: await
#: trio.sleep(0)``) never lets the system settle, and virtual time never passes
#: under the autojump clock, so no step timeout can end it.
BUSY_LIMIT_SECONDS: Final = 10.0
#: ... and at least this many scheduler rounds in that time.
BUSY_LIMIT_ROUNDS: Final = 1000


class _BusyWatch(trio.abc.Instrument):
    """Cancels the run when no task has blocked for BUSY_LIMIT_SECONDS of real time."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.scope: trio.CancelScope | None = None
        self.tripped: set[str] | None = None
        self.recent: set[str] = set()
        self.rounds = 0  # scheduler rounds since `since`

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.since is not None:
            self.recent.add(task.name)

    def before_io_wait(self, timeout: float) -> None:
        if trio.lowlevel.current_statistics().tasks_runnable == 0:
            self.since = None
            self.recent.clear()
            return
        now = time.perf_counter()
        if self.since is None:
            self.since = now
            self.rounds = 0
            return
        self.rounds += 1
        # Both: a loop that only checkpoints makes ~100,000 rounds a second, while
        # a long synchronous call between two rounds is slow, not busy.
        if (
            now - self.since > BUSY_LIMIT_SECONDS
            and self.rounds > BUSY_LIMIT_ROUNDS
            and self.tripped is None
            and self.scope is not None
        ):
            self.tripped = set(self.recent)
            self.scope.cancel()


@attrs.frozen
class Pick:
    """A rule argument: one of the items a function of the live state returns.

    ``client=pick(lambda state: state.waiting_clients)`` draws one of them, like
    ``lambda state: st.sampled_from(state.waiting_clients)``, but with a draw whose
    shape does not depend on how many items there are: an index, taken modulo
    their number. Against real processes the live state differs from one run of
    an example to the next (a worker answers sooner or later), and a draw whose
    shape follows it makes hypothesis give up with ``FlakyStrategyDefinition``
    instead of replaying and shrinking the example. Under the autojump clock
    either is fine. The rule's precondition must make sure there is an item.
    """

    items: Callable[[Any], Sequence[Any]]


def pick(items: Callable[[Any], Sequence[Any]]) -> Pick:
    """Return a rule argument that draws one of ``items(state)`` (see :class:`Pick`)."""
    return Pick(items)


_PICK_INDICES: Final = st.integers(0, 2**16 - 1)

#: What a rule argument may be: a strategy, a function of the state returning one
#: (the equivalent of hypothesis's bundles: ``lambda s: st.sampled_from(s.clients)``),
#: or a :func:`pick` of the live state.
ArgumentStrategy = SearchStrategy[Any] | Callable[[Any], SearchStrategy[Any]] | Pick


def autojump_clock() -> trio.abc.Clock:
    """The default clock: ``trio.testing.MockClock(autojump_threshold=0)``.

    Virtual time that jumps to the next deadline whenever every task is blocked, so
    a rule may wait for a 5-second timeout and the example still takes microseconds.

    Not for runs that wait on *real* processes: a task waiting for a pipe counts as
    blocked too, so the clock would jump past a timeout the process had no chance to
    meet. Pass ``clock=None`` (Trio's real clock) to :class:`TrioStateMachine` then.
    """
    return trio.testing.MockClock(autojump_threshold=0)


@attrs.frozen
class Rule:
    """One action a state machine may take: an async function of the state.

    Attributes:
        function: ``async def rule(state, **arguments) -> None``. It may raise to
            fail the example, and it may start background tasks through the
            :class:`Harness` it kept from setup.
        arguments: argument name → a strategy, or a function of the state that
            returns one (drawn when the step is chosen, so it sees the live state).
        precondition: ``None`` (always enabled) or a predicate of the state; the
            rule is only chosen while it returns true.
        name: the name shown in the step log (the function's name by default).
    """

    function: Callable[..., Awaitable[object]]
    arguments: Mapping[str, ArgumentStrategy] = attrs.field(factory=dict)
    precondition: Callable[[Any], bool] | None = None
    name: str = attrs.field()

    @name.default
    def _name_default(self) -> str:
        return str(getattr(self.function, "__name__", repr(self.function)))


@attrs.frozen
class _Step:
    rule: Rule
    arguments: Mapping[str, object]

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self.arguments.items())
        return f"{self.rule.name}({shown})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # hypothesis's printer shows attrs classes field by field; show the call.
        printer.text(repr(self))

    def statement(self) -> str:
        shown = "".join(f", {key}={value!r}" for key, value in self.arguments.items())
        return f"await {self.rule.name}(state{shown})"


class _EndOfRun:
    def __repr__(self) -> str:
        return "<end of run>"


_END_OF_RUN: Final = _EndOfRun()


@attrs.define
class Harness:
    """What the driver gives ``setup`` (and, through the state, the rules) in one run.

    Attributes:
        clock: this run's clock (a :class:`trio.testing.MockClock` under the
            default ``clock`` factory; ``None`` on Trio's real clock).
        step: the number of the step running now (0 during setup).
        log: the step log so far, one Python statement or comment per line.
    """

    clock: trio.abc.Clock | None
    step: int = 0
    log: list[str] = attrs.field(factory=list, repr=False)
    _nursery: trio.Nursery | None = attrs.field(default=None, repr=False)

    @property
    def nursery(self) -> trio.Nursery:
        """The *background nursery*: tasks started here outlive the step that
        started them, and are cancelled after the teardown hooks ran.

        Raises:
            UsageError: during setup (it opens right after setup's ``yield``).
        """
        if self._nursery is None:
            raise UsageError(
                "the harness's background nursery opens after setup has yielded its state; "
                "start background tasks from a rule, or open your own nursery in setup"
            )
        return self._nursery

    def start_soon(
        self, async_fn: Callable[..., Awaitable[object]], *args: object, name: object = None
    ) -> None:
        """Start ``async_fn(*args)`` in the background nursery, and log it.

        As :meth:`trio.Nursery.start_soon` (``name`` included). An exception
        escaping the task fails the example (with the step log).
        """
        shown = name if name is not None else getattr(async_fn, "__name__", repr(async_fn))
        self.note(f"started in the background: {shown}")
        self.nursery.start_soon(async_fn, *args, name=name)

    def note(self, comment: str) -> None:
        """Add ``# comment`` to the step log (shown only if the example fails)."""
        for line in comment.splitlines() or [""]:
            self.log.append(f"# {line}")


Setup = Callable[[Harness], AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def _harness_as_state(harness: Harness) -> AsyncIterator[Harness]:
    yield harness


@attrs.define
class TrioStateMachine(Generic[S]):
    """A *state machine* for hypothesis whose rules are async functions run by Trio.

    Build one, register rules and invariants with the decorators, then expose a test::

        machine = TrioStateMachine(open_bounded_resource, name="bounded resource")

        @machine.rule(n=st.integers(1, 3))
        async def acquire(state, n): ...

        @machine.rule(precondition=lambda state: state.held)
        async def release(state): ...

        @machine.invariant
        def never_over_capacity(state):
            assert state.resource.in_use <= state.capacity

        test_bounded_resource = machine.test()

    Each example is one :func:`trio.run`: ``setup(harness)`` yields the state, steps
    are drawn and run one by one, invariants are checked after each, and a failing
    example reports its steps as Python statements. See ``docs/testing.md``.

    Extend a machine by composition: call :meth:`rule`, :meth:`invariant` and
    :meth:`teardown` on it (or on the one a factory returned), not by subclassing.

    Args:
        setup: ``setup(harness)`` returns an async context manager yielding the
            state the rules act on; leaving it is the system's teardown (and a
            failure there fails the example). ``None``: the state is the
            :class:`Harness` itself.
        name: shown in the step log. Default ``"state machine"``.
        clock: a factory called once per example for the run's clock; ``None`` for
            Trio's real clock (needed when the run waits on real processes). Default
            :func:`autojump_clock`.
        max_steps: at most this many steps per example. Default
            :data:`DEFAULT_MAX_STEPS`.
        average_steps: the mean number of steps of a run before shrinking (at
            least 1). Default :data:`DEFAULT_AVERAGE_STEPS`.
        step_timeout: a rule still running after this many seconds (of the run's
            clock) fails the example. Default :data:`DEFAULT_STEP_TIMEOUT`. A
            rule's own timeout (its ``trio.fail_after``) fails it with its own
            ``TooSlowError``.
        swarm: *swarm testing* (default True): each run first draws a subset of
            rules to switch off (shrinking towards none), so some runs hammer a
            few rules hard instead of spreading thin over all of them (the
            technique hypothesis's own state machines use). A rule is only
            switched off while some other enabled rule is on.
    """

    setup: Setup | None = None
    name: str = "state machine"
    clock: Callable[[], trio.abc.Clock] | None = autojump_clock
    max_steps: int = DEFAULT_MAX_STEPS
    average_steps: int = DEFAULT_AVERAGE_STEPS
    step_timeout: float = DEFAULT_STEP_TIMEOUT
    swarm: bool = True
    rules: list[Rule] = attrs.field(factory=list)
    invariants: list[Callable[[S], object]] = attrs.field(factory=list)
    teardowns: list[Callable[[S], Awaitable[object]]] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        given_rules, self.rules = self.rules, []
        for rule in given_rules:
            self.add_rule(rule)  # the same checks as the decorator
        if self.max_steps < 0:
            raise ValueError(f"max_steps must be >= 0 (got {self.max_steps!r})")
        if self.average_steps < 1:
            raise ValueError(f"average_steps must be >= 1 (got {self.average_steps!r})")
        if not self.step_timeout > 0:
            raise ValueError(f"step_timeout must be > 0 (got {self.step_timeout!r})")

    # ---------------------------------------------------------------- registry

    def rule(
        self,
        *,
        precondition: Callable[[S], bool] | None = None,
        **arguments: ArgumentStrategy,
    ) -> Callable[[Callable[..., Awaitable[object]]], Callable[..., Awaitable[object]]]:
        """Decorator: register ``async def fn(state, **arguments)`` as a rule.

        Args:
            precondition: the rule is chosen only while ``precondition(state)``
                is true. Default: always.
            **arguments: a strategy per keyword argument, or a function of the
                state that returns one.

        Returns:
            The function, unchanged (so a logged counterexample can call it).
        """

        def register(
            function: Callable[..., Awaitable[object]],
        ) -> Callable[..., Awaitable[object]]:
            self.add_rule(Rule(function, arguments, precondition))
            return function

        return register

    def add_rule(self, rule: Rule) -> None:
        """Register a :class:`Rule` built by hand.

        Raises:
            ValueError: the function is not async, or another rule has this name.
        """
        if not inspect.iscoroutinefunction(rule.function):
            raise ValueError(
                f"rule {rule.name!r} must be an async function (got {rule.function!r})"
            )
        if any(existing.name == rule.name for existing in self.rules):
            raise ValueError(f"{self.name!r} already has a rule named {rule.name!r}")
        self.rules.append(rule)

    def invariant(self, function: Callable[[S], object]) -> Callable[[S], object]:
        """Decorator: register ``def fn(state)``, checked after setup and every step.

        It fails the example by raising (``assert`` is fine) or by returning
        ``False``; any other return value means it holds. It runs synchronously on
        the settled system, so it sees no half-finished step.
        """
        if inspect.iscoroutinefunction(function):
            raise ValueError(
                f"invariant {_name(function)!r} must be a plain function, not async: it is "
                f"checked synchronously on the settled system (got {function!r})"
            )
        self.invariants.append(function)
        return function

    def teardown(
        self, function: Callable[[S], Awaitable[object]]
    ) -> Callable[[S], Awaitable[object]]:
        """Decorator: register ``async def fn(state)``, run once after the last step.

        Background tasks are still running, so this is the place to check
        "eventually" properties, e.g. wait until every client was served or timed
        out (virtual time passes at no cost).
        """
        self.teardowns.append(function)
        return function

    # ----------------------------------------------------------------- running

    def run(self, data: st.DataObject) -> None:
        """Run one example, drawing everything from ``data``.

        Call it from your own ``@given(st.data())`` test when :meth:`test` does not
        fit. It draws ``st.random_module()`` itself, so Trio's schedule varies
        between examples and replays with the example.

        Raises:
            Whatever the first failing rule, invariant, teardown hook or background
            task raised, with the step log attached as a note.
        """
        if not self.rules:
            raise UsageError(f"{self.name!r} has no rules; register some with @machine.rule()")
        data.draw(st.random_module(), label="trio scheduler seed")
        harness = Harness(clock=None)
        clock = self.clock() if self.clock is not None else None
        harness.clock = clock
        failure: Exception | None = None
        watch = _BusyWatch()
        # Only virtual time needs the watch: there a task that only checkpoints stops
        # the clock, so no step timeout can end the run. With the real clock the step
        # timeout does, and a rule that keeps real processes busy for long is no bug.
        watching = [watch] if isinstance(clock, trio.testing.MockClock) else []
        try:
            trio.run(self._main, data, harness, watch, clock=clock, instruments=watching)
        except Exception as exc:
            failure = exc
        if failure is not None:
            # Raised outside the except block, so the leaf keeps its own context.
            leaf = _sole_leaf(failure)
            leaf.add_note(self._render_log(harness))
            leaf.add_note(
                "the Trio schedule is part of the example: to replay it exactly, rerun the "
                "test (hypothesis's database replays the failure first), or use "
                "settings(print_blob=True) and put the @reproduce_failure line it prints on "
                "the test that machine.test() returned"
            )
            raise leaf

    def test(self, settings: Settings | None = None) -> Callable[[], None]:
        """Return a test function running this machine under hypothesis.

        Assign it to a module-level ``test_*`` name for pytest to collect::

            test_bounded_resource = machine.test(settings(max_examples=200))

        Args:
            settings: hypothesis settings for it. Default: the loaded profile's.
                Either way the ``deadline`` is ``None`` unless you chose another
                than hypothesis's default (200 ms): an example is a whole run of
                many steps, which that deadline would fail at random.
        """

        def run_machine(data: st.DataObject) -> None:
            self.run(data)

        # Named before @given wraps it, so hypothesis reports the machine's name.
        run_machine.__name__ = run_machine.__qualname__ = "test_" + _identifier(self.name)
        test = given(data=st.data())(run_machine)
        if settings is None:
            settings = Settings(deadline=None)
        elif settings.deadline == Settings.get_profile("default").deadline:
            settings = Settings(settings, deadline=None)
        return settings(test)

    async def _main(self, data: st.DataObject, harness: Harness, watch: _BusyWatch) -> None:
        with trio.CancelScope() as watch.scope:
            await self._main_body(data, harness)
        if watch.tripped is not None:
            where = f"in step {harness.step}" if harness.step else "outside the steps"
            raise AssertionError(
                f"no task blocked for {BUSY_LIMIT_SECONDS} s (real time) {where} "
                f"(busy tasks: {sorted(watch.tripped)}); a loop that only checkpoints "
                "(await trio.sleep(0)) never lets the system settle; wait on an Event or "
                "a sleep with a positive delay instead"
            )

    async def _main_body(self, data: st.DataObject, harness: Harness) -> None:
        setup: Setup = self.setup if self.setup is not None else _harness_as_state
        harness.log.append(f"# {self.name}: `state` is what setup yielded")
        off: frozenset[str] = frozenset()
        if self.swarm and len(self.rules) > 1:
            names = [rule.name for rule in self.rules]
            off = frozenset(
                data.draw(
                    st.sets(st.sampled_from(names), max_size=len(names) - 1),
                    "rules switched off for this run",
                )
            )
            if off:
                harness.note(f"swarm: rules switched off for this run: {sorted(off)}")
        async with setup(harness) as state:
            async with trio.open_nursery() as nursery:
                harness._nursery = nursery
                await self._check_invariants(state, harness)
                if isinstance(harness.clock, trio.testing.MockClock):
                    await self._run_drawn_steps(data, harness, state, off)
                else:
                    await self._run_planned_steps(data, harness, state, off)
                harness.step = 0
                for hook in self.teardowns:
                    harness.log.append(f"await {_name(hook)}(state)  # teardown")
                    ran = hook(state)
                    if not inspect.isawaitable(ran):
                        raise TypeError(
                            f"teardown hook {_name(hook)!r} returned {ran!r}, not an awaitable: "
                            "make it an async function"
                        )
                    await self._bounded(_name(hook), "teardown hook", ran)
                nursery.cancel_scope.cancel()
            harness._nursery = None

    async def _run_drawn_steps(
        self, data: st.DataObject, harness: Harness, state: S, off: frozenset[str]
    ) -> None:
        """Virtual time: each step is drawn when it comes, from the rules enabled then
        (the run is deterministic, so a replay finds the same ones)."""
        for number in range(1, self.max_steps + 1):
            harness.step = number
            enabled = self._enabled(state, off)
            if not enabled:
                harness.note("no rule is enabled: the run ends")
                break
            step = data.draw(
                _next_step(_Choices(enabled, state), self.average_steps), f"step {number}"
            )
            if not isinstance(step, _Step):
                break
            harness.log.append(step.statement())
            await self._run_step(step, state)
            await self._check_invariants(state, harness)

    async def _run_planned_steps(
        self, data: st.DataObject, harness: Harness, state: S, off: frozenset[str]
    ) -> None:
        """The real clock: the live state differs between runs of one example (a worker
        answers sooner or later), so the whole run is drawn first, before anything
        runs: per step a rule index and that rule's arguments. When a step's turn
        comes, its index passes on to the next rule enabled then (as under virtual
        time), which takes the arguments the plan drew for it at the nearest step.
        So what an example draws depends neither on the live state nor on the step
        where a run fails, and hypothesis can replay and shrink it.
        Live-state arguments should be made with :func:`pick` here: a strategy made
        from the state can only be drawn when the step runs."""
        plan = data.draw(
            _plan(self.rules, self.average_steps, self.max_steps), "the run's steps (real clock)"
        )
        rules = self.rules
        for number, (index, _) in enumerate(plan, start=1):
            harness.step = number
            enabled = self._enabled(state, off)
            at = next(
                (k for k in [*range(index, len(rules)), *range(index)] if rules[k] in enabled),
                None,
            )
            drawn = None if at is None else _planned_arguments(plan, number, at)
            if at is None or drawn is None:
                harness.log.append("# no rule the plan has arguments for was enabled: skipped")
                continue
            rule = rules[at]
            arguments: dict[str, object] = {}
            for key, spec in rule.arguments.items():
                if isinstance(spec, Pick):
                    arguments[key] = _picked(spec, state, cast("int", drawn[key]))
                elif isinstance(spec, SearchStrategy):
                    arguments[key] = drawn[key]
                else:
                    arguments[key] = data.draw(spec(state), f"step {number}: {key}")
            step = _Step(rule, arguments)
            harness.log.append(step.statement())
            await self._run_step(step, state)
            await self._check_invariants(state, harness)

    def _enabled(self, state: S, off: frozenset[str]) -> list[Rule]:
        """The rules whose precondition holds; swarm testing prefers those not off."""
        enabled = [
            rule for rule in self.rules if rule.precondition is None or rule.precondition(state)
        ]
        return [rule for rule in enabled if rule.name not in off] or enabled

    async def _run_step(self, step: _Step, state: S) -> None:
        await self._bounded(step.rule.name, "rule", step.rule.function(state, **step.arguments))

    async def _bounded(self, name: str, what: str, call: Awaitable[object]) -> None:
        # move_on_after, not fail_after: a TooSlowError of the rule's own (its
        # trio.fail_after) is the rule's failure and must come out as it is.
        with trio.move_on_after(self.step_timeout) as scope:
            await call
        if scope.cancelled_caught:
            raise AssertionError(
                f"{what} {name!r} did not return within {self.step_timeout!r} s of the "
                "run's clock; if it waits for something a later step does, start it in the "
                "background with harness.start_soon() instead"
            )

    async def _check_invariants(self, state: S, harness: Harness) -> None:
        await trio.testing.wait_all_tasks_blocked()
        for invariant in self.invariants:
            held = invariant(state)
            if inspect.isawaitable(held):  # an async __call__, say: it would never fail
                if inspect.iscoroutine(held):
                    held.close()
                raise TypeError(
                    f"invariant {_name(invariant)!r} returned an awaitable: it must be a "
                    "plain function, checked synchronously on the settled system"
                )
            if held is False:
                where = f"after step {harness.step}" if harness.step else "after setup"
                raise AssertionError(f"invariant {_name(invariant)!r} does not hold {where}")

    def _render_log(self, harness: Harness) -> str:
        return "steps of the failing run, as Python:\n" + "\n".join(
            f"    {line}" for line in harness.log
        )


@attrs.frozen(repr=False)
class _Choices:
    # hypothesis shows a composite's arguments in its reports (and warns, an error
    # under -W error, when that repr passes 50 kB): show the rule names, not the state.
    enabled: list[Rule]
    state: object

    def __repr__(self) -> str:
        return f"<enabled rules: {', '.join(rule.name for rule in self.enabled)}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # hypothesis's printer would show attrs fields


@st.composite
def _next_step(draw: st.DrawFn, choices: _Choices, average_steps: int) -> _Step | _EndOfRun:
    enabled, state = choices.enabled, choices.state
    # Invariant: one draw per step, so hypothesis can delete a whole step while
    # shrinking, and "go on?" shrinks towards 0 = stop (shorter runs). Stopping
    # with chance 1 / (average_steps + 1) at each step makes that the mean length.
    if draw(st.integers(0, average_steps)) == 0:
        return _END_OF_RUN
    rule = draw(st.sampled_from(enabled))
    arguments: dict[str, object] = {}
    for key, spec in rule.arguments.items():
        if isinstance(spec, SearchStrategy):
            arguments[key] = draw(spec)
        elif isinstance(spec, Pick):
            arguments[key] = _picked(spec, state, draw(_PICK_INDICES))
        else:
            arguments[key] = draw(spec(state))
    return _Step(rule, arguments)


@st.composite
def _plan(
    draw: st.DrawFn, rules: list[Rule], average_steps: int, max_steps: int
) -> list[tuple[int, dict[str, object]]]:
    # Per step: the same "go on?" as _next_step (as many steps on average, shrinking
    # the same way), a rule index over all the rules, and that rule's arguments: what
    # its strategies give, and an index for each of its picks.
    plan: list[tuple[int, dict[str, object]]] = []
    while len(plan) < max_steps and draw(st.integers(0, average_steps)) != 0:
        index = draw(st.integers(0, len(rules) - 1))
        drawn = {
            key: draw(_PICK_INDICES if isinstance(spec, Pick) else spec)
            for key, spec in rules[index].arguments.items()
            if isinstance(spec, SearchStrategy | Pick)
        }
        plan.append((index, drawn))
    return plan


def _planned_arguments(
    plan: list[tuple[int, dict[str, object]]], number: int, index: int
) -> dict[str, object] | None:
    """The arguments the plan drew for rule *index*: at step *number* (1-based)
    or the nearest step before it, else the nearest after; ``None`` if none did."""
    position = number - 1
    for k in [*range(position, -1, -1), *range(position + 1, len(plan))]:
        if plan[k][0] == index:
            found: dict[str, object] = plan[k][1]
            return found
    return None


def _picked(spec: Pick, state: object, at: int) -> object:
    items = spec.items(state)
    if not items:
        raise UsageError(
            f"pick({_name(spec.items)}) found nothing to pick from; give the rule a "
            "precondition that makes sure there is an item"
        )
    return items[at % len(items)]


def _sole_leaf(exc: Exception) -> Exception:
    # Trio wraps even one exception in an ExceptionGroup; report the one failure
    # itself, so hypothesis tells failures apart by their real type and place.
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _name(function: object) -> str:
    return str(getattr(function, "__name__", repr(function)))


def _identifier(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_") or "machine"


show_public_module(globals())
