"""The pool's decisions, without I/O: who gets which worker, when to start or stop one.

Rules:
    * No ``await``, no clock, no tasks here. Every method that needs the time takes
      ``now``; every effect (wake a waiter, start a worker, stop one, give up) is a
      call on the :class:`PoolEffects` object the Trio shell passes in. Unit tests
      pass a recorder instead and check the decisions exhaustively.
    * Every change of a worker's state goes through its
      :class:`~nursemaid.workers._lifecycle.WorkerLifecycle` (the one table).
    * Invariant (*capacity*): the workers that are starting, handshaking, idle,
      checking, leased or returning number at most ``size``. Stopping workers do not count:
      their close sequence runs in their own task, and a slow termination must not
      hold back a client.
    * Invariant (*no idle worker while a compatible waiter waits*): whenever a
      worker becomes idle, or a waiter becomes compatible with an idle worker, it
      is handed over in the same synchronous step. So a new client may take an idle
      worker at once without overtaking anybody: nobody queued could have taken it.
    * Waiters are served first come, first served among those that can take the
      worker at hand (a waiter with session affinity can only take its worker).
    * A hand-off is one synchronous step: the waiter leaves the queue, the worker
      becomes ``LEASED`` and the shell reschedules the waiting task, together. A
      waiter that is cancelled leaves the queue at once (:meth:`PoolCore.cancel`),
      so a worker is never handed to a waiter that is no longer waiting.

Theory of operation:
    Idle workers are kept in a stack (last in, first out): the most recently used
    worker is reused first, which keeps few workers hot and lets ``idle_timeout``
    retire the ones nobody needed. Waiters are kept in an ordered dict, so
    cancelling one is O(1) and serving the first is O(1).

    Workers that fail on their own (a crash, a failed handshake) count against a
    restart window (the supervisor's pure :class:`RestartWindow`) and, for failed
    starts, against a count of consecutive start failures: exceeding either means
    the worker program cannot be kept running, and the pool gives up with
    :class:`~nursemaid.StartError` instead of looping. Removals the pool decides
    itself (a lease that ended badly, recycling, the health check) are replaced
    but do not count as failures — except a worker that ``handle_checkout``
    refused: the client at once asks for another, so a hook that refuses every
    worker would otherwise spin through workers for ever; counting those
    removals makes it end in :class:`~nursemaid.StartError` like a program that
    cannot start. Replacements after a failed start are delayed by an
    exponential backoff.

    A client with a new session (no worker yet) takes the idle worker that
    serves the fewest sessions (:func:`least_bound`), so independent sessions
    spread over the workers instead of queueing behind one; clients without a
    session take the most recently used one.
"""

from __future__ import annotations

import enum
import math
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Final, Protocol

import attrs

from nursemaid import _lazy
from nursemaid._errors import InternalError, StartError, WorkerError, format_stderr_tail
from nursemaid.supervisor._intensity import RestartWindow
from nursemaid.workers._lifecycle import (
    Subscriber,
    WorkerEvent,
    WorkerLifecycle,
    WorkerState,
    notify,
)

__all__ = [
    "LIVE_STATES",
    "PoolCore",
    "PoolEffects",
    "PoolPhase",
    "SessionMoved",
    "Waiter",
    "WorkerSlot",
    "bare_message",
    "least_bound",
]

_S = WorkerState
_E = WorkerEvent

LIVE_STATES: Final = frozenset(
    {_S.STARTING, _S.HANDSHAKING, _S.IDLE, _S.CHECKING, _S.LEASED, _S.RETURNING}
)
"""The states that count against the pool's ``size``."""


class PoolPhase(enum.Enum):
    """Where the pool as a whole is in its life."""

    OPENING = "opening"
    """Starting its workers; an eager pool waits here for ``min_ready`` of them."""
    OPEN = "open"
    """Serving checkouts."""
    CLOSING = "closing"
    """Refusing checkouts, waiting for leases to end, stopping workers."""
    CLOSED = "closed"
    """Every worker is gone."""


@attrs.frozen
class SessionMoved:
    """A session's worker died, so the session now runs on another worker.

    Delivered to the pool's subscribers beside the workers'
    :class:`~nursemaid.workers._lifecycle.Transition` events. Whatever state the
    session had in the old worker is gone.

    Attributes:
        session: the session id.
        from_worker: the id of the worker that died (or was removed).
        to_worker: the id of the worker that serves the session from now on.
        time: the Trio clock's time of the move.
    """

    session: Hashable
    from_worker: int
    to_worker: int
    time: float


