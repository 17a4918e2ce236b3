"""Scripted children: supervised doubles that crash, exit and fail to start on cue.

Testing a supervision tree means checking *what happened, in what order*: which
children started, which were stopped, whether a restart stopped the right siblings
first. :class:`ScriptedChildren` makes child specs whose children do nothing but
wait for the test's order, and records every start, stop, crash and normal exit in
one ordered log that the test compares with what it expects (the way OTP's
supervisor_SUITE does with its scripted processes).

Rules:
    * One :class:`ScriptedChildren` is one log. Children made from it may sit under
      several supervisors (a tree) and the log interleaves them in real order.
    * A child id names at most one running child at a time: starting a second one
      under the same id (say, in two supervisors at once) is a start failure.
    * Crash and exit orders go to running children only; an order to a child that
      is not running, or that has an order it has not acted on, raises at once.

Theory of operation: each running child waits on its own ``trio.Event``; an order
stores what to do and sets the event. The child appends to the log *as it acts*, so
the log's order is the order things happened in under Trio's scheduler. Nothing here
reads the clock except the optional clean-up inside :func:`~nursemaid.shutdown_grace`,
which awaits ``trio.sleep`` so that a ``MockClock`` measures it.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any, Literal, TypeAlias

import trio
import trio.testing

from nursemaid._errors import UsageError
from nursemaid.supervisor._grace import shutdown_grace
from nursemaid.supervisor._spec import ChildSpec, Restart
from nursemaid.testing._public import show_public_module

__all__ = ["ScriptedChildren", "ScriptedCrash", "ScriptedStartFailure"]

# What happened to a child: "start" (its start function was called), "stop" (its
# supervisor cancelled it), "crash" or "exit" (it was told to raise or to return,
# and did).
_Event: TypeAlias = Literal["start", "stop", "crash", "exit"]
_Order: TypeAlias = Literal["crash", "exit"]


class ScriptedCrash(Exception):
    """What a scripted child raises when told to crash.

    A plain ``Exception`` (not a nursemaid error), like the bugs it stands in for.

    Attributes:
        child_id: the id of the child that crashed.
    """

    def __init__(self, child_id: Hashable) -> None:
        super().__init__(child_id)
        self.child_id = child_id


class ScriptedStartFailure(Exception):
    """What a scripted child raises from its start when told to fail it.

    Its supervisor reports it as the ``reason`` of a
    :class:`~nursemaid.StartError`.

    Attributes:
        child_id: the id of the child whose start failed.
    """

    def __init__(self, child_id: Hashable) -> None:
        super().__init__(child_id)
        self.child_id = child_id


class _Incarnation:
    """One running child: the order it was given (``None``: none yet) and its cue."""

    __slots__ = ("given", "order")

    def __init__(self) -> None:
        self.order: _Order | None = None
        self.given = trio.Event()


class ScriptedChildren:
    """*Scripted children*: supervised doubles that share one ordered log of their lives.

    Example::

        async def test_rest_for_one_restarts_the_younger_siblings():
            kids = ScriptedChildren()
            specs = [kids.spec("a"), kids.spec("b"), kids.spec("c")]
            async with open_supervisor(specs, strategy=Strategy.REST_FOR_ONE):
                kids.take()  # forget the initial starts
                await kids.crash("b")
                assert kids.take() == [
                    ("crash", "b"), ("stop", "c"), ("start", "b"), ("start", "c"),
                ]

    Each child made by :meth:`spec` calls ``task_status.started("<id>#<n>")`` (*n*
    counts successful starts across all the children, from 1) and then waits until
    the test tells it to :meth:`crash` (raise :class:`ScriptedCrash`) or to
    :meth:`exit` (return normally). The log gets ``("start", id)`` when its start
    function is called, ``("stop", id)`` when its supervisor cancels it, and
    ``("crash", id)`` or ``("exit", id)`` when it acts on an order.

    Attributes:
        log: ``(what, id)`` pairs in the order they happened, ``what`` being
            ``"start"``, ``"stop"``, ``"crash"`` or ``"exit"``. :meth:`take`
            returns it and starts a new one.
        fail_start: ``fail_start[id] = n`` makes the next *n* starts of child *id*
            raise :class:`ScriptedStartFailure` (after logging ``"start"``); a
            negative *n* makes every start fail until the entry is changed. Starts
            succeed for ids not in it (the default).
        cleanup: ``cleanup[id] = seconds`` makes child *id*, when stopped, await
            that long inside :func:`~nursemaid.shutdown_grace`, as a child with
            clean-up to do would. No clean-up for ids not in it (the default).
        grace_cut: the ids of children whose clean-up was cut short by their
            ``shutdown`` running out, in order.
        failed_starts: how many starts have failed in all.

    Rules:
        :meth:`crash` and :meth:`exit` wait until every task is blocked
        (``trio.testing.wait_all_tasks_blocked``) and no child is still in its
        ``cleanup``, so when they return the supervisor has finished dealing with
        the exit, restarts included. Use
        :meth:`crash_nowait` and :meth:`exit_nowait` to give several orders at once
        or when something keeps running (a restart loop that never settles, a
        busy task), and wait for what you expect yourself.
    """

    def __init__(self) -> None:
        self.log: list[tuple[_Event, Hashable]] = []
        self.fail_start: dict[Hashable, int] = {}
        self.cleanup: dict[Hashable, float] = {}
        self.grace_cut: list[Hashable] = []
        self.failed_starts = 0
        # Invariant: an id is a key while its child is between started() and its end.
        self._running: dict[Hashable, _Incarnation] = {}
        self._starts = 0
        self._start_failed = trio.Event()  # set, then replaced, at each failed start
        self._cleaning = 0  # children inside their clean-up now
        self._cleaned = trio.Event()  # set, then replaced, when that drops to 0

    def __repr__(self) -> str:
        return f"<ScriptedChildren running={sorted(self._running, key=repr)!r} log={self.log!r}>"

    def spec(self, id: Hashable, restart: Restart = Restart.PERMANENT, **options: Any) -> ChildSpec:
        """A child spec for a scripted child.

        Args:
            id: the child's id, also its name in the log.
            restart: its restart type (PERMANENT by default).
            **options: any other :class:`~nursemaid.ChildSpec` field (``shutdown``,
                ``significant``, ``start_timeout``, ``name``...).

        Returns:
            A spec that may be used any number of times, in any supervisor.

        Raises:
            TypeError, ValueError: for an invalid spec field, as ``ChildSpec`` does.
        """
        return ChildSpec(id, functools.partial(self._child, id), restart, **options)

    def running(self) -> set[Hashable]:
        """The ids of the children that have started and not yet ended."""
        return set(self._running)

    def take(self) -> list[tuple[_Event, Hashable]]:
        """Return the log so far and start a new, empty one."""
        log, self.log = self.log, []
        return log

    async def crash(self, id: Hashable) -> None:
        """Make child *id* raise :class:`ScriptedCrash`, and wait until all is quiet.

        Raises:
            UsageError: if *id* is not running or already has an order.
        """
        self.crash_nowait(id)
        await self._settle()

    async def exit(self, id: Hashable) -> None:
        """Make child *id* return normally, and wait until all is quiet.

        Raises:
            UsageError: if *id* is not running or already has an order.
        """
        self.exit_nowait(id)
        await self._settle()

    def crash_nowait(self, id: Hashable) -> None:
        """Tell child *id* to raise :class:`ScriptedCrash` when it next runs.

        Raises:
            UsageError: if *id* is not running or already has an order.
        """
        self._order(id, "crash")

    def exit_nowait(self, id: Hashable) -> None:
        """Tell child *id* to return normally when it next runs.

        Raises:
            UsageError: if *id* is not running or already has an order.
        """
        self._order(id, "exit")

    async def wait_failed_starts(self, n: int) -> None:
        """Wait until *n* starts have failed in all (at once if they already have)."""
        while self.failed_starts < n:
            await self._start_failed.wait()

    # ------------------------------------------------------------- internals

    async def _settle(self) -> None:
        # Every task blocked is not yet quiet while a child sleeps through its
        # clean-up (the restart comes after it): wait for those to end too.
        await trio.testing.wait_all_tasks_blocked()
        while self._cleaning:
            await self._cleaned.wait()
            await trio.testing.wait_all_tasks_blocked()

    def _order(self, id: Hashable, order: _Order) -> None:
        incarnation = self._running.get(id)
        if incarnation is None:
            running = sorted(map(repr, self._running))
            raise UsageError(
                f"cannot {order} scripted child {id!r}: it is not running "
                f"(running: {', '.join(running) or 'none'}); "
                "wait for its start, or check the id"
            )
        if incarnation.order is not None:
            raise UsageError(
                f"cannot {order} scripted child {id!r}: it was already told to "
                f"{incarnation.order} and has not yet; wait for it to act first"
            )
        incarnation.order = order
        incarnation.given.set()

    async def _child(
        self, id: Hashable, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.log.append(("start", id))
        if id in self._running:
            raise UsageError(
                f"scripted child {id!r} is already running; "
                "give each child that runs at the same time its own id"
            )
        left = self.fail_start.get(id, 0)
        if left:
            self.fail_start[id] = left - 1 if left > 0 else left
            self.failed_starts += 1
            self._start_failed.set()
            self._start_failed = trio.Event()
            raise ScriptedStartFailure(id)
        incarnation = self._running[id] = _Incarnation()
        self._starts += 1
        try:
            task_status.started(f"{id}#{self._starts}")
            await incarnation.given.wait()
        except trio.Cancelled:
            self.log.append(("stop", id))
            if id in self.cleanup:
                self._cleaning += 1
                try:
                    with shutdown_grace() as grace:
                        await trio.sleep(self.cleanup[id])
                finally:
                    self._cleaning -= 1
                    if not self._cleaning:
                        self._cleaned.set()
                        self._cleaned = trio.Event()
                if grace.cancelled_caught:
                    self.grace_cut.append(id)
            raise
        finally:
            del self._running[id]
        assert incarnation.order is not None  # the cue is set only with an order
        self.log.append((incarnation.order, id))
        if incarnation.order == "crash":
            raise ScriptedCrash(id)


show_public_module(globals())
