"""The worker lifecycle: one state machine, written down as one table.

Rules:
    * A pool worker is always in exactly one :class:`WorkerState`. It changes state
      only through :meth:`WorkerLifecycle.fire`, which looks the pair
      ``(state, event)`` up in :data:`TRANSITIONS`. Looking it up *is* the legality
      check: a missing pair raises :class:`~nursemaid.LifecycleError` naming both,
      and the state is left unchanged.
    * Every successful change is a :class:`Transition` (worker id, from, to, the
      event, a human-readable cause, and the Trio clock's time), delivered
      synchronously to every subscriber, in subscription order, *after* the state
      has changed.
    * ``STOPPED`` and ``FAILED`` are terminal: their rows are empty. A worker never
      comes back; the pool starts a new one with a new id instead.
    * Nothing here reads a clock or awaits: the caller passes ``now`` in. The Trio
      shell (:mod:`nursemaid.workers._pool`) owns time and tasks.

Theory of operation:
    A worker is born ``STARTING`` (its process, or in-process resource, is being
    created). Once it exists the pool sends the envelope's ping (``HANDSHAKING``);
    only a worker that answered within ``init_timeout`` becomes ``IDLE`` and can be
    handed out. The periodic health check takes an idle worker to ``CHECKING``
    while it sends the same ping, and puts it back to ``IDLE`` when the answer
    comes in time (``READY`` again): that is the pool's own use of the worker,
    not a client's lease. A checkout makes it ``LEASED``; the end of the client's block makes
    it ``RETURNING`` while the checkin decision runs (with the user's
    ``handle_checkin`` hook, which may still use the lease to talk to the worker),
    and that decision either puts it back to ``IDLE`` or stops it.
    ``STOPPING`` means the pool asked it to exit and its close sequence (close
    stdin, grace, SIGTERM, grace, SIGKILL, reap) is running *in the worker's own
    task*, off every client's path; ``STOPPED`` means it was reaped. ``FAILED``
    means it died or never came up, on its own: a crash, a failed or timed-out
    handshake, a failed spawn.

    The diagram in ``docs/_generated/`` is drawn by :func:`lifecycle_diagram` from
    :data:`TRANSITIONS`; ``tests/unit/test_lifecycle.py`` fails when it is stale.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from typing import Final, Literal

import attrs

from nursemaid import _lazy
from nursemaid._errors import LifecycleError

__all__ = [
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Transition",
    "WorkerEvent",
    "WorkerLifecycle",
    "WorkerState",
    "lifecycle_diagram",
    "next_state",
]

logger = logging.getLogger("nursemaid.workers")


class WorkerState(enum.Enum):
    """Where one pool worker is in its life. Read :data:`TRANSITIONS` for the moves."""

    STARTING = "starting"
    """The process (or in-process resource) is being created."""
    HANDSHAKING = "handshaking"
    """It exists; the init ping is in flight, bounded by ``init_timeout``."""
    IDLE = "idle"
    """Ready and in the pool, waiting for a client."""
    LEASED = "leased"
    """Checked out: exactly one client task holds it (and owns its port)."""
    RETURNING = "returning"
    """The client's block ended; the checkin decision (and ``handle_checkin``, which
    may still use the lease) is running. No other client can take it."""
    CHECKING = "checking"
    """Taken from the idle workers by the pool's health check, whose ping is in
    flight (bounded by ``init_timeout``). No client can take it meanwhile."""
    STOPPING = "stopping"
    """The pool asked it to exit; its close sequence runs in its own task."""
    STOPPED = "stopped"
    """It exited after being asked to, and was reaped. Terminal."""
    FAILED = "failed"
    """It died, or never came up, on its own. Terminal."""

    # Members are singletons compared by identity, so identity hashing is correct;
    # it makes each lookup in the table (the pool's hot path does several per
    # checkout) a C call instead of Enum's Python-level hash of the member's name.
    __hash__ = object.__hash__


class WorkerEvent(enum.Enum):
    """What can happen to a worker; the second key of :data:`TRANSITIONS`."""

    SPAWNED = "spawned"
    """The process or resource now exists; the handshake begins."""
    READY = "ready"
    """The handshake ping, or a health check's ping, was answered in time."""
    INIT_FAILED = "init_failed"
    """Spawning raised, or the handshake failed or timed out."""
    CHECKOUT = "checkout"
    """Handed to a client."""
    CHECKIN = "checkin"
    """The client's lease ended, normally or not."""
    ACCEPT = "accept"
    """The checkin decision keeps the worker: back to the idle set."""
    CHECK = "check"
    """The health check takes the idle worker to ping it."""
    STOP = "stop"
    """The pool decided to stop it (removal, recycling, pool closing)."""
    CRASH = "crash"
    """It died on its own (process exited, connection lost)."""
    EXIT = "exit"
    """Its close sequence finished and it was reaped."""

    __hash__ = object.__hash__  # as WorkerState's: identity, computed in C


