"""The pool: a fixed number of workers, checked out one client at a time.

A *pool* keeps up to ``size`` workers — external programs behind ports, or
in-process resources — ready, and lends each to one client task at a time::

    async with open_pool([sys.executable, "worker.py"], size=4) as pool:
        print(await pool.execute("add", [1, 2]))          # the pool does it all
        async with pool.checkout() as lease:              # or hold a worker yourself
            await lease.port.send(...)

Rules:
    * A worker enters the pool only after its handshake (the envelope's ping)
      succeeded within ``init_timeout``. A failed handshake discards it, with its
      stderr tail in the :class:`~nursemaid.workers.Transition`'s cause, and a
      replacement starts after an exponential backoff. Failures count against a
      restart window; a worker program that cannot be kept running closes the pool
      with :class:`~nursemaid.StartError` instead of looping.
    * Waiters are served first come, first served; a cancelled or timed-out waiter
      leaves the queue at once. Handing a worker to a waiter is one synchronous step
      (:mod:`._pool_core`), so a worker is never lost or handed out twice, whatever
      moment a cancellation strikes.
    * A leased port is owned by the client task for the duration of the lease,
      and by the worker's own task otherwise (the hand-over is ``Port._transfer``,
      no extra task switch).
    * At checkin: a normal exit makes the worker idle; any exception (except a
      :class:`~nursemaid.RemoteError`, which is the worker answering normally), or
      a cancellation or timeout while a request is in flight, removes it and starts
      a replacement. Exceptions leave the block unchanged.
    * A worker's close sequence (close stdin, grace, SIGTERM, grace, SIGKILL, reap)
      runs in that worker's own task, never on a client's path.

Theory of operation:
    :mod:`._pool_core` holds every decision (who gets which worker, when to start or
    stop one) with no I/O; this module is the Trio shell around it. Each worker
    runs in a task of the pool's nursery: it opens the worker, handshakes, tells the
    core it is ready, then waits for the worker to die or to be stopped; leaving
    that task's ``async with`` is the close sequence. A client that finds an idle
    worker takes it without a task switch (the fast path: no ``await`` that blocks).
    A client that finds none parks itself with ``wait_task_rescheduled``; the task
    that frees a worker hands it over and reschedules the waiter in the same step,
    and a cancellation's abort function removes the waiter from the queue — Trio
    calls it only while the task is still parked, so the two can never both happen.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import math
import sys
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any, Final, Protocol, runtime_checkable

import attrs
import outcome
import trio

from nursemaid import _lazy
from nursemaid._errors import (
    CheckoutTimeout,
    PoolClosed,
    RemoteError,
    StartError,
    UsageError,
    WorkerError,
)
from nursemaid._validate import check_timeout
from nursemaid.protocol._framing import DEFAULT_MAX_FRAME
from nursemaid.supervisor import current_shutdown
from nursemaid.supervisor._runtime import _raise_failure_over_block, _raise_if_single
from nursemaid.workers._lifecycle import Subscriber, Transition, WorkerState
from nursemaid.workers._pool_core import (
    Backoff,
    PoolCore,
    PoolPhase,
    SessionMoved,
    Waiter,
    WorkerSlot,
)
from nursemaid.workers._pool_inprocess import InProcessWorker

__all__ = [
    "DEFAULTS",
    "Keep",
    "Lease",
    "Pool",
    "PoolStatistics",
    "PoolWorker",
    "PortWorkers",
    "Remove",
    "WorkerFactory",
    "WorkerInfo",
    "open_pool",
]

logger = logging.getLogger("nursemaid.pool")

_current_task = trio.lowlevel.current_task
_current_time = trio.current_time
# Ctrl-C (KeyboardInterrupt) must not land half-way through the pool's bookkeeping:
# the entry points (checkout's __aenter__/__aexit__, execute, Lease.request, aclose)
# and the roots of the pool's own tasks run protected, as Trio's own machinery does,
# so an interrupt there is delivered to the main task at its next checkpoint, where
# every wait is already safe to abandon. User hooks run unprotected (a sync hook
# stuck in a loop stays interruptible); the pool handles any exception out of them.
# Subscribers run protected, as Trio's instruments do. See docs/pool.md ("Ctrl-C").
_ki_protected = trio.lowlevel.enable_ki_protection
_ki_unprotected = trio.lowlevel.disable_ki_protection
_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
_ns = time.perf_counter_ns
# A pool keeps the port's turn rule only while at most this many clients (and no
# more than it has workers) took workers in the last census (Pool._crowded_by).
_FEW_CLIENTS: Final = 2
_cancel_shielded_checkpoint = trio.lowlevel.cancel_shielded_checkpoint
_OPEN: Final = PoolPhase.OPEN
_OPENING: Final = PoolPhase.OPENING


@attrs.frozen
class PoolDefaults:
    """Every default of :func:`open_pool`, in one place (OTP's ``default_flags``)."""

    lazy: bool = False
    init_timeout: float = 5.0
    checkout_timeout: float = 5.0
    max_uses: int | None = None
    idle_timeout: float | None = None
    health_interval: float | None = 30.0
    close_grace: float = 5.0
    period: float = 5.0
    backoff_first: float = 0.05
    backoff_max: float = 2.0

    def intensity(self, size: int) -> int:
        """The restart intensity when none is given: ``max(3, 2 * size)``."""
        return max(3, 2 * size)


DEFAULTS: Final = PoolDefaults()


# ---------------------------------------------------------------------------
# What a pool drives: the worker-factory protocol
# ---------------------------------------------------------------------------


@runtime_checkable
class PoolWorker(Protocol):
    """What a pool needs from one worker. A :class:`~nursemaid.workers.Port` is one.

    ``request`` must raise :class:`~nursemaid.RemoteError` when the worker answers
    with an error (the worker stays), and any other exception when the worker is
    unusable. ``wait_exited`` returns only when the worker died on its own.

    A worker may also have an ``abandoned_requests`` attribute (an int, as
    :attr:`Port.abandoned_requests <nursemaid.Port.abandoned_requests>`
    has): the requests its callers gave up on that it is still working on. A
    lease that ends while it is non-zero removes the worker.
    """

    async def request(
        self,
        op: str,
        args: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the Port contract's signature)
    ) -> Any:
        """Send *op* with *args*, return the reply's result."""
        ...

    async def wait_exited(self) -> int:
        """Wait until the worker is gone; return its exit status."""
        ...

    def stderr_tail(self) -> str:
        """The worker's last stderr lines (``""`` for in-process workers)."""
        ...


@runtime_checkable
class WorkerFactory(Protocol):
    """A recipe for one kind of pool worker.

    ``open_worker(worker_id)`` returns an async context manager: entering it
    creates the worker (spawning a process, connecting a resource) and yields a
    :class:`PoolWorker`; leaving it destroys the worker, however long that takes —
    it runs in the worker's own task, never on a client's path. ``ping_op`` is the
    op the pool sends as the handshake and as the periodic health check.

    The pool drives argv workers through :class:`PortWorkers`, and in-process ones
    through :class:`~nursemaid.workers.InProcessWorkers` or your own factory: the
    same pool logic drives both.
    """

    @property
    def ping_op(self) -> str:
        """The op sent as the handshake and health check."""
        ...

    def open_worker(self, worker_id: int) -> AbstractAsyncContextManager[PoolWorker]:
        """Return a context manager that creates the worker and destroys it on exit."""
        ...


@attrs.frozen
class PortWorkers:
    """The worker factory for external programs: each worker is a :func:`open_port`.

    :func:`open_pool` builds one when given an argv list; the options are those of
    :func:`~nursemaid.open_port`. Pass one yourself to set them, e.g.
    ``open_pool(PortWorkers(argv, process_group=False), size=4)``.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    codec: Any = "json"
    packet: int = 4
    max_frame: int = DEFAULT_MAX_FRAME
    envelope: Any = None
    shutdown: float | None = None
    name: str | None = None
    process_group: bool = True

    @property
    def ping_op(self) -> str:
        """The envelope's ping op (``"ping"`` for the standard envelope)."""
        return "ping" if self.envelope is None else str(self.envelope.ping_op)

    def open_worker(self, worker_id: int) -> AbstractAsyncContextManager[PoolWorker]:
        """Start the program; leaving the context closes and reaps it."""
        from nursemaid.workers._port import open_port

        options: dict[str, Any] = {}
        if self.shutdown is not None:
            options["shutdown"] = self.shutdown
        return open_port(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            codec=self.codec,
            packet=self.packet,
            max_frame=self.max_frame,
            envelope=self.envelope,
            name=self.name,
            process_group=self.process_group,
            **options,
        )


# ---------------------------------------------------------------------------
# Hooks: NimblePool's handle_checkout / handle_checkin, with typed results
# ---------------------------------------------------------------------------


@attrs.frozen
class Keep:
    """A hook's answer: keep the worker (NimblePool's ``{:ok, ...}``)."""


@attrs.frozen
class Remove:
    """A hook's answer: remove the worker and start a replacement (``{:remove, reason}``).

    Attributes:
        reason: why, shown in the worker's ``STOP`` transition and the log.
    """

    reason: str


HookResult = Keep | Remove
CheckoutHook = Callable[["Lease"], HookResult | Awaitable[HookResult]]
CheckinHook = Callable[["Lease", BaseException | None], HookResult | Awaitable[HookResult]]

_EXPECTED_HOOK_RESULT: Final = "Keep() or Remove(reason: str)"


def _hook_verdict(hook_name: str, result: object) -> str | None:
    """Translate a hook's result to ``None`` (keep) or a removal reason."""
    if isinstance(result, Keep):
        return None
    if isinstance(result, Remove) and isinstance(result.reason, str):
        return result.reason
    message = (
        f"{hook_name} returned a value outside its contract; the worker is removed\n"
        f"Expected: {_EXPECTED_HOOK_RESULT}\nGot: {result!r}"
    )
    logger.error("%s", message)
    return message


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


@attrs.frozen
class WorkerInfo:
    """One worker in :meth:`Pool.statistics`.

    Attributes:
        id: the worker's id (unique in its pool, never reused).
        state: its :class:`~nursemaid.workers.WorkerState`.
        uses: how many client leases it has served (health checks are not counted).
        pid: its process id (``None`` for in-process workers or before spawning).
    """

    id: int
    state: WorkerState
    uses: int
    pid: int | None


@attrs.frozen
class PoolStatistics:
    """A snapshot of a pool, from :meth:`Pool.statistics` (Trio's name and habit).

    Attributes:
        size: the most workers alive at once.
        idle: workers ready for a client.
        leased: workers held by a client (or returning).
        checking: workers the health check is pinging (not counted in ``idle``:
            no client can take them until they answer; then they are idle again).
        starting: workers spawning or handshaking.
        stopping: workers running their close sequence (not counted in ``size``).
        waiting: clients queued for a worker.
        restarts: workers lost to a crash, a failed start or a removal, and
            replaced (at once in an eager pool; on demand in a lazy one).
            Recycling by ``idle_timeout`` in a lazy pool is shrinking, not counted.
        workers: every worker that has not finished, by id.
        checkouts: leases granted so far.
        waits: how many of those had to queue.
        wait_time_total: seconds queued, summed over the checkouts that waited.
        wait_time_max: the longest of those waits.
        lease_time_total: seconds leased, summed over every lease that ended.
        lease_time_max: the longest of those leases.

    The counts and times cover the pool's current run: a pool that runs again (a
    supervisor restarted it) starts them from zero, so exporters should treat
    them as counters that may reset.
    """

    size: int
    idle: int
    leased: int
    checking: int
    starting: int
    stopping: int
    waiting: int
    restarts: int
    workers: tuple[WorkerInfo, ...]
    checkouts: int
    waits: int
    wait_time_total: float
    wait_time_max: float
    lease_time_total: float
    lease_time_max: float


# ---------------------------------------------------------------------------
# Leases and checkout
# ---------------------------------------------------------------------------


class Lease:
    """Exclusive use of one worker, from :meth:`Pool.checkout`.

    ``lease.port`` (the same object as ``lease.worker``) is owned by the task that
    checked it out, until the ``async with`` block ends and the pool's
    ``handle_checkin`` (if any) has returned: both hooks may use the lease. A
    request cut short — cancelled or timed out, whether sent with :meth:`request`
    or with ``lease.port.request``, by the block or by a hook — leaves the worker
    busy with work nobody waits for, so a lease that ends after one (and before
    its late reply was read) removes the worker instead of handing it to the next
    client.

    Attributes:
        worker_id: the worker's id in its pool.
        session: the session the lease was taken for (or ``None``).
    """

    __slots__ = ("_in_flight", "_running", "_slot", "session", "worker", "worker_id")

    def __init__(self, slot: WorkerSlot, session: Hashable | None) -> None:
        self._slot: WorkerSlot | None = slot
        self._in_flight = 0
        self._running = 0
        self.worker: Any = slot.resource
        self.worker_id = slot.id
        self.session = session

    def __repr__(self) -> str:
        return f"<Lease worker {self.worker_id} session={self.session!r}>"

    @property
    def port(self) -> Any:
        """The worker's :class:`~nursemaid.workers.Port` (for in-process pools, the worker)."""
        return self.worker

    @_ki_protected
    async def request(
        self,
        op: str,
        args: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the contract's signature)
    ) -> Any:
        """Send *op* to the leased worker and return the reply's result.

        Raises:
            RemoteError: the worker's handler raised; the worker stays in the pool.
            RequestTimeout: no reply within *timeout*; the worker will be removed
                when the lease ends.
            WorkerCrashed: the worker died with this request in flight (it carries
                ``.returncode`` and ``.stderr_tail``); the pool counts it in
                ``restarts`` and starts a replacement.
            UsageError: the lease has ended.
        """
        if self._slot is None:
            raise UsageError(
                f"lease of worker {self.worker_id} has ended; "
                "use the lease only inside its 'async with pool.checkout()' block"
            )
        # _in_flight: requests that did not end with an answer (checkin asks the
        # worker whether they left anything owed: see _unfinished); _running:
        # requests not yet returned at all.
        self._in_flight += 1
        self._running += 1
        try:
            result = await self.worker.request(op, args, timeout=timeout)
        except RemoteError:
            self._in_flight -= 1  # the worker answered: nothing is in flight
            raise
        finally:
            self._running -= 1
        self._in_flight -= 1
        return result


class _Checkout:
    """``pool.checkout()``'s context manager (a class: cheaper than a generator)."""

    __slots__ = ("_lease", "_pool", "_session", "_timeout")

    def __init__(self, pool: Pool, session: Hashable | None, timeout: float | None) -> None:
        self._pool = pool
        self._session = session
        self._timeout = timeout
        self._lease: Lease | None = None

    @_ki_protected
    async def __aenter__(self) -> Lease:
        pool = self._pool
        if pool._handle_checkout is None:
            lease = Lease(await pool._acquire_slot(self._session, self._timeout), self._session)
        else:
            lease = await pool._acquire(self._session, self._timeout)
        self._lease = lease
        return lease

    @_ki_protected
    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        lease = self._lease
        assert lease is not None
        self._lease = None
        await self._pool._release(lease, exc)
        return False


# ---------------------------------------------------------------------------
# The pool
# ---------------------------------------------------------------------------


class Pool:
    """A pool of workers. Obtain one from :func:`open_pool`, or run it yourself.

    ``Pool(...)`` only records the options; :meth:`run` is the pool's life, and it
    follows Trio's start protocol, so a :class:`~nursemaid.Supervisor` can run a
    pool as a child::

        pool = Pool([sys.executable, "worker.py"], size=4)
        ChildSpec("workers", pool.run)          # or: await nursery.start(pool.run)

    Arguments are those of :func:`open_pool`.
    """

    def __init__(
        self,
        worker: Sequence[str] | WorkerFactory,
        *,
        size: int,
        lazy: bool = DEFAULTS.lazy,
        init_timeout: float = DEFAULTS.init_timeout,
        checkout_timeout: float = DEFAULTS.checkout_timeout,
        max_uses: int | None = DEFAULTS.max_uses,
        idle_timeout: float | None = DEFAULTS.idle_timeout,
        health_interval: float | None = DEFAULTS.health_interval,
        min_ready: int | None = None,
        envelope: Any = None,
        handle_checkout: CheckoutHook | None = None,
        handle_checkin: CheckinHook | None = None,
        subscribers: Iterable[Callable[[Transition | SessionMoved], object]] = (),
        close_grace: float = DEFAULTS.close_grace,
        intensity: int | None = None,
        period: float = DEFAULTS.period,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        codec: Any = "json",
        packet: int = 4,
        max_frame: int = DEFAULT_MAX_FRAME,
        shutdown: float | None = None,
    ) -> None:
        if isinstance(worker, str | bytes):
            raise TypeError(
                f"worker must be an argv list or a WorkerFactory (got the string {worker!r}); "
                "write a list: there is no shell"
            )
        self._factory: WorkerFactory
        if isinstance(worker, Sequence):
            self._factory = PortWorkers(
                tuple(str(a) for a in worker),
                env=env,
                cwd=cwd,
                codec=codec,
                packet=packet,
                max_frame=max_frame,
                envelope=envelope,
                shutdown=shutdown,
                name=name,
            )
        elif isinstance(worker, WorkerFactory):
            if envelope is not None:
                raise TypeError(
                    "envelope applies to argv workers only; an in-process WorkerFactory "
                    "speaks for itself (got envelope={envelope!r})"
                )
            self._factory = worker
        else:
            raise TypeError(
                "worker must be an argv list or an object with ping_op and "
                f"open_worker(worker_id) (a WorkerFactory); got {worker!r}"
            )
        for option, value in (("init_timeout", init_timeout), ("close_grace", close_grace)):
            _check_seconds(option, value)
        _check_seconds("checkout_timeout", checkout_timeout, allow_inf=True)
        if idle_timeout is not None:
            _check_seconds("idle_timeout", idle_timeout, positive=True)
        if health_interval is not None:
            _check_seconds("health_interval", health_interval, positive=True)
        if min_ready is not None and (
            isinstance(min_ready, bool) or not isinstance(min_ready, int) or not min_ready >= 0
        ):
            raise ValueError(f"min_ready must be None or an int >= 0 (got {min_ready!r})")
        self.name = name
        self._subscribers: list[Subscriber] = list(subscribers)
        # Each run gets a fresh core from these (see run()); this first one also
        # checks the options, so a bad size fails here, before anything runs.
        self._core_options: dict[str, Any] = {
            "lazy": lazy,
            "max_uses": max_uses,
            "intensity": DEFAULTS.intensity(size) if intensity is None else intensity,
            "period": period,
            "backoff": Backoff(DEFAULTS.backoff_first, DEFAULTS.backoff_max),
            "subscribers": self._subscribers,
            "confirm_moves": handle_checkout is not None,
        }
        self._core = PoolCore(size, self, **self._core_options)
        # Not running until run() begins: calls are refused (as between runs), so
        # nobody queues with no timer to time them out and no nursery to start
        # a lazy pool's workers in.
        self._core.phase = PoolPhase.CLOSED
        if min_ready is not None and min_ready > size:
            raise ValueError(f"min_ready must be <= size={size} (got {min_ready!r})")
        self._min_ready = size if min_ready is None else min_ready
        self._init_timeout = init_timeout
        self._checkout_timeout = checkout_timeout
        self._idle_timeout = idle_timeout
        self._health_interval = health_interval
        self._close_grace = close_grace
        self._handle_checkout = handle_checkout
        self._handle_checkin = handle_checkin
        self._hooked = handle_checkout is not None or handle_checkin is not None
        # Trio's clock; run() swaps in the running clock's own bound method (the same
        # time as trio.current_time(), without the run-context lookup on the hot path).
        self._clock: Callable[[], float] = _current_time
        # The census of port clients (Pool._crowded_by): the tasks that took a
        # worker since it began, when it began (perf_counter_ns), how long it
        # lasts, and whether the last one counted too many clients for the port's rule.
        self._clients: set[trio.lowlevel.Task] = set()
        self._census_ns = 0
        self._census_every = 0  # set at the first census, once ports are loaded
        self._crowded = False
        self._ping_op = self._factory.ping_op
        self._nursery: trio.Nursery | None = None
        # The context of the task running the pool (the supervised child's, when
        # there is one), captured in run(): every worker task starts in a copy of
        # it, whichever task asked for the worker. See spawn().
        self._context: contextvars.Context | None = None
        self._maintenance: trio.CancelScope | None = None
        self._timer = trio.CancelScope()  # _expire_waiters' scope, one per run
        self._timer_parked: trio.lowlevel.Task | None = None  # _expire_waiters, parked
        self._opened = trio.Event()
        self._close_requested = trio.Event()
        self._drained = trio.Event()
        self._closed = trio.Event()
        self._failure: StartError | None = None
        self._runs = 0  # runs begun; Invariant: one at a time (_nursery is set while one runs)

    def __repr__(self) -> str:
        core = self._core
        label = f" {self.name!r}" if self.name else ""
        return (
            f"<Pool{label} {core.phase.value} size={core.size} idle={len(core.idle)} "
            f"leased={core.leased} starting={core.starting} waiting={len(core.waiters)}>"
        )

    # ---- public API -----------------------------------------------------------------

    def checkout(
        self, *, session: Hashable | None = None, timeout: float | None = None
    ) -> AbstractAsyncContextManager[Lease]:
        """Lease one worker for the duration of an ``async with`` block.

        Example::

            async with pool.checkout(timeout=1.0) as lease:
                reply = await lease.request("add", [1, 2])

        Args:
            session: requests with the same session id go to the same worker
                while it lives (affinity); ``None``: any worker.
            timeout: seconds to wait for a worker (default: the pool's
                ``checkout_timeout``; ``math.inf``: wait as long as it takes).

        Raises:
            CheckoutTimeout: no worker became free in time (the waiter has left the
                queue), or ``handle_checkout`` was still running at the deadline (its
                worker stays unless the hook left a request on it unfinished).
            PoolClosed: the pool is closed or closing (``__cause__`` is the
                :class:`StartError` if the pool gave up).
            ValueError: *timeout* is negative, ``NaN`` or not a number (raised
                here, before anything is queued).

        When the block ends normally the worker goes back to the pool. When it ends
        with an exception — except :class:`~nursemaid.RemoteError` — or after a
        request (``lease.request`` or ``lease.port.request``) was cancelled or timed
        out without its late reply being read, the worker is removed and replaced.
        The exception comes out of the block unchanged.
        """
        if timeout is not None:
            check_timeout(timeout)
        return _Checkout(self, session, timeout)

    @_ki_protected
    async def execute(
        self,
        op: str,
        args: Any = None,
        *,
        session: Hashable | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the contract's signature)
    ) -> Any:
        """Check a worker out, send it *op* with *args*, check it in; return the result.

        Args:
            op, args: the request.
            session: as for :meth:`checkout`.
            timeout: bounds the whole call, queueing included (``None``: the
                checkout waits up to ``checkout_timeout`` and the request as long
                as it takes).

        Raises:
            CheckoutTimeout: no worker became free in time, or ``handle_checkout``
                was still running at the deadline (its worker stays unless the hook
                left a request on it unfinished).
            RequestTimeout: the worker did not answer in the time left (it is
                removed and replaced; if the time ran out before the request was
                written, nothing was sent and the worker stays).
            RemoteError: the worker's handler raised (the worker stays).
            WorkerCrashed: the worker died with the request in flight (with its
                ``.returncode`` and ``.stderr_tail``); it is replaced.
            PoolClosed: the pool is closed.
            ValueError: *timeout* is negative, ``NaN`` or not a number; nothing
                was sent and no worker was touched.
        """
        if timeout is not None and (timeout.__class__ is not float or not timeout >= 0):
            check_timeout(timeout)  # ValueError unless a valid int (a float >= 0 is valid)
        if self._hooked:
            return await self._execute_with_hooks(op, args, session, timeout)
        # The hot path: _acquire_slot and the checkin inlined, no Lease object, one
        # clock read per end (each helper call or coroutine layer costs ~0.1 µs, and
        # the pool's whole share of a round trip is a few µs; docs/performance.md).
        core = self._core
        phase = core.phase
        if phase is not _OPEN and phase is not _OPENING:
            raise self._closed_error()
        await _checkpoint_if_cancelled()  # never take a worker for a cancelled caller
        clock = self._clock
        start = clock()
        slot = core.checkout_nowait(session, start)
        crowded = True
        if slot is None:
            task = _current_task()
            slot = await self._wait(session, timeout, task)
            self._crowded_by(task)
        else:
            handoff = slot.handoff
            if handoff is not None:  # a port (see the end)
                task = _current_task()
                handoff(task)
                crowded = self._crowded_by(task)
        waited = True
        try:
            if timeout is not None:
                if crowded and slot.owe_turn is not None:
                    slot.owe_turn()
                left = start + timeout - clock()
                result = await slot.resource.request(op, args, timeout=left if left > 0 else 0.0)
            elif slot.request_then_yield is not None:  # a port or in-process worker: see the end
                result, waited = await slot.request_then_yield(op, args)
            else:
                result = await slot.resource.request(op, args)
        except RemoteError:
            self._checkin(slot, None)
            raise
        except BaseException as exc:
            if (isinstance(exc, Exception) or _harmless(exc)) and _untouched(slot.resource):
                self._checkin(slot, None)  # nothing was sent, or nothing is owed
            else:
                self._checkin(slot, f"its lease ended with a request in flight ({_describe(exc)})")
            raise
        # _checkin, inlined
        now = clock()
        if core.begin_checkin(slot, now):
            handoff = slot.handoff
            if handoff is not None:
                handoff(slot.home)
            core.finish_checkin(slot, None, now)
        if core.phase is PoolPhase.CLOSING and not core.leased:
            self._drained.set()
        if not waited:
            # The call's schedule point, after the checkin: the worker is idle
            # again before we let other tasks run, so the next client takes it
            # without waiting, and the most recently used worker (warm in the
            # CPU's caches, top of the idle stack) serves again (docs/pool.md).
            # A port owes it at most once per 0.25 ms (Port._owes_turn), but only
            # while the pool has few clients (_crowded_by).
            owes_turn = slot.owes_turn
            if owes_turn is not None and crowded:
                slot.owe_turn()  # and owes_turn records the turn, as for any other
            if owes_turn is None or owes_turn(False):
                await _cancel_shielded_checkpoint()
        return result

    async def _execute_with_hooks(
        self,
        op: str,
        args: Any,
        session: Hashable | None,
        timeout: float | None,  # noqa: ASYNC109 (execute's own, passed on)
    ) -> Any:
        deadline = math.inf if timeout is None else _current_time() + timeout
        lease = await self._acquire(session, timeout)
        try:
            result = await lease.request(
                op, args, timeout=None if timeout is None else max(0.0, deadline - _current_time())
            )
        except BaseException as exc:
            # The refinement execute makes without hooks too: an error before the
            # request was written leaves the worker as it was, so it stays; the
            # hook still sees the error.
            slot = lease._slot
            sent_nothing = (
                slot is not None
                and (isinstance(exc, Exception) or _harmless(exc))
                and _untouched(slot.resource)
            )
            await self._release(lease, exc, sent_nothing=sent_nothing)
            raise
        await self._release(lease, None)
        return result

    def end_session(self, session: Hashable) -> None:
        """Forget *session*'s worker: its next request is a new session's.

        The pool remembers every session it has seen (about a hundred bytes each)
        until this is called: after the session's worker has gone too (so that
        its next request can say, with a :class:`SessionMoved`, that it moved),
        and across the pool's runs. Call it when a session is over, as you would
        tell the worker to drop the session's state; a session's clients already
        queued for its worker still get that worker. Ending a session the pool
        does not know does nothing.
        """
        self._core.end_session(session)

    def statistics(self) -> PoolStatistics:
        """Return a frozen snapshot: counts, per-worker states, wait and lease times."""
        core = self._core
        workers = tuple(
            WorkerInfo(slot.id, slot.life.state, slot.uses, getattr(slot.resource, "pid", None))
            for slot in core.workers.values()
        )
        stopping = sum(1 for w in workers if w.state is WorkerState.STOPPING)
        return PoolStatistics(
            size=core.size,
            idle=len(core.idle),
            leased=core.leased,
            checking=core.checking,
            starting=core.starting,
            stopping=stopping,
            waiting=len(core.waiters),
            restarts=core.restarts,
            workers=workers,
            checkouts=core.checkouts,
            waits=core.wait_count,
            wait_time_total=core.wait_total,
            wait_time_max=core.wait_max,
            lease_time_total=core.lease_total,
            lease_time_max=core.lease_max,
        )

    def subscribe(
        self, subscriber: Callable[[Transition | SessionMoved], object]
    ) -> Callable[[], None]:
        """Call *subscriber* with every worker :class:`Transition` and every
        :class:`SessionMoved`, synchronously, as they happen. Returns an unsubscribe
        function.

        A subscriber must not block. One that raises is logged and unsubscribed
        (as Trio does with instruments): the pool's state has already changed.
        """
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    @_ki_protected
    async def aclose(self) -> None:
        """Close the pool: refuse checkouts, wait up to the close grace for leases, stop
        every worker, and return when all are reaped. Idempotent.

        An eager pool still opening (waiting for ``min_ready`` workers) stops
        waiting and closes: its run ends normally, not with the ``StartError``
        its failing handshakes might have led to.
        """
        self._close_requested.set()
        self._opened.set()  # an eager pool still opening stops waiting for its workers
        if self._runs:
            await self._closed.wait()

    # ---- running --------------------------------------------------------------------

    @_ki_protected
    async def run(self, *, task_status: trio.TaskStatus[Pool] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the pool until :meth:`aclose` (or cancellation); a valid supervisor ``start``.

        Starts the workers (an eager pool waits until ``min_ready`` of them are
        ready), calls ``task_status.started(self)``, then serves. On the way out it
        closes gracefully: waiters get :class:`PoolClosed`, leases get up to the
        grace (the enclosing supervised child's ``shutdown`` when there is one, else
        ``close_grace``) to end, then every worker is stopped and reaped.

        A pool can run again after a run ended, however it ended — so a
        supervisor restarts ``ChildSpec("workers", pool.run)`` after the pool gave
        up, as it restarts any child. Each run starts from fresh state (new
        workers, counters and restart window; worker ids go on from the last
        run's), and the :class:`Pool` object stays the handle clients hold:
        before the first run and between runs its calls raise
        :class:`PoolClosed`; once a run has begun they are served (or queue while
        an eager pool opens).

        Raises:
            StartError: the worker program could not be kept running (before
                ``started``: the eager pool could not open).
            UsageError: this pool is running already (one run at a time).
        """
        if self._nursery is not None:
            raise UsageError(
                f"{self!r} is running already; a pool runs once at a time "
                "(run it again after this run ended, or create another Pool)"
            )
        if self._runs:
            self._fresh_run()
        else:
            self._core.phase = PoolPhase.OPENING
        self._runs += 1
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._context = contextvars.copy_context()
                self._clock = trio.lowlevel.current_clock().current_time
                self._core.open(_current_time())
                if self._checkout_timeout != math.inf:
                    nursery.start_soon(
                        self._expire_waiters, self._timer, name="nursemaid.pool.timer"
                    )
                try:
                    if self._min_ready == 0 or self._core.lazy:
                        self._opened.set()
                    await self._opened.wait()
                    if self._failure is None:
                        if not self._close_requested.is_set():  # aclose() came while opening
                            self._core.mark_open()
                            if self._idle_timeout is not None or self._health_interval is not None:
                                scope = self._maintenance = trio.CancelScope()
                                nursery.start_soon(
                                    self._maintain, scope, name="nursemaid.pool.maintain"
                                )
                        task_status.started(self)
                        await self._close_requested.wait()
                finally:
                    if self._maintenance is not None:
                        self._maintenance.cancel()  # no health check during the drain
                    self._timer.cancel()  # the drain answers every waiter at once
                    with trio.CancelScope(shield=True):
                        await self._drain()
        finally:
            self._nursery = None
            self._clients.clear()  # the census keeps no task of a finished run alive
            self._core.phase = PoolPhase.CLOSED
            self._closed.set()
        if self._failure is not None:
            raise self._failure

    def _fresh_run(self) -> None:
        """Forget the last run: a new core (ids continue) and new events."""
        last = self._core
        self._core = PoolCore(last.size, self, first_id=last.next_id, **self._core_options)
        # Every worker of the last run is gone: each session's next request gets a
        # new worker, and says so with a SessionMoved as after any other death.
        self._core.sessions = last.sessions
        self._maintenance = None
        self._timer = trio.CancelScope()
        self._timer_parked = None
        self._opened = trio.Event()
        self._close_requested = trio.Event()
        self._drained = trio.Event()
        self._closed = trio.Event()
        self._failure = None

    async def _drain(self) -> None:
        core = self._core
        core.close(_current_time())
        if core.leased:
            inherited = current_shutdown()
            grace = self._close_grace if inherited is None else inherited
            with trio.move_on_after(grace):
                await self._drained.wait()
            core.stop_leased(_current_time())

    @_ki_protected
    async def _maintain(self, scope: trio.CancelScope) -> None:
        """Retire idle workers after ``idle_timeout``; ping idle workers periodically."""
        with scope:
            core = self._core
            idle_timeout = self._idle_timeout
            interval = self._health_interval
            next_health = _current_time() + interval if interval is not None else math.inf
            while True:
                now = _current_time()
                wake = next_health
                if idle_timeout is not None:
                    wake = min(wake, now + idle_timeout)
                    for slot in list(core.idle):
                        expires = slot.idle_since + idle_timeout
                        if expires <= now:
                            core.retire_idle(slot, f"idle for {idle_timeout} s", now)
                        else:
                            wake = min(wake, expires)
                if interval is not None and now >= next_health:
                    await self._health_check()
                    next_health = _current_time() + interval
                    wake = min(wake, next_health)
                await trio.sleep_until(wake)

    async def _health_check(self) -> None:
        core = self._core
        me = _current_task()
        for slot in list(core.idle):
            if slot.life.state is not WorkerState.IDLE or core.phase is not PoolPhase.OPEN:
                continue
            if not core.begin_check(slot, _current_time()):
                continue
            _hand(slot, me)
            # Invariant: the check ends whatever happens, cancellation included (a
            # ping cut short leaves a reply in flight: the worker is removed then).
            failure: str | None = "health check cancelled with its ping in flight"
            ended = False  # else cancelled: only the pool's run ending cancels a check
            try:
                with trio.fail_after(self._init_timeout):
                    await slot.resource.request(self._ping_op)
                failure = None
                ended = True
            except Exception as exc:
                failure = f"health check failed: {_describe(exc)}"
                ended = True
            finally:
                # Died under its ping (a crash), or broke the protocol (a failure)?
                failure, error = self._judge_death(slot, failure)
                # Home before the decision: passing may hand it to a waiter at once.
                _hand(slot, slot.home)
                core.end_check(slot, failure, self._clock(), replace=ended, error=error)

    @_ki_protected
    async def _run_worker(self, slot: WorkerSlot, delay: float) -> None:
        """One worker's task: create it, handshake, wait; leaving is its close sequence."""
        core = self._core
        slot.home = _current_task()
        try:
            # Two scopes: `starting` lets a stop interrupt the backoff and the spawn;
            # once the worker exists, a stop cancels only `living` (the handshake and
            # the wait), so the factory's context is left normally and runs its whole
            # close sequence rather than being torn down by a cancellation.
            with trio.CancelScope() as starting:
                slot.scope = starting
                if slot.life.state is not WorkerState.STARTING:
                    return  # stopped before this task ran
                if delay:
                    await trio.sleep(delay)
                try:
                    async with self._factory.open_worker(slot.id) as worker:
                        with trio.CancelScope() as living:
                            slot.scope = living
                            slot.resource = worker
                            slot.handoff = getattr(worker, "_transfer", None)
                            slot.request_then_yield = getattr(worker, "_request_then_yield", None)
                            slot.owes_turn = getattr(worker, "_owes_turn", None)
                            slot.owe_turn = getattr(worker, "_owe_turn", None)
                            if core.spawned(slot, _current_time()):
                                await self._live(slot, worker)
                        slot.scope = starting
                except Exception as exc:
                    # Spawning failed, or the factory's worker raised while waiting.
                    self._worker_raised(slot, exc)
        finally:
            slot.scope = None
            core.exited(slot, _current_time())
            self._after_checkin()

    async def _live(self, slot: WorkerSlot, worker: PoolWorker) -> None:
        """Handshake, then wait for the worker to die on its own (a stop cancels this)."""
        core = self._core
        try:
            with trio.fail_after(self._init_timeout):
                await worker.request(self._ping_op)
        except Exception as exc:
            broke = getattr(worker, "_closed_how", None) == "protocol"
            if isinstance(exc, trio.TooSlowError) and broke:
                # init_timeout cut the port's wait for the exit status of a worker
                # that broke the protocol: that, not silence, is what happened.
                reason = getattr(worker, "close_reason", "it broke the protocol")
                what = f"handshake ({self._ping_op!r}) failed: {reason}"
            elif isinstance(exc, trio.TooSlowError):
                what = (
                    f"handshake ({self._ping_op!r}) got no reply within "
                    f"init_timeout={self._init_timeout} s"
                )
            else:
                what = f"handshake ({self._ping_op!r}) failed: {_describe(exc)}"
            self._start_failed(slot, what, exc, worker)
            return
        if not core.ready(slot, _current_time()):
            return
        # Handshakes that succeeded, less the workers that then crashed or were
        # removed for their own fault: those are not ready (PoolCore.ready_lost).
        if core.phase is PoolPhase.OPENING and core.ready_once - core.ready_lost >= self._min_ready:
            self._opened.set()
        status = await worker.wait_exited()
        if getattr(worker, "_closed_how", None) == "cut":
            # A client's cancellation tore a frame and the port closed the worker's
            # stdin: its exit is our doing, not a crash. The lease's checkin
            # removes it, uncounted (a stop cancels this wait).
            await trio.sleep_forever()
        self._report_exit(slot, worker, status)

    def _report_exit(self, slot: WorkerSlot, worker: Any, status: int) -> None:
        """The worker died on its own: a crash, counted against the restart window.

        Two tasks may report it: the worker's own (:meth:`_live`), and the one whose
        lease or health ping the death cut short (:meth:`_judge_death`). The death
        wakes both in the same batch of Trio's scheduler, in either order; whoever
        runs first makes the worker ``FAILED`` and the crash counts, and the second
        report finds it no longer live and does nothing. (Judged by who came first,
        an in-process worker's crash would count half the time.)
        """
        cause = _with_tail(f"worker exited with status {status}", worker)
        self._core.crashed(slot, cause, _start_error(slot, cause, None, worker), _current_time())
        self._after_checkin()

    def _judge_death(
        self, slot: WorkerSlot, remove: str | None
    ) -> tuple[str | None, StartError | None]:
        """Before deciding a worker's fate after a lease (or a health ping): when it
        ended badly (*remove* set) or the worker can serve no more, one that has exited
        is reported as crashed (:meth:`_report_exit`); one that lives but cannot
        serve (its port closed under the lease, the block having caught the error)
        is removed.

        Returns the removal reason, and the error to count against the restart
        window when the worker itself is at fault though alive: it broke the
        protocol (a garbage frame, a reply to an id nobody asked for). That is a
        failure as a crash is — a program that answers every request with garbage
        exhausts the pool's intensity, as one that crashes on every request does,
        instead of being replaced for ever. (A request timeout is not counted: the
        client chose the timeout.)
        """
        worker = slot.resource
        if remove is None and not _gone(worker):
            return None, None  # the usual checkin: nothing to judge
        from nursemaid.workers._port import Port  # cold path; see _gone

        status = None
        if isinstance(worker, InProcessWorker) or (
            isinstance(worker, Port) and worker._closed_how != "cut"  # its exit: our doing
        ):
            status = worker.returncode  # a port polls for it: cold paths only
        if status is not None:
            self._report_exit(slot, worker, status)  # FAILED: begin_checkin now refuses
            return remove, None
        if isinstance(worker, Port) and worker._closed_how in ("protocol", "lost"):
            closed = f"its port was closed during the lease ({worker.close_reason})"
            cause = f"pool worker {slot.id}: {worker.close_reason}"
            return remove or closed, _start_error(slot, cause, None, worker)
        if remove is None:
            return f"its port was closed during the lease ({_describe_closed(worker)})", None
        return remove, None

    def _worker_raised(self, slot: WorkerSlot, exc: Exception) -> None:
        if slot.life.state in (WorkerState.STARTING, WorkerState.HANDSHAKING):
            self._start_failed(slot, f"could not start: {_describe(exc)}", exc, None)
        else:
            cause = f"worker failed: {_describe(exc)}"
            error = _start_error(slot, cause, exc, None)
            self._core.crashed(slot, cause, error, _current_time())
            self._after_checkin()

    def _start_failed(self, slot: WorkerSlot, what: str, exc: BaseException, worker: Any) -> None:
        cause = _with_tail(f"pool worker {slot.id} {what}", worker)
        error = _start_error(slot, cause, exc, worker)
        logger.warning("%s", cause)
        self._core.init_failed(slot, cause, error, _current_time())

    def _after_checkin(self) -> None:
        core = self._core
        if core.phase is PoolPhase.CLOSING and not core.leased:
            self._drained.set()

    # ---- checkout and checkin (the hot path) ----------------------------------------

    async def _acquire_slot(
        self,
        session: Hashable | None,
        timeout: float | None,  # noqa: ASYNC109 (checkout's own, passed on)
        deadline: float | None = None,
    ) -> WorkerSlot:
        """Lease a worker to the calling task: at once if one is idle, else queue
        until *deadline* (default: *timeout* from now)."""
        core = self._core
        phase = core.phase
        if phase is not _OPEN and phase is not _OPENING:
            raise self._closed_error()
        await _checkpoint_if_cancelled()
        task = _current_task()
        slot = core.checkout_nowait(session, self._clock())
        if slot is None:
            slot = await self._wait(session, timeout, task, deadline)
            self._crowded_by(task)
            return slot
        _hand(slot, task)
        if slot.owe_turn is not None and self._crowded_by(task):
            # The lease's first request that does not wait gives a turn while the
            # lease holds the worker, so that clients who want it queue for it.
            slot.owe_turn()
        return slot

    def _crowded_by(self, task: trio.lowlevel.Task) -> bool:
        """Count *task* as a client of the pool's ports; return whether the last
        census counted too many clients for the port's turn rule.

        A port client that skips its turn (:meth:`Port._owes_turn`) holds the CPU
        for up to 0.25 ms, so every other client may wait 0.25 ms for each such
        client: calls are served in bursts. And when clients outnumber workers,
        a client that did not give up the CPU after its checkin takes its worker
        again and again before the clients it keeps from running can queue for
        it, so they are not served in the order they came. So the pool keeps the
        port's rule only while the last census counted at most ``_FEW_CLIENTS``
        clients, and no more than ``size``; else every call that does not wait
        gives a turn, trading some throughput for latency that does not grow
        with the number of clients.

        A census lasts ``(min(size, _FEW_CLIENTS) + 1) * 0.25 ms``: about long
        enough to see one client too many even while clients run in bursts (each
        burst may run one call past its 0.25 ms). A census that lasted over twice
        that (a stall: another task or process held the CPU) may say crowded but
        not the opposite: it saw too little to clear the pool.
        """
        now = _ns()
        clients = self._clients
        elapsed = now - self._census_ns
        every = self._census_every
        if elapsed >= every:
            limit = min(self._core.size, _FEW_CLIENTS)
            if not every:
                from nursemaid.workers._port import _TURN_EVERY_NS

                every = self._census_every = (limit + 1) * _TURN_EVERY_NS
            crowded = len(clients) > limit
            self._crowded = crowded or (self._crowded and elapsed > 2 * every)
            clients.clear()
            self._census_ns = now
        clients.add(task)
        return self._crowded

    async def _acquire(
        self,
        session: Hashable | None,
        timeout: float | None,  # noqa: ASYNC109 (checkout's own, passed on)
    ) -> Lease:
        """Lease a worker that ``handle_checkout`` accepts, within one deadline.

        Invariant: the whole checkout — the queueing, every worker the hook
        refuses, and every run of the hook itself — ends by ``timeout`` (else the
        pool's ``checkout_timeout``) after it began. A hook still running at the
        deadline is cancelled and the client gets :class:`CheckoutTimeout`.

        Invariant: a worker leased here is either returned in the lease or handed
        back to the pool, whatever ends the hook — a verdict, the deadline, the
        caller's cancellation, any other exception. The pool judges a hook cut
        short as it judges a client's block that ends early: by what it left on the
        worker. Cut short by the deadline or a cancellation with no request of its
        unfinished, the worker is fine and stays; with a request in flight or
        abandoned, it is busy with it and is removed and replaced. Any other
        exception out of the hook (``KeyboardInterrupt``, ...) removes it: nobody
        knows its state. Those removals are counted in ``restarts`` but not against
        the restart window: the checkout ends with them, so nothing spins, and the
        worker did not fail — the client's time ran out (NimblePool likewise just
        terminates and replaces the worker of a client that timed out or died
        holding it). Counting them would let clients with short timeouts make the
        pool give up on everybody. A hook that returns ``Keep()`` with a request of
        its unfinished refuses the worker in effect: it is removed as a refusal is.
        """
        if self._handle_checkout is None:  # hooked by handle_checkin only: as checkout()
            return Lease(await self._acquire_slot(session, timeout), session)
        seconds = self._checkout_timeout if timeout is None else timeout
        deadline = _current_time() + seconds
        while True:
            slot = await self._acquire_slot(session, seconds, deadline)
            lease = Lease(slot, session)
            began = _current_time()
            try:
                with trio.move_on_at(deadline) as hook_scope:
                    reason = await self._run_hook("handle_checkout", self._handle_checkout, lease)
            except BaseException as exc:  # hand the worker back, then re-raise
                lease._slot = None
                if _cancellation(exc):  # a nursery in the hook raises a group of them
                    remove = _unfinished(lease, slot, "handle_checkout (cancelled)", "")
                else:
                    remove = (
                        f"handle_checkout was interrupted ({type(exc).__name__}); "
                        "the worker's state is unknown"
                    )
                self._core.confirm_session(slot, _current_time())  # the hook ran there
                self._checkin(slot, remove)
                raise
            if hook_scope.cancelled_caught:
                lease._slot = None
                self._core.confirm_session(slot, _current_time())  # the hook ran there
                remove = _unfinished(
                    lease,
                    slot,
                    "handle_checkout",
                    f", cut short by the checkout's deadline ({seconds} s)",
                )
                if remove is None and _gone(slot.resource):  # its frame cut by the deadline
                    closed = _describe_closed(slot.resource)
                    remove = f"its port closed in handle_checkout ({closed})"
                self._checkin(slot, remove)
                fate = (
                    "it is removed and replaced, as it was still busy with a request the hook made"
                    if remove is not None
                    else "the worker had nothing unfinished and stays in the pool"
                )
                raise CheckoutTimeout(
                    f"the checkout ran out of time in handle_checkout: the hook held worker "
                    f"{slot.id} for {_current_time() - began:.6g} s of the checkout's "
                    f"{seconds} s and was cancelled; {fate}; make the hook return sooner, "
                    "or raise the checkout timeout"
                )
            if reason is None:
                reason = _unfinished(lease, slot, "handle_checkout returned Keep() but", "")
            if reason is None and _gone(slot.resource):
                # The hook's own request closed the port (cut, lost, garbage): never
                # hand it on. A refusal in effect, counted as one (a death is counted
                # as a crash instead, by the checkin's judgement).
                reason = f"its port closed in handle_checkout ({_describe_closed(slot.resource)})"
            if reason is None:
                self._core.confirm_session(slot, _current_time())
                return lease
            # The hook removed this worker: take the next one (the waiter's place in
            # the queue is not kept — NimblePool does the same). The removal counts
            # against the restart window: a hook that refuses every worker makes the
            # pool give up (the client then gets PoolClosed) instead of spinning.
            lease._slot = None
            # The session never ran on the refused worker: it stays bound where it
            # was (or nowhere), and one SessionMoved comes when a worker is kept.
            self._core.refuse_session(slot)
            cause = f"handle_checkout removed worker {slot.id}: {reason}"
            self._checkin(slot, reason, failure=_start_error(slot, cause, None, None))

    async def _wait(
        self,
        session: Hashable | None,
        timeout: float | None,  # noqa: ASYNC109 (checkout's own, passed on)
        task: Any,
        deadline: float | None = None,
    ) -> WorkerSlot:
        """Queue for a worker until *deadline* (default: *timeout* from now)."""
        core = self._core
        waiter = Waiter(session, task)
        now = _current_time()

        def abort(_: object) -> trio.lowlevel.Abort:
            core.cancel(waiter)
            return trio.lowlevel.Abort.SUCCEEDED

        slot: WorkerSlot
        if timeout is None and deadline is None:
            # The pool's own checkout_timeout: the pool's timer task keeps every such
            # deadline (_expire_waiters), which costs far less than a cancel scope
            # per wait (docs/performance.md, "One timer per pool for queued clients").
            core.enqueue(waiter, now, now + self._checkout_timeout)
            timer = self._timer_parked
            if timer is not None:
                self._timer_parked = None
                trio.lowlevel.reschedule(timer)
            slot = await trio.lowlevel.wait_task_rescheduled(abort)
            return slot
        core.enqueue(waiter, now)
        seconds = self._checkout_timeout if timeout is None else timeout
        if deadline is None:
            deadline = now + seconds
        with trio.move_on_at(deadline):
            slot = await trio.lowlevel.wait_task_rescheduled(abort)
            return slot
        raise self._checkout_timeout_error(seconds)

    def _checkout_timeout_error(self, seconds: float) -> CheckoutTimeout:
        core = self._core
        return CheckoutTimeout(
            f"no worker became free within {seconds} s "
            f"({core.size} workers: {core.leased} leased, {core.starting} starting"
            f"{f', {core.checking} under health check' if core.checking else ''}; "
            f"{len(core.waiters)} other clients waiting); "
            "raise the checkout timeout or the pool size, or shorten the leases"
        )

    @_ki_protected
    async def _expire_waiters(self, scope: trio.CancelScope) -> None:
        """Time out the clients queued under ``checkout_timeout``: one timer for them all.

        Their deadlines grow in queue order, so the timer sleeps until the first
        one; a client served before then costs it nothing. With nobody queued it
        parks, and the next client to queue wakes it.
        """

        def abort(_: object) -> trio.lowlevel.Abort:
            self._timer_parked = None
            return trio.lowlevel.Abort.SUCCEEDED

        with scope:
            core = self._core
            while True:
                wake = core.expire(_current_time())  # time_out() below, for each
                if wake == math.inf:
                    self._timer_parked = _current_task()
                    await trio.lowlevel.wait_task_rescheduled(abort)
                else:
                    await trio.sleep_until(wake)

    async def _release(
        self, lease: Lease, exc: BaseException | None, *, sent_nothing: bool = False
    ) -> None:
        """End *lease*: run ``handle_checkin`` (if any), then keep or remove the worker.

        *sent_nothing*: ``execute`` knows *exc* came before its one request was
        written (see :func:`_untouched`), so *exc* alone does not remove the worker.

        Invariant: the hook runs inside the lease, as ``handle_checkout`` does — the
        lease still valid, the port still owned by this (the client's) task — and
        the lease ends after it, whatever ends the hook: the lease is unusable, the
        port goes home, the worker leaves ``RETURNING``. A request the hook left
        unfinished removes the worker, as the client's own does.
        """
        slot = lease._slot
        if slot is None:
            return
        remove: str | None = None
        if sent_nothing:
            lease._in_flight = 0  # the request raised before it was written
        else:
            remove = _unfinished(lease, slot, "its lease", f" ({_describe(exc)})")
            if remove is None and exc is not None and not _harmless(exc):
                remove = f"its lease ended with {_describe(exc)}"
        if self._handle_checkin is None:
            lease._slot = None
            self._checkin(slot, remove)
            return
        core = self._core
        remove, failure = self._judge_death(slot, remove)
        if not core.begin_checkin(slot, _current_time()):
            lease._slot = None
            self._after_checkin()
            return  # it crashed or was stopped while leased
        # Bounded, and shielded so that it also runs for a cancelled client: Trio's
        # rule for clean-up. The client waits at most init_timeout here; a pool that
        # closes meanwhile waits for it as for any lease, up to its close grace.
        # RETURNING keeps the worker from every other client while the hook uses it.
        try:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(self._init_timeout) as scope:
                    verdict = await self._run_hook(
                        "handle_checkin", self._handle_checkin, lease, exc
                    )
                if scope.cancelled_caught:
                    verdict = f"handle_checkin did not return within {self._init_timeout} s"
        except BaseException as interrupt:  # poison-and-re-raise (KeyboardInterrupt, ...)
            self._end_hooked_lease(
                lease,
                slot,
                f"handle_checkin was interrupted ({type(interrupt).__name__}); "
                "the worker's state is unknown",
                failure,
            )
            raise
        # The block's verdict first (a hook cannot clean a worker the client left
        # dirty: an in-process worker's abandoned requests never go down), then the
        # hook's answer, then what the hook itself left unfinished on the worker.
        if remove is None:
            remove = verdict
        if remove is None:
            remove = _unfinished(lease, slot, "handle_checkin", "")
        # Again: the hook's own request may have closed the port, or the worker died.
        remove, judged = self._judge_death(slot, remove)
        self._end_hooked_lease(lease, slot, remove, failure or judged)

    def _end_hooked_lease(
        self,
        lease: Lease,
        slot: WorkerSlot,
        remove: str | None,
        failure: StartError | None = None,
    ) -> None:
        """After ``handle_checkin``: end the lease, send the port home, decide."""
        lease._slot = None
        # Home before the decision: keeping the worker may hand it to a waiter at
        # once, and that hand-off must be the last word on who owns the port.
        _hand(slot, slot.home)
        self._core.finish_checkin(slot, remove, _current_time(), failure=failure)
        self._after_checkin()

    def _checkin(
        self, slot: WorkerSlot, remove: str | None, *, failure: StartError | None = None
    ) -> None:
        """End a lease synchronously: ownership home, then keep or remove the worker."""
        core = self._core
        remove, judged = self._judge_death(slot, remove)
        failure = failure or judged
        now = self._clock()
        if core.begin_checkin(slot, now):
            handoff = slot.handoff
            if handoff is not None:
                handoff(slot.home)
            core.finish_checkin(slot, remove, now, failure=failure)
        # else: it crashed or was stopped while leased; nothing to hand back
        if core.phase is PoolPhase.CLOSING and not core.leased:
            self._drained.set()

    @_ki_unprotected
    async def _run_hook(self, name: str, hook: Callable[..., Any], *args: Any) -> str | None:
        try:
            result = hook(*args)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            logger.exception("%s raised; the worker is removed", name)
            return f"{name} raised {_describe(exc)}"
        return _hook_verdict(name, result)

    def _closed_error(self) -> PoolClosed:
        if self._failure is not None:
            error = PoolClosed(f"the pool gave up and closed: {self._failure.args[0]}")
            error.__cause__ = self._failure
            return error
        if not self._runs:
            return PoolClosed(
                f"{self!r} is not running yet; checkouts are refused until its run() "
                "begins (open_pool(), nursery.start(pool.run) or a supervisor's ChildSpec)"
            )
        return PoolClosed(f"{self!r} is closed; checkouts are refused")

    # ---- PoolEffects: what the core asks of the shell (never blocks) -----------------

    def grant(self, waiter: Waiter, slot: WorkerSlot) -> None:
        handoff = slot.handoff
        if handoff is not None:
            handoff(waiter.task)
        trio.lowlevel.reschedule(waiter.task, outcome.Value(slot))

    def spawn(self, slot: WorkerSlot, delay: float) -> None:
        # The core asks for a worker from whichever task it is serving: the pool's,
        # a worker's, or a client's checkin that removed a worker. start_soon copies
        # the *calling* task's contextvars, so a replacement started on a client's
        # path would inherit that client's context — and its port the default grace
        # instead of the supervised child's shutdown (current_shutdown()). Starting
        # every worker task inside the pool's captured context rules that out for
        # every path at once. (A copy, never entered by a task, so run() can enter it.)
        assert self._nursery is not None
        assert self._context is not None
        self._context.run(self._start_worker, self._nursery, slot, delay)

    def _start_worker(self, nursery: trio.Nursery, slot: WorkerSlot, delay: float) -> None:
        nursery.start_soon(self._run_worker, slot, delay, name=f"nursemaid.pool.worker.{slot.id}")

    def stop(self, slot: WorkerSlot) -> None:
        if slot.scope is not None:
            slot.scope.cancel()

    def reject(self, waiter: Waiter) -> None:
        trio.lowlevel.reschedule(waiter.task, outcome.Error(self._closed_error()))

    def time_out(self, waiter: Waiter) -> None:
        error = self._checkout_timeout_error(self._checkout_timeout)
        trio.lowlevel.reschedule(waiter.task, outcome.Error(error))

    def give_up(self, error: StartError) -> None:
        logger.error("%s", error)
        self._failure = error
        self._opened.set()
        self._close_requested.set()


def _hand(slot: WorkerSlot, task: Any) -> None:
    handoff = slot.handoff
    if handoff is not None:
        handoff(task)


def _unfinished(lease: Lease, slot: WorkerSlot, who: str, suffix: str) -> str | None:
    """Why the worker must go because a request on it was left unfinished, or None.

    A request of the lease's that raised without an answer is unfinished unless
    the worker can tell it left nothing owed (:func:`_untouched`): nothing was
    written, or a later request read and discarded its late reply.
    """
    if lease._running or (lease._in_flight and not _untouched(slot.resource)):
        return f"{who} ended with a request in flight{suffix}"
    abandoned = getattr(slot.resource, "abandoned_requests", 0)
    if abandoned:
        # A request made through lease.port was cancelled or timed out: the
        # worker is still busy with it, and its late reply is still to come.
        return f"{who} ended with {abandoned} abandoned request(s) still unanswered{suffix}"
    return None


def _harmless(exc: BaseException) -> bool:
    """Whether a lease ending with *exc* leaves its worker fit to keep.

    A ``RemoteError`` is the worker answering; a cancellation ends the client, not
    the worker. A group of only those (a nursery in the block, cancelled) is too.
    """
    if isinstance(exc, BaseExceptionGroup):
        return exc.split((RemoteError, trio.Cancelled))[1] is None
    return isinstance(exc, RemoteError | trio.Cancelled)


def _cancellation(exc: BaseException) -> bool:
    """Whether *exc* is a ``Cancelled``, or a group of nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return isinstance(exc, trio.Cancelled)


def _accountable(worker: Any) -> bool:
    """Whether *worker*, after a request of it raised, can say what is still owed:
    a port still open or an in-process worker still alive, whose
    ``abandoned_requests`` counts the requests given up on. Workers of other
    kinds cannot say: False, and the pool treats their request as unfinished."""
    from nursemaid.workers._port import Port, PortState

    if isinstance(worker, Port):
        return worker.state is PortState.OPEN
    if isinstance(worker, InProcessWorker):
        return worker.returncode is None
    return False


def _gone(worker: Any) -> bool:
    """Whether *worker* can serve no more, by attribute reads alone (this runs at
    every checkin): a port no longer open, an in-process worker that has exited.
    Workers of other kinds are taken to be alive (their task reports their death):
    their attributes mean what their factory says, not what a port's do."""
    if isinstance(worker, InProcessWorker):
        return worker.returncode is not None
    # Not imported for a pool that never made a port (an in-process one): the
    # port module and the protocol's envelopes cost some 25 ms to import. If
    # it is not loaded, this worker is no port.
    ports = sys.modules.get("nursemaid.workers._port")
    if ports is not None and isinstance(worker, ports.Port):
        return worker.state is not ports.PortState.OPEN or worker._exited.is_set()  # or reaped
    return False


def _describe_closed(worker: Any) -> str:
    return str(getattr(worker, "close_reason", "")) or "closed"


def _untouched(worker: Any) -> bool:
    """Whether a request that raised left *worker* as it was: accountable, with no
    request abandoned (nothing was sent, as for a ``LocalProtocolError`` or a
    timeout before the write, or nothing is owed any more)."""
    return _accountable(worker) and not worker.abandoned_requests


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no exception"
    text = str(exc).split("\nlast stderr lines:", 1)[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _with_tail(message: str, worker: Any) -> str:
    tail = ""
    if worker is not None:
        try:
            tail = worker.stderr_tail()
        except Exception:  # a factory's worker without a tail
            tail = ""
    tail = tail.rstrip("\n")
    return f"{message}\nlast stderr lines:\n{tail}" if tail else message


def _start_error(
    slot: WorkerSlot, cause: str, exc: BaseException | None, worker: Any
) -> StartError:
    returncode = getattr(worker, "returncode", None) if worker is not None else None
    tail = ""
    if isinstance(exc, WorkerError):
        returncode = exc.returncode if returncode is None else returncode
        tail = exc.stderr_tail
    if worker is not None:
        with suppress(Exception):
            tail = worker.stderr_tail() or tail
    message = cause.split("\nlast stderr lines:", 1)[0]
    if isinstance(returncode, int):
        # _describe(exc) kept the cause's own " (returncode N)": StartError adds it.
        message = message.removesuffix(f" (returncode {returncode})")
    error = StartError(
        message,
        child_id=slot.id,
        reason=exc,
        returncode=returncode if isinstance(returncode, int) else None,
        stderr_tail=tail,
        pid=getattr(worker, "pid", None),
    )
    if exc is not None:
        error.__cause__ = exc
    return error


def _check_seconds(
    option: str, value: object, *, allow_inf: bool = False, positive: bool = False
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        assert isinstance(value, int | float)
        ok = (value > 0 if positive else value >= 0) and (allow_inf or not math.isinf(value))
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{option} must be a number of seconds {bound} (got {value!r})")


# ---------------------------------------------------------------------------
# open_pool
# ---------------------------------------------------------------------------


@asynccontextmanager
async def open_pool(
    worker: Sequence[str] | WorkerFactory,
    *,
    size: int,
    lazy: bool = DEFAULTS.lazy,
    init_timeout: float = DEFAULTS.init_timeout,
    checkout_timeout: float = DEFAULTS.checkout_timeout,
    **options: Any,
) -> AsyncIterator[Pool]:
    """Run a :class:`Pool` for the duration of an ``async with`` block.

    Example::

        async with open_pool([sys.executable, "worker.py"], size=4) as pool:
            result = await pool.execute("add", [1, 2])

    Args:
        worker: an argv list (each worker is a :func:`~nursemaid.open_port` of it),
            or a :class:`WorkerFactory` for in-process workers.
        size: the most workers alive at once.
        lazy: start workers only when clients need them (default False: start all
            at once and open when ``min_ready`` are ready). (``lazy``,
            ``init_timeout`` and ``checkout_timeout`` are spelled out in the
            signature; every other option below is :class:`Pool`'s, passed on.)
        init_timeout: seconds a new worker has to answer its handshake ping
            (default 5.0); also bounds health pings and ``handle_checkin``.
        checkout_timeout: default seconds a client waits for a worker (5.0).
        max_uses: stop a worker after this many leases (default None: never).
        idle_timeout: stop a worker idle this long (default None: never); an
            eager pool replaces it, a lazy one shrinks.
        health_interval: seconds between pings of idle workers (default 30.0;
            None: never). A worker that fails its ping is replaced.
        min_ready: an eager pool opens once this many workers are ready (default:
            all of them); the rest keep starting.
        envelope: the request envelope of argv workers (default: the standard
            one; :class:`~nursemaid.protocol.CommandEnvelope` for programs speaking
            ``{id, command, args}``). Its ``ping_op`` is the handshake.
        handle_checkout: ``(lease) -> Keep() | Remove(reason)`` (may be async),
            run in the client's task after a worker is leased, within the
            checkout's deadline; ``Remove`` replaces the worker and the client gets
            another. A hook still running at the deadline is cancelled and the
            client gets :class:`~nursemaid.CheckoutTimeout`; the worker stays unless
            the hook left a request on it unfinished (then it is replaced).
        handle_checkin: ``(lease, exception_or_None) -> Keep() | Remove(reason)``
            (may be async), run in the client's task when its block ends (or
            ``execute``'s request is done), shielded, within ``init_timeout``. The
            lease lasts until it returns, so it may use ``lease.request`` and
            ``lease.port`` (say, to reset the worker); a request it leaves
            unfinished removes the worker. Any other return value (or an
            exception) removes the worker with an ``Expected:`` / ``Got:``
            message; the pool carries on.
        subscribers: callables subscribed (as with :meth:`Pool.subscribe`) before
            the first worker starts, so they see every transition.
        close_grace: seconds closing waits for leases before stopping them
            (default 5.0; inside a supervised child, its ``shutdown`` instead).
        intensity, period: more than ``intensity`` worker failures within
            ``period`` seconds, or more than ``intensity`` failed starts in a row,
            and the pool gives up with :class:`~nursemaid.StartError` (defaults:
            ``max(3, 2 * size)`` and 5.0).
        name: a name for logs and reprs (and the ports' loggers).
        env, cwd, codec, packet, max_frame, shutdown: passed to each
            :func:`~nursemaid.open_port` (argv workers only).

    Raises:
        StartError: an eager pool could not open, or the pool gave up while
            running (the block is cancelled and this comes out of it).

    Exceptions come out as themselves, never wrapped in an exception group: the
    block's own exception, or the pool's :class:`~nursemaid.StartError`. When
    both happen (the pool gives up, and the block, cancelled, raises in its
    clean-up — or raises the :class:`~nursemaid.PoolClosed` it was given), the
    ``StartError`` comes out, as :func:`~nursemaid.open_supervisor`'s error does:
    the workers are gone, and ``except StartError`` must always see it. The
    block's exception is its ``__context__``, named in a note. A
    ``KeyboardInterrupt``, ``SystemExit`` or outside ``Cancelled`` is never
    folded away: it passes through (beside the ``StartError`` in Trio's group,
    should both happen).
    """
    pool = Pool(
        worker,
        size=size,
        lazy=lazy,
        init_timeout=init_timeout,
        checkout_timeout=checkout_timeout,
        **options,
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(pool.run)
            try:
                yield pool
            finally:
                pool._close_requested.set()
    except BaseExceptionGroup as group:
        failure = pool._failure
        (first, *others) = group.exceptions
        if failure is not None and not others and first is not failure:
            # The pool gave up, but the block's own exception (most often the
            # PoolClosed it was given) reached the nursery first, and the
            # cancellation that caused ended the pool's run before the run could
            # raise its StartError: the StartError comes out all the same.
            both = BaseExceptionGroup("the pool gave up", [first, failure])
            _raise_failure_over_block(both, failure)
        _raise_if_single(group)
        _raise_failure_over_block(group, failure)
        raise


_lazy.show_public_module(globals(), "nursemaid.workers")