class WorkerSlot:
    """One worker as the pool sees it: its lifecycle plus the pool's bookkeeping.

    ``resource`` is what the worker factory produced (a :class:`Port` for argv
    workers). ``home``, ``scope``, ``handoff``, ``request_then_yield``, ``owes_turn``
    and ``owe_turn`` belong to the shell (the worker's own task, the cancel scope
    that stops it, the function that moves the port's ownership, the port's
    request that leaves its schedule point to the caller, and the port's turn
    rule: see ``Pool.execute``; ``handoff`` and the last two are ``None`` for
    workers other than ports, ``request_then_yield`` also for workers other than
    ports and in-process ones).
    """

    __slots__ = (
        "checked_out_at",
        "handoff",
        "home",
        "id",
        "idle_below",
        "idle_place",
        "idle_since",
        "life",
        "moved",
        "owe_turn",
        "owes_turn",
        "request_then_yield",
        "resource",
        "scope",
        "uses",
    )

    def __init__(self, worker_id: int, subscribers: list[Subscriber]) -> None:
        self.id = worker_id
        self.life = WorkerLifecycle(worker_id, subscribers=subscribers)
        self.resource: Any = None
        self.uses = 0
        self.idle_since = 0.0
        # Where it stood in the idle stack before the health check took it.
        self.idle_place = 0
        self.idle_below: WorkerSlot | None = None
        self.checked_out_at = 0.0
        self.home: Any = None
        self.scope: Any = None
        self.handoff: Any = None
        self.request_then_yield: Any = None
        self.owes_turn: Any = None
        self.owe_turn: Any = None
        # The session bound at this checkout and its worker before, held back
        # until handle_checkout's verdict (PoolCore.confirm_moves).
        self.moved: tuple[Hashable, int | None] | None = None

    @property
    def state(self) -> WorkerState:
        """The worker's lifecycle state (read only; change it through the core)."""
        return self.life.state

    def __repr__(self) -> str:
        return f"<worker {self.id} {self.life.state.name}>"


class Waiter:
    """A client waiting for a worker. The shell keeps its task in ``task``.

    ``bound`` is the id of the only worker this waiter can take (session affinity),
    or ``None`` for any worker. ``slot`` is set when the waiter is served.
    ``expires`` is when :meth:`PoolCore.expire` times it out: the pool's
    ``checkout_timeout`` after it queued, or ``math.inf`` when the shell keeps the
    waiter's deadline itself (a checkout with its own ``timeout``) or there is none.
    """

    __slots__ = ("bound", "enqueued_at", "expires", "session", "slot", "task")

    def __init__(self, session: Hashable | None, task: Any = None) -> None:
        self.session = session
        self.task = task
        self.bound: int | None = None
        self.slot: WorkerSlot | None = None
        self.enqueued_at = 0.0
        self.expires = math.inf

    def __repr__(self) -> str:
        return f"<waiter session={self.session!r} bound={self.bound!r}>"


def least_bound(idle: list[WorkerSlot], bound: dict[int, int]) -> WorkerSlot:
    """The idle worker a new session, or a client without one, should take: the
    one with fewest sessions.

    *idle* is the idle stack (most recently used last); *bound* counts the
    sessions bound to each worker id. Among equals the most recently used wins.
    *idle* must not be empty.
    """
    best = idle[-1]
    fewest = bound.get(best.id, 0)
    for slot in reversed(idle):
        count = bound.get(slot.id, 0)
        if count < fewest:
            best, fewest = slot, count
    return best


def bare_message(error: WorkerError) -> str:
    """*error*'s message without the return code and stderr tail its class appended.

    A :class:`~nursemaid.WorkerError`'s message ends with its evidence (see
    :func:`~nursemaid._errors.format_stderr_tail`); an error built from another's
    message must take the bare part, or the evidence shows twice.
    """
    text = str(error.args[0]) if error.args else ""
    suffix = format_stderr_tail("", error.stderr_tail, error.returncode)
    return text[: -len(suffix)] if suffix and text.endswith(suffix) else text