_S = WorkerState
_E = WorkerEvent

TRANSITIONS: Final[Mapping[WorkerState, Mapping[WorkerEvent, WorkerState]]] = {
    _S.STARTING: {_E.SPAWNED: _S.HANDSHAKING, _E.INIT_FAILED: _S.FAILED, _E.STOP: _S.STOPPING},
    _S.HANDSHAKING: {
        _E.READY: _S.IDLE,
        _E.INIT_FAILED: _S.FAILED,
        _E.CRASH: _S.FAILED,
        _E.STOP: _S.STOPPING,
    },
    _S.IDLE: {
        _E.CHECKOUT: _S.LEASED,
        _E.CHECK: _S.CHECKING,
        _E.CRASH: _S.FAILED,
        _E.STOP: _S.STOPPING,
    },
    _S.LEASED: {_E.CHECKIN: _S.RETURNING, _E.CRASH: _S.FAILED, _E.STOP: _S.STOPPING},
    _S.RETURNING: {_E.ACCEPT: _S.IDLE, _E.CRASH: _S.FAILED, _E.STOP: _S.STOPPING},
    _S.CHECKING: {_E.READY: _S.IDLE, _E.CRASH: _S.FAILED, _E.STOP: _S.STOPPING},
    _S.STOPPING: {_E.EXIT: _S.STOPPED},
    _S.STOPPED: {},
    _S.FAILED: {},
}
"""The one transition table: ``TRANSITIONS[state][event]`` is the next state.

A pair that is not in the table is illegal. Don't copy the table's logic into
``if`` statements elsewhere: ask :meth:`WorkerLifecycle.fire`, or
:func:`next_state`.
"""

TERMINAL_STATES: Final = frozenset(state for state, row in TRANSITIONS.items() if not row)
"""States with no way out: ``STOPPED`` and ``FAILED``."""

TERMINAL_STATES_IN_ORDER: Final = tuple(s for s in WorkerState if s in TERMINAL_STATES)

INITIAL_STATE: Final = WorkerState.STARTING
"""Every worker is born in this state."""


def next_state(state: WorkerState, event: WorkerEvent) -> WorkerState:
    """Return the state *event* leads to from *state*, per :data:`TRANSITIONS`.

    Raises:
        LifecycleError: the table has no such transition.
    """
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise _illegal(None, state, event) from None


def _illegal(worker_id: object, state: WorkerState, event: WorkerEvent) -> LifecycleError:
    allowed = ", ".join(e.name for e in TRANSITIONS[state]) or "none: the state is terminal"
    who = f"worker {worker_id!r}" if worker_id is not None else "a worker"
    return LifecycleError(
        f"{who} in state {state.name} cannot take event {event.name} "
        f"(allowed from {state.name}: {allowed})",
        state=state,
        event=event,
    )


@attrs.frozen
class Transition:
    """One change of one worker's state, as delivered to subscribers.

    Attributes:
        worker_id: the worker's id, unique within its pool (never reused).
        from_state: the state before.
        to_state: the state after.
        event: the event that caused it.
        cause: a human-readable reason (for failures, the error and the worker's
            last stderr lines), or ``""``.
        time: the Trio clock's :func:`trio.current_time` when it happened
            (monotonic; a ``MockClock`` in tests).
    """

    worker_id: int
    from_state: WorkerState
    to_state: WorkerState
    event: WorkerEvent
    cause: str
    time: float


Subscriber = Callable[[Transition], object]
"""A callable taking a :class:`Transition`; called synchronously, must not block."""


