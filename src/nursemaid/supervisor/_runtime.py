"""The supervisor runtime: a thin Trio shell around the pure core.

Rules:
    * One nursery per supervisor run; one task and one *shielded* cancel scope
      per running child. Only the supervisor cancels a child's scope, so the
      order in which children stop is always the supervisor's: reverse start
      order, one at a time, each within its own shutdown grace.
    * Every child exit, every API call (``start_child``, ``terminate_child``,
      ``restart_child``, ``delete_child``, ``stop``) and every "try the failed
      restart again" goes through one mailbox (an unbounded memory channel) and
      is handled by one control loop, one message at a time: OTP's gen_server
      mailbox. Two crashes at once never interleave their restarts; a call made
      during a restart waits its turn.
    * Decisions are looked up, never re-derived: :func:`decide` (restart or
      forget), :func:`plan_restart` (who stops and starts, in which order),
      :class:`RestartWindow` (intensity), :func:`auto_shutdown_due`.
    * ``run`` raises exactly one named error (``StartError``,
      ``RestartIntensityExceeded``), never a group of them. ``KeyboardInterrupt``,
      ``SystemExit`` and cancellation from outside pass through untouched (after
      the children were stopped in reverse start order). ``open_supervisor``
      adds no group either: if the block raised while the supervisor failed,
      the supervisor's error comes out with the block's as its ``__context__``.

Theory of operation:
    ``run`` starts the initial children one by one in the control loop's task:
    each child task is spawned with a private ``task_status`` whose ``started``
    wakes the loop; the wait is bounded by the child's ``start_timeout``. Then
    ``run`` calls its own ``task_status.started(self)`` and loops over the
    mailbox. When a child's task ends by itself it posts an exit message; the
    loop then checks it against the child's current incarnation (a stale exit,
    of a child the supervisor already stopped, is dropped, like OTP's
    ``unlink_flush``), looks up the decision and applies it. Stopping a child is
    ``request_stop`` on its :class:`ChildContext` (which starts the shutdown
    timer that :func:`shutdown_grace` reads), ``cancel()`` on its scope, and a
    wait for its task to end.

    When the supervisor itself is stopped (``stop``, intensity exceeded,
    auto-shutdown, or cancellation from outside) it stops its children in
    reverse start order inside its *own* shutdown grace. If that grace runs out
    (it is a child with a finite shutdown and its parent is waiting), it kills
    the children left: their graces are cancelled at once.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio

from nursemaid._errors import (
    ChildAlreadyExists,
    ChildNotFound,
    ChildRunning,
    RestartIntensityExceeded,
    StartError,
    UsageError,
    WorkerError,
)
from nursemaid.supervisor import _grace, _registry
from nursemaid.supervisor._events import (
    ChildExited,
    ChildRestarting,
    ChildStarted,
    ChildStartFailed,
    SupervisorAutoShutdown,
    SupervisorEscalated,
    SupervisorEvent,
)
from nursemaid.supervisor._grace import ChildContext, shutdown_grace
from nursemaid.supervisor._intensity import RestartWindow
from nursemaid.supervisor._policy import (
    KEEPS_SPEC,
    Decision,
    ExitKind,
    auto_shutdown_due,
    decide,
)
from nursemaid.supervisor._registry import Registry
from nursemaid.supervisor._spec import (
    DEFAULTS,
    INFINITY,
    AutoShutdown,
    ChildSpec,
    ChildType,
    Restart,
    Shutdown,
    Strategy,
    SupervisorFlags,
    check_specs,
    member_repr,
)
from nursemaid.supervisor._strategy import Sibling, plan_restart

__all__ = [
    "ChildCounts",
    "ChildInfo",
    "ChildState",
    "Supervisor",
    "open_supervisor",
]

logger = logging.getLogger("nursemaid.supervisor")

T = TypeVar("T")


class ChildState(enum.Enum):
    """Where a child stands, as ``which_children`` shows it (OTP's pid column)."""

    RUNNING = "running"
    """Started and not (yet) known to have exited (OTP: a pid)."""
    RESTARTING = "restarting"
    """Its restart failed; the supervisor will try again (OTP: ``restarting``)."""
    STOPPED = "stopped"
    """Spec kept, no task: not yet started, terminated, or exited (OTP: ``undefined``)."""

    __repr__ = member_repr


@attrs.frozen
class ChildInfo:
    """One row of :meth:`Supervisor.which_children`."""

    id: Hashable
    handle: object
    """What the child passed to ``task_status.started`` (``None`` unless RUNNING)."""
    state: ChildState
    restarts: int
    """How many times this child was started again after its first start."""
    type: ChildType
    spec: ChildSpec


@attrs.frozen
class ChildCounts:
    """What :meth:`Supervisor.count_children` returns (OTP's proplist, as attributes)."""

    specs: int
    """Children known, running or not."""
    active: int
    """Children running: started, and their task not ended (one that has ended
    but whose exit the supervisor has not handled yet is not counted, as OTP
    counts only live processes)."""
    supervisors: int
    """Children whose type is SUPERVISOR, running or not."""
    workers: int
    """Children whose type is WORKER, running or not."""


# ------------------------------------------------------------------ internals


class _Phase(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"  # the supervisor asked it to stop
    EXITED = "exited"


class _Status(enum.Enum):
    IDLE = "idle"  # never run, or run has ended (it may run again)
    STARTING = "starting"  # starting the initial children
    RUNNING = "running"
    STOPPING = "stopping"  # stopping every child; calls are refused


class _Incarnation:
    """One run of a child's task; also the ``task_status`` that child receives
    (it has ``started``, which is all of :class:`trio.TaskStatus`; not subclassed,
    so that ``__slots__`` keeps it small).

    Invariant: ``child.incarnation is self`` while the supervisor considers this
    run current. The start timeout is the deadline of the child's own scope until
    ``started`` is called (one cancel scope per child, not two).
    """

    __slots__ = (
        "child",
        "context",
        "done",
        "exception",
        "handle",
        "kind",
        "phase",
        "registered",
        "registry",
        "scope",
        "settled",
        "started_called",
    )

    def __init__(self, child: _Child, registry: Registry) -> None:
        self.child = child
        self.registry = registry
        self.context = ChildContext(child.spec.shutdown_seconds)
        self.scope = trio.CancelScope(shield=True)
        self.phase = _Phase.STARTING
        self.handle: object = None
        # Both made only while someone waits (memory per child matters):
        self.settled: trio.Event | None = trio.Event()  # started() or the task ended
        self.done: trio.Event | None = None  # the task ended (made by a stopper)
        self.kind = ExitKind.NORMAL
        self.exception: BaseException | None = None
        self.registered = False
        self.started_called = False  # one-way: the phase may have moved on since

    def started(self, value: Any = None) -> None:
        if self.started_called:
            raise RuntimeError("called task_status.started() twice")
        if self.phase is not _Phase.STARTING:
            return  # too late: it is being stopped (start timeout, or shutdown)
        name = self.child.spec.name
        if name is not None:
            self.registry._register(name, value)
            self.registered = True
        self.scope.deadline = math.inf  # the start timeout no longer applies
        self.handle = value
        self.started_called = True
        self.phase = _Phase.RUNNING
        if self.settled is not None:
            self.settled.set()

    def __repr__(self) -> str:
        return f"<task status of child {self.child.spec.id!r}>"


class _Child:
    __slots__ = ("incarnation", "spec", "starts", "state")

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.state = ChildState.STOPPED
        self.incarnation: _Incarnation | None = None
        self.starts = 0


@attrs.frozen
class _Exited:
    inc: _Incarnation


@attrs.frozen
class _TryAgain:
    child: _Child
    reason: BaseException
    """What its failed restart raised: the reason, should the retry escalate."""


@attrs.frozen
class _Call:
    op: Callable[[], Awaitable[Any]]
    reply: _Reply


@attrs.frozen
class _StopRequest:
    reply: _Reply


_Message = _Exited | _TryAgain | _Call | _StopRequest


class _Reply:
    __slots__ = ("_error", "_event", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def set(self, value: Any) -> None:
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def wait(self) -> Any:
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value


class _Stop:
    """The control loop's result when the supervisor should stop normally."""


_STOP = _Stop()
_Ending = _Stop | StartError | RestartIntensityExceeded


def _offender(spec: ChildSpec) -> dict[str, object]:
    return {
        "id": spec.id,
        "start": getattr(spec.start, "__qualname__", repr(spec.start)),
        "restart": spec.restart,
        "shutdown": spec.shutdown,
        "type": spec.type,
        "significant": spec.significant,
    }


def _raise_if_single(group: BaseExceptionGroup[BaseException]) -> None:
    """Raise the exception alone if *group* holds exactly one; else return.

    A group from our own nursery holding one exception: that one is the truth
    (the caller asked for no nest of groups). It is raised with its own chain
    untouched: a bare ``raise exc`` in the group's handler would make the group
    its ``__context__``. The caller re-raises the group when this returns.
    """
    if len(group.exceptions) != 1:
        return
    exc = group.exceptions[0]
    chain = (exc.__cause__, exc.__context__, exc.__suppress_context__)
    try:
        raise exc
    finally:
        exc.__cause__, exc.__context__, exc.__suppress_context__ = chain


def _raise_failure_over_block(
    group: BaseExceptionGroup[BaseException], failure: BaseException | None
) -> None:
    """Raise *failure* alone if *group* is it plus the block's one ``Exception``.

    The supervisor gave up while the ``async with`` block raised an exception of
    its own, most often clean-up code that failed when the give-up cancelled it.
    The supervisor's error is the truth about the tree (every child is stopped,
    as OTP's exit reason says), so it is what comes out; the block's exception
    becomes its ``__context__`` and is named in a note, because a printed
    traceback shows the ``__cause__`` (the child's crash) instead of the context.
    Anything else (a ``KeyboardInterrupt``, ``SystemExit`` or ``Cancelled`` from
    the block, more members) is left alone: the caller re-raises the group.
    """
    if failure is None or len(group.exceptions) != 2:
        return
    others = [exc for exc in group.exceptions if exc is not failure]
    if len(others) != 1 or not isinstance(others[0], Exception):
        return
    block = others[0]
    failure.add_note(
        f"meanwhile the async with block raised {block!r}, kept as this error's __context__"
    )
    cause, suppress = failure.__cause__, failure.__suppress_context__
    try:
        raise failure
    finally:
        failure.__cause__, failure.__context__ = cause, block
        failure.__suppress_context__ = suppress


# ------------------------------------------------------------------ Supervisor


class Supervisor:
    """A *supervisor*: starts children, restarts them by OTP's rules, stops them in order.

    Example::

        sup = Supervisor(
            [ChildSpec("db", db_worker), ChildSpec("web", web_worker)],
            strategy=Strategy.REST_FOR_ONE,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)    # returns once every child has started
            ...
            await sup.stop()

    Or let :func:`open_supervisor` own the nursery. A supervisor's bound ``run``
    is itself a valid child ``start`` (use :meth:`child_spec`), which is how
    trees are built.

    Args:
        children: the initial child specs, started one by one in this order each
            time ``run`` begins.
        strategy: ONE_FOR_ONE (the default), ONE_FOR_ALL or REST_FOR_ONE.
        intensity: restarts tolerated within ``period`` seconds (3 by default).
        period: the intensity window in seconds, on Trio's clock (5.0 by
            default).
        name: shown in logs, events, errors and task names (``None`` by default).
        auto_shutdown: NEVER (the default), ANY_SIGNIFICANT or ALL_SIGNIFICANT:
            whether significant children's own exits stop the supervisor.

    Raises:
        TypeError, ValueError: for invalid options or specs (duplicate ids, a
            significant child without auto_shutdown), before anything runs.
    """

    def __init__(
        self,
        children: Iterable[ChildSpec] = (),
        *,
        strategy: Strategy = DEFAULTS.strategy,
        intensity: int = DEFAULTS.intensity,
        period: float = DEFAULTS.period,
        name: Hashable | None = None,
        auto_shutdown: AutoShutdown = DEFAULTS.auto_shutdown,
    ) -> None:
        self._flags = SupervisorFlags(strategy, intensity, period, auto_shutdown, name)
        self._initial = check_specs(children, auto_shutdown)
        self._status = _Status.IDLE
        self._children: dict[Hashable, _Child] = {}
        self._window = RestartWindow(intensity, period)
        self._nursery: trio.Nursery | None = None
        self._send: trio.MemorySendChannel[_Message] | None = None
        self._registry = Registry()
        self._subscribers: list[trio.MemorySendChannel[SupervisorEvent]] = []
        self._stopped = trio.Event()
        self._stop_replies: list[_Reply] = []
        # The named error the last run raised: open_supervisor tells it from the
        # block's own exception by identity, not by type (the block may raise a
        # RestartIntensityExceeded of its own, from another tree).
        self._failure: StartError | RestartIntensityExceeded | None = None

    # -------------------------------------------------------------- properties

    @property
    def name(self) -> Hashable | None:
        """The supervisor's name (``None`` if not given)."""
        return self._flags.name

    @property
    def _shown(self) -> str:
        """The name as messages show it: its repr, or ``(unnamed)`` (not ``None``)."""
        return "(unnamed)" if self.name is None else repr(self.name)

    @property
    def flags(self) -> SupervisorFlags:
        """The supervisor's strategy, intensity, period, auto_shutdown and name."""
        return self._flags

    @property
    def registry(self) -> Registry:
        """The registry of the tree this supervisor runs in (its own if it is the root)."""
        return self._registry

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} {self._status.value}>"

    def child_spec(
        self,
        id: Hashable | None = None,
        *,
        restart: Restart = DEFAULTS.restart,
        shutdown: float | Shutdown = INFINITY,
        significant: bool = DEFAULTS.significant,
        start_timeout: float = math.inf,
        name: Hashable | None = None,
    ) -> ChildSpec:
        """Return a spec that runs this supervisor as a child of another one.

        The defaults are OTP's for a supervisor child: ``shutdown=INFINITY`` (it
        bounds itself: each of its children has its own shutdown) and no start
        timeout (it bounds itself: each of its children has one).

        Args:
            id: the child id (the supervisor's name by default).
            restart, shutdown, significant, start_timeout, name: as for
                :class:`ChildSpec`.
        """
        return ChildSpec(
            self.name if id is None else id,
            self.run,
            restart,
            shutdown,
            type=ChildType.SUPERVISOR,
            significant=significant,
            start_timeout=start_timeout,
            name=name,
        )

    # ------------------------------------------------------------- inspection

    def which_children(self) -> list[ChildInfo]:
        """Return one :class:`ChildInfo` per child, in start order (synchronous)."""
        result = []
        for child in self._children.values():
            inc = child.incarnation
            running = child.state is ChildState.RUNNING and inc is not None
            result.append(
                ChildInfo(
                    id=child.spec.id,
                    handle=inc.handle if running and inc is not None else None,
                    state=child.state,
                    restarts=max(child.starts - 1, 0),
                    type=child.spec.type,
                    spec=child.spec,
                )
            )
        return result

    def count_children(self) -> ChildCounts:
        """Return how many children there are, running, supervisors and workers."""
        specs = active = supervisors = 0
        for child in self._children.values():
            specs += 1
            # As OTP's is_process_alive: a child whose task has ended is not
            # active, even while its exit still waits for the control loop.
            inc = child.incarnation
            active += (
                child.state is ChildState.RUNNING
                and inc is not None
                and inc.phase is not _Phase.EXITED
            )
            supervisors += child.spec.type is ChildType.SUPERVISOR
        return ChildCounts(specs, active, supervisors, specs - supervisors)

    def whereis(self, name: Hashable) -> object | None:
        """Return the handle registered under *name* in this supervisor's tree, or ``None``."""
        return self._registry.whereis(name)

    def subscribe(self) -> trio.MemoryReceiveChannel[SupervisorEvent]:
        """Return a channel that receives every event of this supervisor from now on.

        Example::

            with sup.subscribe() as events:
                async for event in events:
                    match event:
                        case ChildExited(child_id="db", kind=ExitKind.CRASH):
                            ...

        The channel is unbounded so the supervisor never waits for a subscriber:
        read it, or close it (leaving the ``with``) to unsubscribe. Events of a
        child supervisor go to that supervisor's own subscribers. A subscription
        lives across runs; the channel ends only when you close it.
        """
        send, receive = trio.open_memory_channel[SupervisorEvent](math.inf)
        self._subscribers.append(send)
        return receive

    # -------------------------------------------------------------------- run

    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the supervisor: start the children, supervise them, stop them.

        Starts the initial children one by one in order, then calls
        ``task_status.started(self)``. Returns normally after :meth:`stop`, or
        after an auto-shutdown. May run again after it ended: each run begins
        from the children given to the constructor (a parent restarting a child
        supervisor gets OTP's ``init`` again).

        Raises:
            StartError: an initial child failed to start; those already started
                were stopped in reverse order first.
            RestartIntensityExceeded: more than ``intensity`` restarts within
                ``period``; every child was stopped in reverse start order first.
            UsageError: this supervisor is already running.
        """
        if self._status is not _Status.IDLE:
            raise UsageError(
                f"supervisor {self._shown} is already running; a Supervisor runs one "
                f"tree at a time (create another Supervisor for a second tree)"
            )
        self._begin()
        ending: _Ending | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    ending = await self._main(task_status)
                finally:
                    await self._shutdown()
        except BaseExceptionGroup as group:
            _raise_if_single(group)
            raise
        finally:
            self._end()
        if isinstance(ending, BaseException):
            self._failure = ending
            raise ending

    def _begin(self) -> None:
        self._status = _Status.STARTING
        self._children = {spec.id: _Child(spec) for spec in self._initial}
        self._window = RestartWindow(self._flags.intensity, self._flags.period)
        self._send, self._receive = trio.open_memory_channel[_Message](math.inf)
        # One registry per tree: share the parent's if we run inside one.
        self._registry = _registry.current_registry() or Registry()
        self._stopped = trio.Event()
        self._failure = None

    def _end(self) -> None:
        self._status = _Status.IDLE
        self._nursery = None
        if self._send is not None:
            self._send.close()
            self._send = None
        for reply in self._stop_replies:
            reply.set(None)
        self._stop_replies = []
        # Calls that never got their turn.
        while True:
            try:
                message = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            if isinstance(message, _Call):
                message.reply.fail(
                    UsageError(f"supervisor {self._shown} stopped before handling the call")
                )
            elif isinstance(message, _StopRequest):
                message.reply.set(None)
        self._stopped.set()

    async def _main(self, task_status: trio.TaskStatus[Supervisor]) -> _Ending:
        for child in list(self._children.values()):
            failure = await self._start(child)
            if failure is not None:
                return self._start_error(child, failure)
        self._status = _Status.RUNNING
        task_status.started(self)
        return await self._loop()

    async def _loop(self) -> _Ending:
        receive = self._receive
        while True:
            message = await receive.receive()
            ending: _Ending | None
            if isinstance(message, _Exited):
                ending = await self._on_exit(message.inc)
            elif isinstance(message, _TryAgain):
                ending = await self._on_try_again(message.child, message.reason)
            elif isinstance(message, _Call):
                try:
                    message.reply.set(await message.op())
                except Exception as exc:
                    message.reply.fail(exc)
                except BaseException:
                    # Cancelled (or KeyboardInterrupt) while handling it: the
                    # caller must not wait forever for an answer.
                    message.reply.fail(
                        UsageError(f"supervisor {self._shown} stopped while handling the call")
                    )
                    raise
                ending = None
            else:
                self._stop_replies.append(message.reply)
                ending = _STOP
            if ending is not None:
                return ending

    def _post(self, message: _Message) -> None:
        send = self._send
        if send is not None:
            send.send_nowait(message)

    # -------------------------------------------------------- child lifecycle

    async def _run_child(self, inc: _Incarnation) -> None:
        # Runs in the child's own task: the context variables set here are seen
        # by the child and every task it spawns, and by no one else.
        _grace._current.set(inc.context)
        _registry._current.set(self._registry)
        try:
            with inc.scope:
                await inc.child.spec.start(task_status=inc)
            if inc.scope.cancelled_caught or inc.phase is _Phase.STOPPING:
                inc.kind = ExitKind.SHUTDOWN
        except Exception as exc:
            inc.kind = ExitKind.CRASH
            inc.exception = exc
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit, a Cancelled that is not ours:
            # not an exit we judge. Let it through; our nursery will stop the rest.
            inc.kind = ExitKind.CRASH
            inc.exception = exc
            self._finish(inc, judge=False)
            raise
        self._finish(inc, judge=True)

    def _finish(self, inc: _Incarnation, *, judge: bool) -> None:
        if inc.registered:
            self._registry._unregister(inc.child.spec.name)
            inc.registered = False
        self_exit = judge and inc.phase is _Phase.RUNNING
        inc.phase = _Phase.EXITED
        if inc.settled is not None:
            inc.settled.set()
        if inc.done is not None:
            inc.done.set()
        if self_exit:
            self._post(_Exited(inc))

    async def _start(self, child: _Child) -> BaseException | None:
        """Start *child*; return the failure reason, or ``None`` once it started."""
        spec = child.spec
        if spec.name is not None and spec.name in self._registry:
            reason: BaseException = ChildAlreadyExists(
                f"name {spec.name!r} is already registered in this supervision tree",
                child_id=spec.id,
            )
            self._report_start_failure(child, reason)
            return reason
        assert self._nursery is not None
        inc = _Incarnation(child, self._registry)
        if spec.start_timeout != math.inf:
            inc.scope.deadline = trio.current_time() + spec.start_timeout
        child.incarnation = inc
        self._nursery.start_soon(self._run_child, inc, name=f"nursemaid child {spec.id!r}")
        assert inc.settled is not None
        await inc.settled.wait()
        inc.settled = None  # nobody waits for it again
        if inc.started_called:
            child.state = ChildState.RUNNING
            child.starts += 1
            if self._subscribers:
                self._emit(
                    ChildStarted(
                        self.name, spec.id, inc.handle, trio.current_time(), child.starts > 1
                    )
                )
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "supervisor %s: started child %r",
                    self._shown,
                    spec.id,
                    extra={"context": "progress", "offender": _offender(spec)},
                )
            return None
        if inc.scope.cancel_called:
            reason = TimeoutError(
                f"child {spec.id!r} did not call task_status.started() within its "
                f"start_timeout of {spec.start_timeout!r} s"
            )
        elif inc.exception is not None:
            reason = inc.exception
        else:
            reason = RuntimeError(
                f"child {spec.id!r} returned without calling task_status.started(); "
                f"call it once the child is ready"
            )
        child.incarnation = None
        self._report_start_failure(child, reason)
        return reason

    async def _stop_incarnation(self, inc: _Incarnation) -> None:
        if inc.phase is _Phase.EXITED:
            return
        if inc.phase is not _Phase.STOPPING:
            inc.phase = _Phase.STOPPING
            inc.context.request_stop(trio.current_time())
            inc.scope.cancel()
        if inc.done is None:
            inc.done = trio.Event()
        await inc.done.wait()

    async def _terminate(self, child: _Child) -> None:
        """Stop *child* if it runs and wait for it (OTP's ``do_terminate``)."""
        inc = child.incarnation
        if inc is None:
            return
        stopped_by_us = inc.phase is not _Phase.EXITED
        await self._stop_incarnation(inc)
        child.incarnation = None
        child.state = ChildState.STOPPED
        self._report_exit(child, inc, stopped=stopped_by_us)

    def _forget(self, child: _Child) -> None:
        child.state = ChildState.STOPPED
        if not KEEPS_SPEC[child.spec.restart]:
            self._children.pop(child.spec.id, None)

    # --------------------------------------------------------- exit handling

    async def _on_exit(self, inc: _Incarnation) -> _Ending | None:
        child = inc.child
        if child.incarnation is not inc or self._children.get(child.spec.id) is not child:
            return None  # stale: the supervisor already stopped this run
        child.incarnation = None
        self._report_exit(child, inc, stopped=False)
        if decide(child.spec.restart, inc.kind) is Decision.FORGET:
            self._forget(child)
            # OTP counts a significant sibling as alive unless its pid is
            # undefined: a restarting one (pid {restarting, _}) is alive.
            still = any(
                c.spec.significant and c.state is not ChildState.STOPPED
                for c in self._children.values()
            )
            if auto_shutdown_due(self._flags.auto_shutdown, child.spec.significant, still):
                if self._subscribers:
                    self._emit(
                        SupervisorAutoShutdown(self.name, child.spec.id, trio.current_time())
                    )
                logger.info(
                    "supervisor %s: significant child %r exited; shutting down (auto_shutdown=%s)",
                    self._shown,
                    child.spec.id,
                    self._flags.auto_shutdown.name,
                )
                return _STOP
            return None
        child.state = ChildState.RESTARTING
        return await self._restart(child, inc.exception)

    async def _on_try_again(self, child: _Child, reason: BaseException) -> _Ending | None:
        if (
            self._children.get(child.spec.id) is not child
            or child.state is not ChildState.RESTARTING
        ):
            return None  # terminated, deleted or restarted meanwhile
        return await self._restart(child, reason, retry=True)

    async def _restart(
        self, child: _Child, reason: BaseException | None, *, retry: bool = False
    ) -> _Ending | None:
        """Count a restart of *child* and carry it out, or give up.

        *reason* is why it must restart: the exception it crashed with (``None``
        after a normal exit), or, when *retry* is true, the exception its last
        restart failed with. Should the restart exceed the intensity, *reason*
        becomes the ``reason`` and ``__cause__`` of the RestartIntensityExceeded.
        """
        now = trio.current_time()
        self._window = self._window.add(now)
        if self._window.exceeded:
            child.state = ChildState.STOPPED
            return self._escalate(child, reason, retry=retry)
        if self._subscribers:
            self._emit(ChildRestarting(self.name, child.spec.id, self._window.restarts, now))
        siblings = [
            Sibling(c.spec.id, c.spec.restart, c.incarnation is not None)
            for c in self._children.values()
        ]
        plan = plan_restart(self._flags.strategy, siblings, child.spec.id)
        for cid in plan.stop:
            await self._terminate(self._children[cid])
        for cid in plan.drop:
            self._children.pop(cid, None)
        for cid in plan.start:
            sibling = self._children[cid]
            failure = await self._start(sibling)
            if failure is not None:
                sibling.state = ChildState.RESTARTING
                self._post(_TryAgain(sibling, failure))
                return None
        return None

    def _escalate(
        self, child: _Child, reason: BaseException | None, *, retry: bool
    ) -> RestartIntensityExceeded:
        flags = self._flags
        restarts = self._window.restarts
        if retry:
            last = f"last failure: child {child.spec.id!r} failed to restart with {reason!r}"
        elif reason is not None:
            last = f"last exit: child {child.spec.id!r}, {reason!r}"
        else:
            last = f"last exit: child {child.spec.id!r}"
        error = RestartIntensityExceeded(
            f"supervisor {self._shown} gave up: {len(restarts)} restarts within "
            f"{flags.period!r} s exceed intensity {flags.intensity!r} ({last})",
            supervisor=self.name,
            intensity=flags.intensity,
            period=flags.period,
            restarts=restarts,
            child_id=child.spec.id,
            reason=reason,
        )
        error.__cause__ = reason
        if self._subscribers:
            self._emit(
                SupervisorEscalated(self.name, child.spec.id, reason, restarts, trio.current_time())
            )
        logger.error(
            "supervisor %s: reached max restart intensity; shutting down\n"
            "    context: shutdown\n    reason: reached_max_restart_intensity\n"
            "    offender: %r",
            self._shown,
            _offender(child.spec),
            extra={
                "context": "shutdown",
                "reason": "reached_max_restart_intensity",
                "offender": _offender(child.spec),
            },
        )
        return error

    def _start_error(self, child: _Child, reason: BaseException) -> StartError:
        details: dict[str, Any] = {}
        why = repr(reason)
        if isinstance(reason, WorkerError):
            # StartError appends the exit status and stderr tail itself: say them once.
            details = {
                "returncode": reason.returncode,
                "stderr_tail": reason.stderr_tail,
                "pid": reason.pid,
            }
            why = f"{type(reason).__name__}: {str(reason).splitlines()[0].split(' (returncode')[0]}"
        error = StartError(
            f"supervisor {self._shown} could not start child {child.spec.id!r}: {why}",
            child_id=child.spec.id,
            reason=reason,
            **details,
        )
        error.__cause__ = reason
        return error

    # --------------------------------------------------------------- stopping

    async def _shutdown(self) -> None:
        """Stop every child in reverse start order, within our own grace."""
        self._status = _Status.STOPPING
        with shutdown_grace(default=math.inf) as grace:
            for child in reversed(list(self._children.values())):
                await self._terminate(child)
        if grace.cancelled_caught:
            left = [c for c in reversed(list(self._children.values())) if c.incarnation]
            if left:
                logger.warning(
                    "supervisor %s: ran out of shutdown time; killing %d children: %r",
                    self._shown,
                    len(left),
                    [c.spec.id for c in left],
                )
            for child in left:
                if child.incarnation is not None:
                    child.incarnation.context.kill()
            with trio.CancelScope(shield=True):
                for child in left:
                    await self._terminate(child)
        for child in list(self._children.values()):
            if child.spec.restart is Restart.TEMPORARY:
                self._children.pop(child.spec.id, None)

    # -------------------------------------------------------------- reporting

    def _emit(self, event: SupervisorEvent) -> None:
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(send)

    def _report_start_failure(self, child: _Child, reason: BaseException) -> None:
        if self._subscribers:
            self._emit(ChildStartFailed(self.name, child.spec.id, reason, trio.current_time()))
        logger.warning(
            "supervisor %s: child %r failed to start\n    context: start_error\n"
            "    reason: %r\n    offender: %r",
            self._shown,
            child.spec.id,
            reason,
            _offender(child.spec),
            exc_info=reason if reason.__traceback__ is not None else None,
            extra={"context": "start_error", "reason": reason, "offender": _offender(child.spec)},
        )

    def _report_exit(self, child: _Child, inc: _Incarnation, *, stopped: bool) -> None:
        spec = child.spec
        if self._subscribers:
            self._emit(
                ChildExited(
                    self.name, spec.id, inc.kind, inc.exception, trio.current_time(), stopped
                )
            )
        if inc.kind is ExitKind.CRASH and isinstance(inc.exception, Exception):
            # (A KeyboardInterrupt or SystemExit is not a crash we report: it is
            # on its way out of every supervisor.)
            context = "shutdown_error" if stopped else "child_terminated"
            logger.warning(
                "supervisor %s: child %r %s\n    context: %s\n    reason: %r\n    offender: %r",
                self._shown,
                spec.id,
                "raised while stopping" if stopped else "crashed",
                context,
                inc.exception,
                _offender(spec),
                exc_info=inc.exception,
                extra={"context": context, "reason": inc.exception, "offender": _offender(spec)},
            )
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "supervisor %s: child %r exited (%s)",
                self._shown,
                spec.id,
                inc.kind.name,
                extra={
                    "context": "child_terminated",
                    "reason": inc.kind.value,
                    "offender": _offender(spec),
                },
            )

    # -------------------------------------------------------------------- API

    def _check_running(self, what: str) -> None:
        if self._status not in (_Status.STARTING, _Status.RUNNING):
            raise UsageError(
                f"{what}: supervisor {self._shown} is not running; start it with "
                f"open_supervisor(...) or nursery.start(supervisor.run)"
            )

    async def _call(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        self._check_running(what)
        reply = _Reply()
        self._post(_Call(op, reply))
        result: T = await reply.wait()
        return result

    def _lookup(self, child_id: Hashable) -> _Child:
        try:
            return self._children[child_id]
        except KeyError:
            raise ChildNotFound(
                f"supervisor {self._shown} has no child {child_id!r}", child_id=child_id
            ) from None

    def _lookup_stopped(self, child_id: Hashable) -> _Child:
        """The child *child_id*, which restart_child and delete_child need stopped."""
        child = self._lookup(child_id)
        if child.state is not ChildState.STOPPED:
            how = "is running" if child.state is ChildState.RUNNING else "is being restarted"
            raise ChildRunning(
                f"child {child_id!r} {how}; terminate_child({child_id!r}) first",
                child_id=child_id,
            )
        return child

    async def start_child(self, spec: ChildSpec) -> Any:
        """Add *spec* and start it; return the handle it passed to ``started``.

        Waits its turn in the control loop. A dynamically added child goes last
        in start order. It is not brought back when a parent restarts this
        supervisor (``run`` begins from the constructor's children).

        Raises:
            ChildAlreadyExists: a child with this id exists (running or not).
            StartError: the child failed to start; its spec was not kept.
            TypeError, ValueError: *spec* is invalid for this supervisor.
            UsageError: the supervisor is not running.
        """
        (spec,) = check_specs([spec], self._flags.auto_shutdown)

        async def op() -> Any:
            existing = self._children.get(spec.id)
            if existing is not None:
                how = "running" if existing.state is ChildState.RUNNING else "present (not running)"
                raise ChildAlreadyExists(
                    f"supervisor {self._shown} already has a child {spec.id!r}, {how}; "
                    f"pick another id, or delete_child({spec.id!r}) first",
                    child_id=spec.id,
                )
            child = _Child(spec)
            self._children[spec.id] = child
            failure = await self._start(child)
            if failure is not None:
                self._children.pop(spec.id, None)
                raise self._start_error(child, failure)
            assert child.incarnation is not None
            return child.incarnation.handle

        return await self._call("start_child", op)

    async def terminate_child(self, child_id: Hashable) -> None:
        """Stop the child (within its shutdown grace) and keep its spec.

        A TEMPORARY child's spec is dropped. The stop never counts as a restart
        and never triggers auto-shutdown; a pending retry of a failed restart is
        cancelled. Terminating a child that is not running does nothing.

        Raises:
            ChildNotFound: no child has this id.
            UsageError: the supervisor is not running.
        """

        async def op() -> None:
            child = self._lookup(child_id)
            await self._terminate(child)
            self._forget(child)

        await self._call("terminate_child", op)

    async def restart_child(self, child_id: Hashable) -> Any:
        """Start a stopped child again; return the handle it passed to ``started``.

        Raises:
            ChildNotFound: no child has this id.
            ChildRunning: it is running, or its restart is pending.
            StartError: it failed to start (it stays stopped).
            UsageError: the supervisor is not running.
        """

        async def op() -> Any:
            child = self._lookup_stopped(child_id)
            failure = await self._start(child)
            if failure is not None:
                raise self._start_error(child, failure)
            assert child.incarnation is not None
            return child.incarnation.handle

        return await self._call("restart_child", op)

    async def delete_child(self, child_id: Hashable) -> None:
        """Drop the spec of a stopped child.

        Raises:
            ChildNotFound: no child has this id.
            ChildRunning: it is running, or its restart is pending.
            UsageError: the supervisor is not running.
        """

        async def op() -> None:
            self._lookup_stopped(child_id)
            del self._children[child_id]

        await self._call("delete_child", op)

    async def stop(self) -> None:
        """Stop every child in reverse start order; ``run`` then returns normally.

        Waits its turn in the control loop, then until the children are
        stopped. Does nothing if the supervisor is not running.
        """
        if self._status is _Status.IDLE:
            return
        if self._status is _Status.STOPPING:
            await self._stopped.wait()
            return
        reply = _Reply()
        self._post(_StopRequest(reply))
        await reply.wait()


# A supervisor's bound run is a SUPERVISOR child; ChildSpec infers its type from this.
setattr(Supervisor.run, "_nursemaid_child_type", ChildType.SUPERVISOR)  # noqa: B010


@asynccontextmanager
async def open_supervisor(
    children: Iterable[ChildSpec] = (), **options: Any
) -> AsyncIterator[Supervisor]:
    """Run a :class:`Supervisor` in the background for the duration of the block.

    Example::

        async with open_supervisor([ChildSpec("db", db_worker)], intensity=5) as sup:
            await sup.start_child(ChildSpec("cache", cache_worker))
            ...
        # every child stopped, in reverse start order

    Args:
        children: the initial child specs.
        **options: the :class:`Supervisor` keyword options (strategy, intensity,
            period, name, auto_shutdown).

    Yields:
        The running supervisor: every initial child has started.

    Raises:
        StartError: an initial child failed to start.
        RestartIntensityExceeded: the supervisor gave up while the block ran (the
            block is cancelled).

    Exceptions come out as themselves, never wrapped in an exception group:
    the block's own exception, or the supervisor's one named error. When both
    happen (the supervisor gives up, and the block, cancelled, raises in its
    clean-up), the supervisor's error comes out: the tree is gone, and that is
    what ``except RestartIntensityExceeded`` must always see. The block's
    exception is then its ``__context__``, and a note on it names the block's
    exception, since a printed traceback shows only the ``__cause__`` (the
    child's crash). A ``KeyboardInterrupt``, ``SystemExit`` or outside
    ``Cancelled`` is never folded away like that: it passes through untouched
    (with the supervisor's error beside it in Trio's group, should both happen).
    If the supervisor stops by itself without an error (an auto-shutdown), the
    block is not cancelled: it runs on, and calls on the supervisor raise
    ``UsageError``.
    """
    supervisor = Supervisor(children, **options)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            try:
                yield supervisor
            finally:
                await supervisor.stop()
    except BaseExceptionGroup as group:
        _raise_if_single(group)
        _raise_failure_over_block(group, supervisor._failure)
        raise