class PoolEffects(Protocol):
    """What the core asks its shell to do. Each call must not block or await."""

    def grant(self, waiter: Waiter, slot: WorkerSlot) -> None:
        """Wake *waiter*: it now holds *slot* (already ``LEASED``)."""

    def spawn(self, slot: WorkerSlot, delay: float) -> None:
        """Start a task that creates *slot*'s worker after *delay* seconds."""

    def stop(self, slot: WorkerSlot) -> None:
        """Make *slot*'s task run its close sequence (it is ``STOPPING`` now)."""

    def reject(self, waiter: Waiter) -> None:
        """Wake *waiter* with the shell's ``PoolClosed`` (closing, or given up)."""

    def time_out(self, waiter: Waiter) -> None:
        """Wake *waiter* with the shell's ``CheckoutTimeout``: its ``expires`` came."""

    def give_up(self, error: StartError) -> None:
        """The worker program cannot be kept running: close the pool with *error*."""


@attrs.frozen
class Backoff:
    """Exponential backoff before replacing a worker whose start failed.

    The *n*-th consecutive failure waits ``min(first * 2 ** (n - 1), maximum)``.
    """

    first: float = 0.05
    maximum: float = 2.0

    def delay(self, failures_in_a_row: int) -> float:
        if failures_in_a_row <= 0:
            return 0.0
        return float(min(self.first * 2 ** (failures_in_a_row - 1), self.maximum))