class WorkerLifecycle:
    """The state of one worker, changed only through the table.

    Example::

        life = WorkerLifecycle(7, subscribers=[print])
        life.fire(WorkerEvent.SPAWNED, now=0.0)      # STARTING -> HANDSHAKING
        life.fire(WorkerEvent.CHECKOUT, now=0.1)     # raises LifecycleError

    Args:
        worker_id: the worker's id, carried by every :class:`Transition`.
        subscribers: a list shared with the owner (a pool passes its own list, so
            subscribing to the pool subscribes to every worker). It is read at each
            transition, never copied.
    """

    __slots__ = ("_subscribers", "state", "worker_id")

    def __init__(self, worker_id: int, *, subscribers: list[Subscriber] | None = None) -> None:
        self.worker_id = worker_id
        self.state: WorkerState = INITIAL_STATE
        # Invariant: don't assign `state` directly; use fire().
        self._subscribers: list[Subscriber] = subscribers if subscribers is not None else []

    def __repr__(self) -> str:
        return f"<WorkerLifecycle worker {self.worker_id} {self.state.name}>"

    def fire(self, event: WorkerEvent, *, now: float, cause: str = "") -> WorkerState:
        """Apply *event*, notify the subscribers, and return the new state.

        Raises:
            LifecycleError: the table has no transition for ``(state, event)``; the
                state is unchanged and no subscriber is called.
        """
        old = self.state
        try:
            new = TRANSITIONS[old][event]
        except KeyError:
            raise _illegal(self.worker_id, old, event) from None
        self.state = new
        if self._subscribers:
            notify(self._subscribers, Transition(self.worker_id, old, new, event, cause, now))
        return new

    @property
    def terminal(self) -> bool:
        """Whether the worker is ``STOPPED`` or ``FAILED`` (gone for good)."""
        return self.state in TERMINAL_STATES


def notify(subscribers: list[Subscriber], item: object) -> None:
    """Call each subscriber with *item*; a subscriber that raises is dropped.

    This follows Trio's instruments: an observer's bug must not corrupt the state
    machine it observes (the state has already changed when subscribers run), so the
    exception is logged with its traceback and that subscriber is unsubscribed.
    """
    for subscriber in tuple(subscribers):
        try:
            subscriber(item)  # type: ignore[arg-type]
        except Exception:
            logger.exception(
                "subscriber %r raised on %r; it has been unsubscribed", subscriber, item
            )
            if subscriber in subscribers:
                subscribers.remove(subscriber)


# ---------------------------------------------------------------------------
# Diagrams, drawn from the table (never by hand)
# ---------------------------------------------------------------------------


def lifecycle_diagram(format: Literal["mermaid", "dot"] = "mermaid") -> str:
    """Return the lifecycle diagram as Mermaid or Graphviz DOT source text.

    ``python -m nursemaid diagram`` prints it; ``docs/_generated/lifecycle.mmd`` and
    ``lifecycle.dot`` are its committed output, checked by the test suite.

    Raises:
        ValueError: *format* is not ``"mermaid"`` or ``"dot"``.
    """
    if format == "mermaid":
        lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATE.name}"]
        for state, row in TRANSITIONS.items():
            for event, target in row.items():
                lines.append(f"    {state.name} --> {target.name}: {event.name}")
        for state in TERMINAL_STATES_IN_ORDER:
            lines.append(f"    {state.name} --> [*]")
        return "\n".join(lines) + "\n"
    if format == "dot":
        lines = [
            "digraph worker_lifecycle {",
            "    rankdir=LR;",
            '    node [shape=box, style=rounded, fontname="Helvetica"];',
            '    edge [fontname="Helvetica", fontsize=10];',
            "    start [shape=point];",
            f"    start -> {INITIAL_STATE.name};",
        ]
        for state in TERMINAL_STATES_IN_ORDER:
            lines.append(f"    {state.name} [peripheries=2];")
        for state, row in TRANSITIONS.items():
            for event, target in row.items():
                lines.append(f'    {state.name} -> {target.name} [label="{event.name}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"
    raise ValueError(f"diagram format must be 'mermaid' or 'dot' (got {format!r})")


_lazy.show_public_module(globals(), "nursemaid.workers")
