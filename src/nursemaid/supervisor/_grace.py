"""The shutdown grace: how long a stopping child may keep awaiting.

Rules:
    * Stopping a child cancels it, as Trio stops any task; a plain child therefore
      stops at its next checkpoint. A child that must await while it cleans up
      (OTP's child that traps exits) does that inside :func:`shutdown_grace`.
    * The grace is a *shielded* cancel scope: the supervisor's cancellation does
      not reach inside it, but its own deadline does. The deadline is the child's
      ``shutdown`` value counted from the moment its supervisor asked it to stop
      (from entering the grace, if nobody asked): no time at all for
      ``BRUTAL_KILL``, that many seconds for a number, unbounded for ``INFINITY``.
      Several graces entered one after the other share that one deadline, as OTP's
      single shutdown timer does.
    * If the supervisor itself runs out of time (it is a child with a finite
      shutdown, and its own grace expired), it *kills* its children: every grace
      they hold is cancelled at once and every later one starts cancelled.

Theory of operation:
    Each child's task carries a :class:`ChildContext` in a context variable, set
    by the supervisor before it calls the child's ``start``. Trio copies the
    context into every task the child spawns, so a grace entered anywhere inside
    the child (a port closing in a helper task) finds its child's shutdown value.
    A child supervisor's own children get their own context: the variable is set
    again in each child's task.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from nursemaid.supervisor._spec import DEFAULT_SHUTDOWN

__all__ = ["ChildContext", "current_shutdown", "shutdown_grace", "until_killed"]


class ChildContext:
    """What a supervised child's task knows about its own stopping.

    Invariant: ``shutdown`` is in seconds (0.0 for BRUTAL_KILL, ``math.inf`` for
    INFINITY). Don't modify it directly; the supervisor uses :meth:`request_stop`
    and :meth:`kill`.
    """

    __slots__ = ("_graces", "killed", "shutdown", "stop_requested_at")

    def __init__(self, shutdown: float) -> None:
        self.shutdown = shutdown
        self.stop_requested_at: float | None = None
        self.killed = False
        self._graces: set[trio.CancelScope] | None = None  # made on first use: most never use one

    def request_stop(self, now: float) -> None:
        """Start the shutdown timer (the supervisor cancels the child right after)."""
        if self.stop_requested_at is None:
            self.stop_requested_at = now

    def kill(self) -> None:
        """Cut every grace short, now and later: OTP's ``exit(Child, kill)``."""
        self.killed = True
        for scope in self._graces or ():
            scope.cancel()

    def deadline(self, now: float) -> float:
        """The deadline of a grace entered at *now*."""
        if self.killed:
            return -math.inf
        start = self.stop_requested_at if self.stop_requested_at is not None else now
        return start + self.shutdown


_current: contextvars.ContextVar[ChildContext | None] = contextvars.ContextVar(
    "nursemaid_supervised_child", default=None
)


def current_shutdown() -> float | None:
    """Return the enclosing supervised child's shutdown value, in seconds.

    Returns:
        0.0 for ``BRUTAL_KILL``, ``math.inf`` for ``INFINITY``, the number of
        seconds otherwise; ``None`` when the caller is not running inside a
        supervised child (the task, or one it spawned, started by a supervisor).
    """
    context = _current.get()
    return None if context is None else context.shutdown


@contextmanager
def shutdown_grace(*, default: float = DEFAULT_SHUTDOWN) -> Iterator[trio.CancelScope]:
    """Give a stopping child time to clean up: a shielded scope with a deadline.

    Example::

        async def child(*, task_status=trio.TASK_STATUS_IGNORED):
            conn = await connect()
            task_status.started(conn)
            try:
                await trio.sleep_forever()
            finally:
                with shutdown_grace():
                    await conn.say_goodbye()  # bounded by the child's shutdown

    The supervisor's cancellation does not reach inside the block; the deadline
    does. Inside a supervised child the deadline is the child's ``shutdown``
    counted from when its supervisor asked it to stop (or from now, if nobody
    did): ``BRUTAL_KILL`` gives no time at all (the first checkpoint inside raises
    ``Cancelled``), a number gives that many seconds, ``INFINITY`` is unbounded.
    When the deadline passes, the awaits inside raise ``Cancelled`` as usual and
    the scope absorbs it; check ``scope.cancelled_caught`` to know.

    Args:
        default: the grace in seconds when not running inside a supervised child
            (5.0 unless given: the same as a child spec's default shutdown).

    Yields:
        The shielded :class:`trio.CancelScope`.
    """
    now = trio.current_time()
    context = _current.get()
    deadline = now + default if context is None else context.deadline(now)
    with _killable(context, trio.CancelScope(shield=True, deadline=deadline)) as scope:
        yield scope


@contextmanager
def until_killed() -> Iterator[trio.CancelScope]:
    """A shielded scope with no deadline that the supervisor's *kill* cancels.

    For clean-up that keeps its own clock (a port's close sequence gives each of
    its steps the child's shutdown in full: :func:`shutdown_grace` would share
    one budget between them) but must still stop at once when the child's
    supervisor, out of time itself, kills the children it has left. If that has
    happened already, the scope starts cancelled. Outside a supervised child
    nothing kills it.
    """
    context = _current.get()
    scope = trio.CancelScope(shield=True)
    if context is not None and context.killed:
        scope.cancel()
    with _killable(context, scope):
        yield scope


@contextmanager
def _killable(context: ChildContext | None, scope: trio.CancelScope) -> Iterator[trio.CancelScope]:
    """Enter *scope*, registered with *context* so that its :meth:`ChildContext.kill`
    cancels it while it is open."""
    if context is None:
        with scope:
            yield scope
        return
    if context._graces is None:
        context._graces = set()
    context._graces.add(scope)
    try:
        with scope:
            yield scope
    finally:
        context._graces.discard(scope)