class PoolCore:
    """The pool's state and decisions. Read the module docstring for the rules.

    Args:
        size: the most workers alive at once (>= 1).
        effects: the shell.
        lazy: start workers only when a client needs one.
        max_uses: stop a worker after this many leases (``None``: never).
        intensity, period: the restart window for workers that fail on their own;
            ``intensity`` also bounds consecutive failed starts.
        backoff: delays before replacing a worker whose start failed.
        subscribers: the pool's subscriber list, shared with every worker.
        first_id: the first worker id (a pool run again continues its numbering,
            so ids stay unique in the pool's life).
        confirm_moves: hold each :class:`SessionMoved` back until the shell calls
            :meth:`confirm_session` (a ``handle_checkout`` hook kept the worker)
            or :meth:`refuse_session` (it refused it: the session never ran there).
    """

    def __init__(
        self,
        size: int,
        effects: PoolEffects,
        *,
        lazy: bool = False,
        max_uses: int | None = None,
        intensity: int = 3,
        period: float = 5.0,
        backoff: Backoff = Backoff(),
        subscribers: list[Subscriber] | None = None,
        first_id: int = 0,
        confirm_moves: bool = False,
    ) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"pool size must be an int >= 1 (got {size!r})")
        if max_uses is not None and (
            isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1
        ):
            raise ValueError(f"max_uses must be None or an int >= 1 (got {max_uses!r})")
        self.size = size
        self.lazy = lazy
        self.confirm_moves = confirm_moves
        self.max_uses = max_uses
        self.effects = effects
        self.backoff = backoff
        self.subscribers: list[Subscriber] = subscribers if subscribers is not None else []
        self.window = RestartWindow(intensity, period)
        self.phase = PoolPhase.OPENING
        # Invariant: `workers` holds every slot whose task has not finished (live
        # and stopping ones); a slot leaves it when it reaches a terminal state.
        self.workers: dict[int, WorkerSlot] = {}
        self.idle: list[WorkerSlot] = []  # a stack: last in, first out
        self.waiters: OrderedDict[Waiter, None] = OrderedDict()
        # The waiters with a finite `expires`, in queue order, which is also the
        # order of their `expires` (see enqueue): expire() looks at these only.
        self.timed: dict[Waiter, None] = {}
        self.sessions: dict[Hashable, int] = {}
        # Invariant: bound[wid] == number of sessions whose value in `sessions` is wid,
        # for every live worker wid (a worker's entry goes when it leaves the pool).
        self.bound: dict[int, int] = {}
        self.active = 0  # slots in LIVE_STATES; Invariant: active <= size
        self.starting = 0  # slots in STARTING or HANDSHAKING
        self.checking = 0  # slots in CHECKING
        self.ready_once = 0  # handshakes that ever succeeded
        # Of those, workers that then died or were removed for their own fault (not
        # the pool's own removals: a recycled worker's replacement starts at once).
        # An eager pool opens on ready_once - ready_lost: a count "ready at this
        # instant" may never come true while clients recycle workers as it opens.
        self.ready_lost = 0
        self.restarts = 0
        self.start_failures_in_a_row = 0
        self._next_id = first_id
        # figures for statistics()
        self.checkouts = 0
        self.wait_count = 0
        self.wait_total = 0.0
        self.wait_max = 0.0
        self.lease_total = 0.0
        self.lease_max = 0.0

    # -- opening and spawning ------------------------------------------------

    def open(self, now: float) -> None:
        """Start the initial workers (all of them, unless the pool is lazy)."""
        if self.phase is not PoolPhase.OPENING:
            raise InternalError(f"pool opened twice (phase {self.phase.name})")
        if not self.lazy:
            for _ in range(self.size):
                self._spawn(0.0)

    @property
    def next_id(self) -> int:
        """The id the next worker will get."""
        return self._next_id

    def mark_open(self) -> None:
        """The shell saw enough workers ready: serve clients from now on."""
        if self.phase is PoolPhase.OPENING:
            self.phase = PoolPhase.OPEN

    def _spawn(self, delay: float) -> WorkerSlot:
        slot = WorkerSlot(self._next_id, self.subscribers)
        self._next_id += 1
        self.workers[slot.id] = slot
        self.active += 1
        self.starting += 1
        self.effects.spawn(slot, delay)
        return slot

    def _replenish(self, delay: float = 0.0) -> None:
        """Start as many workers as the policy wants now (never past ``size``)."""
        if self.phase is PoolPhase.CLOSING or self.phase is PoolPhase.CLOSED:
            return
        if self.lazy:
            wanted = min(self.size - self.active, self._demand() - self.starting)
        else:
            wanted = self.size - self.active
        for _ in range(wanted):
            self._spawn(delay)

    def _demand(self) -> int:
        """How many workers the queue needs: one per waiter that may take any worker,
        and one per new session however many of its clients queued (they will all
        wait for the first worker the session gets: a session runs on one worker).
        """
        demand = 0
        sessions: set[Hashable] = set()
        for waiter in self.waiters:
            if waiter.bound is not None:
                continue
            session = waiter.session
            if session is None:
                demand += 1
            elif session not in sessions:
                sessions.add(session)
                demand += 1
        return demand

    # -- worker start-up, reported by the worker's task -----------------------

    def spawned(self, slot: WorkerSlot, now: float) -> bool:
        """The worker exists; its handshake begins. False: it was stopped meanwhile."""
        if slot.life.state is not _S.STARTING:
            return False
        slot.life.fire(_E.SPAWNED, now=now)
        return True

    def ready(self, slot: WorkerSlot, now: float) -> bool:
        """The handshake succeeded: hand the worker out or make it idle.

        Returns False if the worker was stopped meanwhile (the pool is closing).
        """
        if slot.life.state is not _S.HANDSHAKING:
            return False
        slot.life.fire(_E.READY, now=now)
        self.starting -= 1
        self.ready_once += 1
        self.start_failures_in_a_row = 0
        # Fresh: the least recently used of all, so the bottom of the idle stack.
        # On top it would take the next client from the hot worker, which then
        # ages out under idle_timeout though a client used it moments ago.
        self._make_idle(slot, now, fresh=True)
        return True

    def init_failed(self, slot: WorkerSlot, cause: str, error: StartError, now: float) -> None:
        """Spawning or the handshake failed: discard, count, and replace (with backoff)."""
        if slot.life.state not in (_S.STARTING, _S.HANDSHAKING):
            return  # stopped meanwhile: the pool is closing
        slot.life.fire(_E.INIT_FAILED, now=now, cause=cause)
        self._forget(slot, _S.STARTING)
        self.start_failures_in_a_row += 1
        if self._count_failure(now, error):
            return
        self.restarts += 1
        self._replenish(self.backoff.delay(self.start_failures_in_a_row))

    def crashed(self, slot: WorkerSlot, cause: str, error: StartError, now: float) -> None:
        """The worker died on its own (in any live state). Replace it.

        *error* describes the death (with the stderr tail) in case it is the one
        that makes the pool give up.
        """
        state = slot.life.state
        if state not in LIVE_STATES:
            return  # already stopping or gone: nothing new
        slot.life.fire(_E.CRASH, now=now, cause=cause)
        if state is not _S.STARTING and state is not _S.HANDSHAKING:
            self.ready_lost += 1
        self._forget(slot, state)
        if self._count_failure(now, error):
            return
        self.restarts += 1
        self._unbind(slot, now)
        self._replenish()

    def exited(self, slot: WorkerSlot, now: float, cause: str = "") -> None:
        """The worker's task ended: its close sequence finished, it was reaped.

        A worker still live here had its task cancelled from outside (the pool's
        own scope was cancelled): it is stopped first, without replacement.
        """
        if slot.life.state in LIVE_STATES:
            self.remove(slot, "its task was cancelled", now, replace=False)
        if slot.life.state is _S.STOPPING:
            slot.life.fire(_E.EXIT, now=now, cause=cause)
        self.workers.pop(slot.id, None)

    # -- checkout ------------------------------------------------------------

    def checkout_nowait(self, session: Hashable | None, now: float) -> WorkerSlot | None:
        """Take an idle worker this client may use, or return None (then enqueue).

        The shell checks the pool's phase first.
        """
        idle = self.idle
        if session is None:
            if idle:
                if self.bound:
                    # Sessions are in use: leave their workers to them if another is
                    # idle (else the session's next request waits while others idle).
                    slot = least_bound(idle, self.bound)
                    idle.remove(slot)
                else:
                    slot = idle.pop()
                self._lease(slot, now)
                return slot
            return None
        wid = self.sessions.get(session)
        if wid is not None:
            owner = self.workers.get(wid)
            if owner is not None and owner.life.state in LIVE_STATES:
                if owner.life.state is _S.IDLE:
                    idle.remove(owner)
                    self._lease(owner, now)
                    return owner
                return None  # wait for the session's own worker
        if idle:
            slot = least_bound(idle, self.bound)
            idle.remove(slot)
            self._lease(slot, now)
            self._bind_session(session, slot, wid, now)
            return slot
        return None

    def enqueue(self, waiter: Waiter, now: float, expires: float = math.inf) -> None:
        """Queue *waiter* (after :meth:`checkout_nowait` found nothing).

        *expires*: when :meth:`expire` times it out (``math.inf``: never). Every
        finite one must be the same span after its ``now`` (the pool's
        ``checkout_timeout``), so that they grow in queue order: :meth:`expire`
        relies on it.
        """
        waiter.enqueued_at = now
        waiter.expires = expires
        if expires != math.inf:
            self.timed[waiter] = None
        session = waiter.session
        if session is not None:
            wid = self.sessions.get(session)
            if wid is not None:
                owner = self.workers.get(wid)
                if owner is not None and owner.life.state in LIVE_STATES:
                    waiter.bound = wid
        self.waiters[waiter] = None
        if self.lazy and waiter.bound is None:
            self._replenish()

    def cancel(self, waiter: Waiter) -> None:
        """*waiter* stopped waiting (cancelled or timed out): it leaves the queue now."""
        self.waiters.pop(waiter, None)
        self.timed.pop(waiter, None)
        # A lazy pool may have started a worker for this waiter: it becomes idle
        # (or serves the next waiter) when ready. That is wanted: never kill a
        # half-started worker just because one client gave up.

    def expire(self, now: float) -> float:
        """Time out the waiters whose ``expires`` has come (out of the queue, then
        :meth:`PoolEffects.time_out`); return the next ``expires`` still queued
        (``math.inf``: none).

        Finite ``expires`` grow in queue order (see :meth:`enqueue`), so this
        looks at the expired waiters and one more, whatever else is queued.
        """
        timed = self.timed
        expired = []
        for waiter in timed:
            if waiter.expires > now:
                break
            expired.append(waiter)
        for waiter in expired:
            del timed[waiter]
            del self.waiters[waiter]
            self.effects.time_out(waiter)
        for waiter in timed:
            return waiter.expires
        return math.inf

    # -- the health check ----------------------------------------------------

    def begin_check(self, slot: WorkerSlot, now: float) -> bool:
        """The health check takes this idle worker: IDLE → CHECKING. False if it is
        not idle (any more).

        Not a client's lease: its ``uses``, the pool's ``checkouts`` and lease
        times stay as they were, and so do its place in the idle stack and its
        idle time (``idle_timeout`` still counts from its last client) when it
        passes (:meth:`end_check`).
        """
        if slot.life.state is not _S.IDLE:
            return False
        place = self.idle.index(slot)
        slot.idle_place = place
        slot.idle_below = self.idle[place - 1] if place else None
        del self.idle[place]
        slot.life.fire(_E.CHECK, now=now)
        self.checking += 1
        return True

    def end_check(
        self,
        slot: WorkerSlot,
        failure: str | None,
        now: float,
        *,
        replace: bool = True,
        error: StartError | None = None,
    ) -> None:
        """The health check's ping ended: CHECKING → IDLE if it was answered in time
        (*failure* ``None``), else stop the worker and, if *replace*, replace it (not
        counted as a failure — the pool decided — unless *error* says the worker
        was at fault, as for :meth:`remove`). Nothing if it crashed or was
        stopped meanwhile.
        """
        if slot.life.state is not _S.CHECKING:
            return
        if failure is None and self.phase is PoolPhase.CLOSING:
            failure = "the pool is closing"
        if failure is not None:
            self.remove(slot, failure, now, replace=replace, failure=error)
            return
        slot.life.fire(_E.READY, now=now)
        self.checking -= 1
        if self.timed:
            self.expire(now)  # as in _make_idle: the deadline wins a tie
        for waiter in self.waiters:
            if waiter.bound is None or waiter.bound == slot.id:
                self._serve(waiter, slot, now)
                return
        # Back where it was, with its idle time as before: the check is not a use.
        # Positions shift meanwhile (a fresh worker goes in at the bottom, a session
        # takes one from the middle): go back just above the worker that was below.
        below, slot.idle_below = slot.idle_below, None
        if below is None:
            self.idle.insert(0, slot)
        elif below in self.idle:
            self.idle.insert(self.idle.index(below) + 1, slot)
        else:
            self.idle.insert(min(slot.idle_place, len(self.idle)), slot)

    def _lease(self, slot: WorkerSlot, now: float) -> None:
        slot.life.fire(_E.CHECKOUT, now=now)
        slot.moved = None
        slot.uses += 1
        slot.checked_out_at = now
        self.checkouts += 1

    def _bind_session(
        self, session: Hashable, slot: WorkerSlot, old: int | None, now: float
    ) -> None:
        self.sessions[session] = slot.id
        # The session's other clients, queued while it had no live worker, wait
        # for this one now: a session runs on one worker at a time, and moves
        # only when that worker is gone (not because two of its clients queued).
        for waiter in self.waiters:
            if waiter.bound is None and waiter.session is not None and waiter.session == session:
                waiter.bound = slot.id
        bound = self.bound
        bound[slot.id] = bound.get(slot.id, 0) + 1
        if old is not None:
            left = bound.get(old, 0) - 1
            if left > 0:
                bound[old] = left
            else:
                bound.pop(old, None)
        if self.confirm_moves:
            slot.moved = (session, old)  # the hook's verdict decides (confirm_session)
        elif old is not None and old != slot.id and self.subscribers:
            notify(self.subscribers, SessionMoved(session, old, slot.id, now))

    def end_session(self, session: Hashable) -> None:
        """Forget *session*: its next checkout is a new session's (no
        :class:`SessionMoved`). Clients of it already queued for its worker keep
        waiting for that worker. Nothing happens for a session not known."""
        wid = self.sessions.pop(session, None)
        if wid is None:
            return
        left = self.bound.get(wid, 0) - 1
        if left > 0:
            self.bound[wid] = left
        else:
            self.bound.pop(wid, None)

    def confirm_session(self, slot: WorkerSlot, now: float) -> None:
        """``handle_checkout`` kept *slot* (or ran on it and failed): the session
        bound at this checkout ran there, so say if it moved."""
        moved, slot.moved = slot.moved, None
        if moved is not None:
            session, old = moved
            if old is not None and old != slot.id and self.subscribers:
                notify(self.subscribers, SessionMoved(session, old, slot.id, now))

    def refuse_session(self, slot: WorkerSlot) -> None:
        """``handle_checkout`` refused *slot*: undo binding its session to it, which
        never ran there, so no :class:`SessionMoved` names it."""
        moved, slot.moved = slot.moved, None
        if moved is None:
            return
        session, old = moved
        if self.sessions.get(session) != slot.id:
            return
        left = self.bound.get(slot.id, 0) - 1
        if left > 0:
            self.bound[slot.id] = left
        else:
            self.bound.pop(slot.id, None)
        # Back to what it was bound to: nothing, a worker that is gone (a session
        # moves only then), or a live one (after end_session, a client queued for
        # the old worker may bring it back): only the last is counted in `bound`.
        if old is None:
            del self.sessions[session]
        else:
            self.sessions[session] = old
            if self._live_worker_of(session) == old:
                self.bound[old] = self.bound.get(old, 0) + 1

    def _serve(self, waiter: Waiter, slot: WorkerSlot, now: float) -> None:
        del self.waiters[waiter]
        if waiter.expires != math.inf:
            del self.timed[waiter]
        self._lease(slot, now)
        waited = now - waiter.enqueued_at
        self.wait_count += 1
        self.wait_total += waited
        if waited > self.wait_max:
            self.wait_max = waited
        if waiter.session is not None and waiter.bound is None:
            self._bind_session(waiter.session, slot, self.sessions.get(waiter.session), now)
        waiter.slot = slot
        self.effects.grant(waiter, slot)

    def _make_idle(self, slot: WorkerSlot, now: float, *, fresh: bool = False) -> None:
        """Hand *slot* (just became IDLE) to the first compatible waiter, or keep it.

        A waiter whose ``expires`` has come is timed out first, not served: at a
        tie the deadline wins, as it does for a cancel scope (Trio expires
        deadlines before it runs any task), so the outcome never depends on
        whether the timer task or the task freeing the worker runs first.
        """
        if self.timed:
            self.expire(now)
        for waiter in self.waiters:
            if waiter.bound is None or waiter.bound == slot.id:
                self._serve(waiter, slot, now)
                return
        slot.idle_since = now
        if fresh:
            self.idle.insert(0, slot)
        else:
            self.idle.append(slot)

    def _unbind(self, slot: WorkerSlot, now: float) -> None:
        """*slot* is gone: waiters bound to it join their session's live worker if it
        has one (after end_session it may), else may take any worker now."""
        released = False
        for waiter in self.waiters:
            if waiter.bound == slot.id:
                # Its session may live on another worker now (end_session, then a
                # new client of it): join that one, never move the session off it.
                waiter.bound = self._live_worker_of(waiter.session)
                released = released or waiter.bound is None
        if released:
            self._dispatch(now)

    def _live_worker_of(self, session: Hashable | None) -> int | None:
        """The id of *session*'s worker if it is live, else ``None``."""
        if session is None:
            return None
        wid = self.sessions.get(session)
        if wid is None:
            return None
        owner = self.workers.get(wid)
        return wid if owner is not None and owner.life.state in LIVE_STATES else None

    def _dispatch(self, now: float) -> None:
        """Restore the hand-over invariant after waiters became less picky."""
        if self.timed:
            self.expire(now)  # as in _make_idle: the deadline wins a tie
        for slot in list(self.idle):
            for waiter in self.waiters:
                if waiter.bound is None or waiter.bound == slot.id:
                    self.idle.remove(slot)
                    self._serve(waiter, slot, now)
                    break

    # -- checkin -------------------------------------------------------------

    def begin_checkin(self, slot: WorkerSlot, now: float) -> bool:
        """The lease ended: LEASED → RETURNING. False if the worker is gone already."""
        # Called once per lease, when the client's block ends: the lease time
        # counts even if the worker died or was stopped during the lease.
        held = now - slot.checked_out_at
        self.lease_total += held
        if held > self.lease_max:
            self.lease_max = held
        if slot.life.state is not _S.LEASED:
            return False
        slot.life.fire(_E.CHECKIN, now=now)
        return True

    def finish_checkin(
        self,
        slot: WorkerSlot,
        remove: str | None,
        now: float,
        *,
        failure: StartError | None = None,
    ) -> None:
        """Decide a RETURNING worker's fate: idle (``remove=None``) or stopped and replaced.

        *failure*: the removal counts against the restart window, as a crash does
        (see :meth:`remove`).
        """
        if slot.life.state is not _S.RETURNING:
            return  # it crashed while the checkin hook ran: already handled
        if remove is None and self.phase is PoolPhase.CLOSING:
            remove = "the pool is closing"
        if remove is None and self.max_uses is not None and slot.uses >= self.max_uses:
            remove = f"recycled after max_uses={self.max_uses} leases"
        if remove is None:
            slot.life.fire(_E.ACCEPT, now=now)
            self._make_idle(slot, now)
            return
        self.remove(slot, remove, now, failure=failure)

    def remove(
        self,
        slot: WorkerSlot,
        cause: str,
        now: float,
        *,
        replace: bool = True,
        failure: StartError | None = None,
    ) -> None:
        """Stop a live worker on the pool's own decision, and replace it if wanted.

        With *failure* (a worker ``handle_checkout`` refused) the removal also
        counts against the restart window; *failure* is the error the pool gives
        up with if that makes too many.
        """
        state = slot.life.state
        if state not in LIVE_STATES:
            return
        slot.life.fire(_E.STOP, now=now, cause=cause)
        self._forget(slot, state)
        self.effects.stop(slot)
        self._unbind(slot, now)
        if failure is not None and state is not _S.STARTING and state is not _S.HANDSHAKING:
            self.ready_lost += 1  # ready once, then removed for its own fault
        if failure is not None and self._count_failure(now, failure):
            return
        if replace and self.phase is not PoolPhase.CLOSING:
            self.restarts += 1
            self._replenish()

    def retire_idle(self, slot: WorkerSlot, cause: str, now: float) -> None:
        """Stop an idle worker that sat unused too long; an eager pool replaces it."""
        if slot.life.state is _S.IDLE:
            self.remove(slot, cause, now, replace=not self.lazy)

    def _forget(self, slot: WorkerSlot, was: WorkerState) -> None:
        """*slot* left the live state *was*: out of the counts (and the idle stack)."""
        self.active -= 1
        self.bound.pop(slot.id, None)  # no session is served by it any more
        if was is _S.IDLE:
            self.idle.remove(slot)
        elif was is _S.CHECKING:
            self.checking -= 1
        elif was is _S.STARTING or was is _S.HANDSHAKING:
            self.starting -= 1
        if slot.life.terminal:
            self.workers.pop(slot.id, None)

    def _count_failure(self, now: float, error: StartError) -> bool:
        """Record a failure; True (and give up) if the program cannot be kept running."""
        self.window = self.window.add(now)
        too_many_starts = self.start_failures_in_a_row > self.window.intensity
        if self.window.exceeded or too_many_starts:
            if too_many_starts:
                why = (
                    f"{self.start_failures_in_a_row} worker starts failed in a row "
                    f"(more than intensity={self.window.intensity})"
                )
            else:
                why = (
                    f"{len(self.window.restarts)} worker failures within "
                    f"{self.window.period} s (more than intensity={self.window.intensity})"
                )
            final = StartError(
                f"pool gave up: {why}; last failure: {bare_message(error)}",
                reason=error,
                returncode=error.returncode,
                stderr_tail=error.stderr_tail,
                pid=error.pid,
            )
            final.__cause__ = error
            # give_up first: the shell must know why before close() rejects waiters.
            self.effects.give_up(final)
            self.close(now)
            return True
        return False

    # -- closing -------------------------------------------------------------

    def close(self, now: float) -> None:
        """Refuse new checkouts, reject the waiters, stop idle and starting workers.

        Leased workers are left to their clients; they are stopped at checkin
        (:meth:`finish_checkin`), or by :meth:`stop_leased` after the grace.
        """
        if self.phase is PoolPhase.CLOSING or self.phase is PoolPhase.CLOSED:
            return
        self.phase = PoolPhase.CLOSING
        self.timed.clear()
        while self.waiters:
            waiter, _ = self.waiters.popitem(last=False)
            self.effects.reject(waiter)
        for slot in list(self.workers.values()):
            if slot.life.state is not _S.LEASED and slot.life.state is not _S.RETURNING:
                # CHECKING ones too: the health check has stopped with the drain.
                self.remove(slot, "the pool is closing", now, replace=False)

    def stop_leased(self, now: float) -> None:
        """After the close grace: stop the workers still leased (their clients lose them)."""
        for slot in list(self.workers.values()):
            if slot.life.state in (_S.LEASED, _S.RETURNING):
                self.remove(slot, "the pool closed while it was leased", now, replace=False)

    @property
    def leased(self) -> int:
        """Workers LEASED or RETURNING."""
        return self.active - self.starting - self.checking - len(self.idle)


_lazy.show_public_module(globals(), "nursemaid.workers")
