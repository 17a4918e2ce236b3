"""The pool state machine: checkout and init races, hunted, for any pool configuration.

``pool_state_machine(target, size=..., lazy=..., **pool_options)`` returns a
:class:`~nursemaid.testing.TrioStateMachine` whose every example opens a real
:func:`~nursemaid.open_pool` and drives it with clients and faults. The *target* says
what the workers are: :class:`ScriptedTarget` (in-process workers with scripted
handshakes, on the virtual clock: hundreds of examples a second) or
:class:`PortTarget` (real worker processes, by default the fault worker, on the real
clock: a few examples). Add your own rules and invariants to what it returns.

Rules (what clients and workers do):
    ``arrive`` (a client checks out, maybe with a session, and holds the lease),
    ``execute`` (``pool.execute`` in the background), ``checkin``,
    ``checkin_with_error``, ``start_request`` (a holder sends a request, which may
    take long), ``cancel_waiter``, ``cancel_lease`` (mid-request when one is in
    flight), ``crash_worker``, ``script_handshakes`` (scripted target: the next
    pings (handshakes and health checks) succeed, fail or hang), ``advance_clock``,
    ``until_a_health_check`` (scripted target: time passes until the pool starts
    a health check, so the next steps race it); with
    ``scripted_checkout=True`` also ``script_checkouts`` (the pool's
    ``handle_checkout`` keeps the next workers, removes them, returns a value outside
    its contract, raises, or takes long — past some clients' deadlines, and long
    enough to be cancelled in) and ``arrive_scripted`` (a client whose own
    checkouts get such answers first).

Invariants (after every step, on the settled system):
    * no worker is leased twice (held, or in a client's ``handle_checkout``), and a
      held worker is LEASED;
    * a health check ends within ``init_timeout``;
    * leased + idle + checking + starting <= size, and == size in an open eager
      pool (every worker lost is replaced);
    * no idle worker while a client without a session waits;
    * clients without a session are served in arrival order (a client whose worker
      ``handle_checkout`` refused queues again, at the back, as NimblePool does);
    * no client is served after its checkout timeout (``handle_checkout`` included);
    * a session holds at most one live worker at a time, and a ``SessionMoved``
      comes only from a worker that is no longer live;
    * every worker ``handle_checkout`` refused, raised on, or was cut short on in
      the middle of a request is stopped, never held by a client again, and
      replaced (a hook cut short with nothing unfinished leaves its worker in the
      pool);
    * every reply reaches the request that asked for it;
    * every state change follows the lifecycle table, in one chain per worker.
And at the end: every client was served, timed out, or was cancelled (none is left
waiting), no worker stays leased once every client is done, and closing the pool
leaves no worker alive.

It lives in ``nursemaid.testing`` rather than under ``tests/`` so that nursemaid's
own property tests and its users' tests run one implementation.
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import itertools
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import attrs
import trio
from hypothesis import strategies as st

from nursemaid._errors import (
    CheckoutTimeout,
    PoolClosed,
    PortClosed,
    RemoteError,
    RequestTimeout,
)
from nursemaid.testing._driver import Harness, TrioStateMachine, autojump_clock, pick
from nursemaid.testing._leaks import child_pids
from nursemaid.testing._public import show_public_module
from nursemaid.workers._lifecycle import TRANSITIONS, Transition, WorkerEvent, WorkerState
from nursemaid.workers._pool import CheckoutHook, Keep, Lease, Pool, Remove, _unfinished, open_pool
from nursemaid.workers._pool_core import LIVE_STATES, PoolPhase, SessionMoved

__all__ = [
    "FAULT_WORKER",
    "CheckoutAnswer",
    "Handshake",
    "PoolClient",
    "PoolTarget",
    "PoolWorld",
    "PortTarget",
    "ScriptedTarget",
    "ScriptedWorkers",
    "pool_state_machine",
]

#: The argv of the fault worker (``python -m nursemaid.testing.fault_worker``).
FAULT_WORKER: tuple[str, ...] = (sys.executable, "-m", "nursemaid.testing.fault_worker")


# ---------------------------------------------------------------------------
# Scripted in-process workers (a WorkerFactory)
# ---------------------------------------------------------------------------


class Handshake(enum.Enum):
    """How a scripted worker answers its next ping: its handshake, or a health check's."""

    OK = "ok"
    """Answers in time (see :class:`ScriptedWorkers` for how long it takes)."""
    FAIL = "fail"
    """Refuses: the ping raises."""
    HANG = "hang"
    """Never answers: the pool's ``init_timeout`` ends it."""

    def __repr__(self) -> str:  # valid Python, so a failing example's steps replay
        return f"Handshake.{self.name}"


class CheckoutAnswer(enum.Enum):
    """How the pool machine's scripted ``handle_checkout`` answers one checkout."""

    KEEP = "keep"
    """``Keep()``: the client gets the worker."""
    REMOVE = "remove"
    """``Remove(reason)``: the worker is replaced and the client queues again."""
    BAD_VALUE = "bad value"
    """A value outside the hook's contract: the same as ``REMOVE``, with an error."""
    RAISE = "raise"
    """The hook raises: the same as ``REMOVE``, with the exception logged."""
    SLOW = "slow"
    """The hook awaits a while, then keeps the worker: it may outlast the client's
    checkout timeout or be cancelled with its client; then the worker is replaced."""

    def __repr__(self) -> str:
        return f"CheckoutAnswer.{self.name}"


class _ScriptedWorker:
    """A worker whose handshake follows the factory's script and that can crash."""

    def __init__(self, worker_id: int, factory: ScriptedWorkers) -> None:
        self.worker_id = worker_id
        self.factory = factory
        self.returncode: int | None = None
        self.pinged = False  # answered its handshake: later pings are health checks
        self.dead = trio.Event()
        self.in_flight: set[trio.CancelScope] = set()

    async def request(self, op: str, args: Any = None, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        if self.returncode is not None:
            raise PortClosed(f"scripted worker {self.worker_id} is dead", returncode=1)
        with trio.CancelScope() as life:
            self.in_flight.add(life)
            try:
                with trio.fail_after(math.inf if timeout is None else timeout):
                    return await self._answer(op, args)
            except trio.TooSlowError:
                raise RequestTimeout(f"no reply to {op!r} within {timeout} s") from None
            finally:
                self.in_flight.discard(life)
        raise PortClosed(f"scripted worker {self.worker_id} died mid-request", returncode=1)

    async def _answer(self, op: str, args: Any) -> Any:
        if op == ScriptedWorkers.ping_op:
            plan = self.factory.handshakes.pop(0) if self.factory.handshakes else Handshake.OK
            if plan is Handshake.HANG:
                await trio.sleep_forever()
            first, self.pinged = not self.pinged, True
            await trio.sleep(0.01 if first else self.factory.health_answer)
            if plan is Handshake.FAIL:
                what = "its handshake" if first else "a health check's ping"
                raise PortClosed(f"scripted worker {self.worker_id} refused {what}")
            return "pong"
        if op == "work":
            await trio.sleep(args["seconds"])
            if args.get("fail"):
                raise RemoteError("ValueError", "asked to fail", op=op)
            return {"worker": self.worker_id, "token": args["token"]}
        raise RemoteError("UnknownOp", op, op=op)

    async def wait_exited(self) -> int:
        await self.dead.wait()
        assert self.returncode is not None
        return self.returncode

    def stderr_tail(self) -> str:
        return f"scripted worker {self.worker_id} last words\n" if self.returncode else ""

    def crash(self) -> None:
        if self.returncode is None:
            self.returncode = 1
            for scope in self.in_flight:
                scope.cancel()
            self.dead.set()


class ScriptedWorkers:
    """A worker factory of in-process workers with scripted handshakes.

    Each worker answers ``ping`` (its handshake, then the health checks',
    following :attr:`handshakes`: :class:`Handshake` values consumed one per
    ping, ``OK`` once empty; a handshake takes 0.01 s, a health check's ping
    :attr:`health_answer`) and
    ``work`` (``{"seconds": s, "token": t}`` → after ``s`` seconds,
    ``{"worker": id, "token": t}``; with ``"fail": true``, a :class:`RemoteError`).
    Spawning and closing each take 0.01 s of the clock, so they can be raced.

    Attributes:
        workers: every worker made, by id (crash one with ``workers[id].crash()``).
        handshakes: the script for coming pings (handshakes and health checks).
        health_answer: how long a worker takes to answer a ping after its
            handshake (default 0.3 s: within the machine's in-process
            ``init_timeout`` of 1 s, and long enough for clients to arrive, and
            queue, while a worker is ``CHECKING``).
    """

    ping_op = "ping"

    def __init__(self) -> None:
        self.workers: dict[int, _ScriptedWorker] = {}
        self.handshakes: list[Handshake] = []
        self.health_answer = 0.3

    def open_worker(self, worker_id: int) -> AbstractAsyncContextManager[_ScriptedWorker]:
        return self._open(worker_id)

    @asynccontextmanager
    async def _open(self, worker_id: int) -> AsyncIterator[_ScriptedWorker]:
        await trio.sleep(0.01)  # spawning takes time (and may be cancelled)
        worker = _ScriptedWorker(worker_id, self)
        self.workers[worker_id] = worker
        try:
            yield worker
        finally:
            worker.crash()  # closing: whatever was in flight fails
            with trio.CancelScope(shield=True):
                await trio.sleep(0.01)  # a close sequence takes time, off the client's path


# ---------------------------------------------------------------------------
# Targets: what the workers are
# ---------------------------------------------------------------------------


class PoolTarget(Protocol):
    """What :func:`pool_state_machine` needs to know about the workers it pools.

    One target object is made per example (by the ``target`` factory), so it may
    keep per-run state.
    """

    #: True for real processes: the machine then uses the real clock, fewer steps
    #: and short waits.
    ports: bool
    #: Whether :meth:`script` works (adds the ``script_handshakes`` rule).
    scripts_handshakes: bool

    @property
    def worker(self) -> Any:
        """What to pass to :func:`~nursemaid.open_pool`: an argv or a worker factory."""

    def alive(self, pool: Pool) -> list[int]:
        """Ids of workers that can be crashed now."""

    def is_alive(self, worker_id: int) -> bool:
        """Whether this worker has not been crashed."""

    def crash(self, pool: Pool, worker_id: int) -> None:
        """Make this worker die now."""

    def script(self, plan: list[Handshake]) -> None:
        """Script the next handshakes (only called when :attr:`scripts_handshakes`)."""

    def forget_script(self) -> None:
        """Let every later handshake succeed."""

    async def request(self, lease: Any, seconds: float, token: str) -> object:
        """Send a request that takes about *seconds* and carries *token*; return the reply."""

    def expected(self, worker_id: int | None, token: str) -> object:
        """The reply :meth:`request` must get (anything else is a misrouted reply)."""

    async def execute(self, pool: Pool, seconds: float, token: str, within: float | None) -> Any:
        """Run ``pool.execute(..., timeout=within)`` with a request carrying *token*;
        return the token it got back."""

    def all_gone(self, children: frozenset[int]) -> bool:
        """Whether every worker is gone after the pool closed (*children*: before it opened)."""


class ScriptedTarget:
    """In-process :class:`ScriptedWorkers` on the virtual clock: the fast target."""

    ports = False
    scripts_handshakes = True

    def __init__(self) -> None:
        self.factory = ScriptedWorkers()

    @property
    def worker(self) -> Any:
        return self.factory

    def alive(self, pool: Pool) -> list[int]:
        return sorted(w.worker_id for w in self.factory.workers.values() if w.returncode is None)

    def is_alive(self, worker_id: int) -> bool:
        worker = self.factory.workers.get(worker_id)
        return worker is not None and worker.returncode is None

    def crash(self, pool: Pool, worker_id: int) -> None:
        self.factory.workers[worker_id].crash()

    def script(self, plan: list[Handshake]) -> None:
        self.factory.handshakes.extend(plan)

    def forget_script(self) -> None:
        self.factory.handshakes.clear()

    async def request(self, lease: Any, seconds: float, token: str) -> object:
        return await lease.request("work", {"seconds": seconds, "token": token})

    def expected(self, worker_id: int | None, token: str) -> object:
        return {"worker": worker_id, "token": token}

    async def execute(self, pool: Pool, seconds: float, token: str, within: float | None) -> Any:
        reply = await pool.execute("work", {"seconds": seconds, "token": token}, timeout=within)
        return reply["token"]

    def all_gone(self, children: frozenset[int]) -> bool:
        return not any(w.returncode is None for w in self.factory.workers.values())


# The states a machine step may kill a worker in: it has a process that serves,
# or is about to serve, a client (the health check's ping included).
_KILLABLE = frozenset({WorkerState.IDLE, WorkerState.CHECKING, WorkerState.LEASED})


class PortTarget:
    """Real worker processes, crashed with SIGKILL: your worker program, or the fault worker.

    Args:
        argv: the worker program (default :data:`FAULT_WORKER`). It must answer
            *echo_op* with its argument, unchanged.
        echo_op: the op that echoes (default ``"echo"``).
        sleep_op: an op taking seconds that answers after that long (default
            ``"sleep"``), or ``None`` if the program has none (requests are then
            only as long as the echo).
    """

    ports = True
    scripts_handshakes = False

    def __init__(
        self,
        argv: Sequence[str] = FAULT_WORKER,
        *,
        echo_op: str = "echo",
        sleep_op: str | None = "sleep",
    ) -> None:
        self.argv = list(argv)
        self.echo_op = echo_op
        self.sleep_op = sleep_op
        self.killed: set[int] = set()

    @property
    def worker(self) -> Any:
        return self.argv

    def _pids(self, pool: Pool) -> dict[int, int]:
        return {
            w.id: w.pid
            for w in pool.statistics().workers
            if w.pid is not None and w.state in _KILLABLE
        }

    def alive(self, pool: Pool) -> list[int]:
        return sorted(i for i in self._pids(pool) if i not in self.killed)

    def is_alive(self, worker_id: int) -> bool:
        return worker_id not in self.killed

    def crash(self, pool: Pool, worker_id: int) -> None:
        self.killed.add(worker_id)
        os.kill(self._pids(pool)[worker_id], signal.SIGKILL)

    def script(self, plan: list[Handshake]) -> None:
        raise NotImplementedError("handshake scripts are for ScriptedTarget")

    def forget_script(self) -> None:
        pass

    async def request(self, lease: Any, seconds: float, token: str) -> object:
        if self.sleep_op is not None:
            await lease.request(self.sleep_op, seconds)
        return await lease.request(self.echo_op, {"token": token})

    def expected(self, worker_id: int | None, token: str) -> object:
        return {"token": token}

    async def execute(self, pool: Pool, seconds: float, token: str, within: float | None) -> Any:
        reply = await pool.execute(self.echo_op, {"token": token}, timeout=within)
        return reply["token"]

    def all_gone(self, children: frozenset[int]) -> bool:
        return child_pids() == children


# ---------------------------------------------------------------------------
# Clients and the world
# ---------------------------------------------------------------------------


class _Status(enum.Enum):
    WAITING = "waiting"
    HOLDING = "holding"
    DONE = "done"


@attrs.define(eq=False)
class PoolClient:
    """One client of the machine: it checks out, holds the lease, obeys commands."""

    number: int
    timeout: float
    session: Hashable | None = None
    #: Whether it passes ``timeout`` to ``checkout``; if not, ``timeout`` is the
    #: pool's ``checkout_timeout``, which the pool's timer keeps instead.
    own_timeout: bool = True
    status: _Status = _Status.WAITING
    outcome: str = ""
    worker: int | None = None
    served_at: int | None = None  # index of its CHECKOUT transition in the log
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    commands: Any = None  # trio memory channel (send side) to the holding client
    requesting: bool = False
    arrival: int = -1  # its place in arrival order; a refused client arrives again
    in_hook: int | None = None  # the worker its handle_checkout is running on
    refusals: int = 0  # workers handle_checkout refused it (or was cut short on mid-request)
    #: What ``handle_checkout`` answers this client's checkouts, before the world's script.
    checkout_answers: list[CheckoutAnswer] = attrs.field(factory=list)

    def __repr__(self) -> str:
        return f"client{self.number}"


@attrs.define(eq=False)
class PoolWorld:
    """The state the pool machine's rules act on (add your own rules against it).

    Attributes:
        pool: the pool under test.
        target: this run's :class:`PoolTarget`.
        size: the pool's size.
        harness: the driver's :class:`~nursemaid.testing.Harness`.
        clients: every client so far, in arrival order.
        log: every transition and session move the pool published, in order.
        violations: broken rules noticed by subscribers and clients (an invariant
            asserts it stays empty: append to it from your own rules).
        checkout_answers: the script for coming ``handle_checkout`` calls
            (:class:`CheckoutAnswer` values, consumed one per call; once empty, your
            own ``handle_checkout`` answers, or ``Keep()``).
        removed_at_checkout: ids of workers ``handle_checkout`` refused or was cut
            short on, in order.
        checking_since: worker id → when its health check began, for the workers
            that are ``CHECKING`` now.
    """

    pool: Pool
    target: PoolTarget
    size: int
    harness: Harness
    clients: list[PoolClient] = attrs.field(factory=list)
    log: list[Transition | SessionMoved] = attrs.field(factory=list)
    violations: list[str] = attrs.field(factory=list)
    last_state: dict[int, WorkerState] = attrs.field(factory=dict)
    executions: list[str] = attrs.field(factory=list)
    executions_finished: trio.Event = attrs.field(factory=lambda: _set(trio.Event()))
    checkout_answers: list[CheckoutAnswer] = attrs.field(factory=list)
    removed_at_checkout: list[int] = attrs.field(factory=list)
    checking_since: dict[int, float] = attrs.field(factory=dict)
    client_tasks: dict[Any, PoolClient] = attrs.field(factory=dict)
    arrivals: Any = attrs.field(factory=itertools.count)

    def holding(self) -> list[PoolClient]:
        return [c for c in self.clients if c.status is _Status.HOLDING]

    def idle_holders(self) -> list[PoolClient]:
        return [c for c in self.holding() if not c.requesting]

    def waiting(self) -> list[PoolClient]:
        return [c for c in self.clients if c.status is _Status.WAITING]

    def alive_workers(self) -> list[int]:
        return self.target.alive(self.pool)

    def pool_is_open(self) -> bool:
        """Whether the pool is serving (opening or open: it has not given up)."""
        return self.pool._core.phase in (PoolPhase.OPENING, PoolPhase.OPEN)

    def record(self, event: Transition | SessionMoved) -> None:
        self.log.append(event)
        if isinstance(event, Transition):
            expected = TRANSITIONS[event.from_state].get(event.event)
            if expected is not event.to_state:
                self.violations.append(f"{event!r} is not in the table")
            before = self.last_state.get(event.worker_id, WorkerState.STARTING)
            if before is not event.from_state:
                self.violations.append(
                    f"worker {event.worker_id} went {event.from_state.name}->"
                    f"{event.to_state.name} but was {before.name}"
                )
            self.last_state[event.worker_id] = event.to_state
            if event.to_state is WorkerState.CHECKING:
                self.checking_since[event.worker_id] = event.time
            else:
                self.checking_since.pop(event.worker_id, None)
        elif self.last_state.get(event.from_worker) in LIVE_STATES:
            self.violations.append(
                f"{event!r}: the session left worker {event.from_worker}, which is still "
                f"{self.last_state[event.from_worker].name}"
            )


def _set(event: trio.Event) -> trio.Event:
    event.set()
    return event


_SCRIPTED_REFUSALS: dict[CheckoutAnswer, object] = {
    CheckoutAnswer.REMOVE: Remove("scripted removal"),
    CheckoutAnswer.BAD_VALUE: ("error", "scripted value outside the contract"),
}


def _checkout_hook(
    worlds: list[PoolWorld], slow: float, own: CheckoutHook | None
) -> Callable[[Lease], Any]:
    """The machine's ``handle_checkout``: the script's answer, else *own* hook's.

    Whatever answers, it records what the invariants need: which client is inside
    the hook (on which worker), which workers were refused or cut short, and that a
    refused client queues again at the back (its new place in arrival order).
    """

    async def answer(world: PoolWorld, lease: Lease, client: PoolClient | None) -> object:
        plan = None
        for script in (client.checkout_answers if client else None, world.checkout_answers):
            if script:
                plan = script.pop(0)
                break
        if plan is None:
            result = Keep() if own is None else own(lease)
            return await result if inspect.isawaitable(result) else result
        if plan is CheckoutAnswer.SLOW:
            await trio.sleep(slow)
        elif plan is CheckoutAnswer.RAISE:
            raise RuntimeError("scripted handle_checkout failure")
        return _SCRIPTED_REFUSALS.get(plan, Keep())

    def refused(world: PoolWorld, worker_id: int, client: PoolClient | None) -> None:
        world.removed_at_checkout.append(worker_id)
        if client is not None:
            client.refusals += 1
            client.arrival = next(world.arrivals)

    async def handle_checkout(lease: Lease) -> object:
        world = worlds[0]
        client = world.client_tasks.get(trio.lowlevel.current_task())
        if client is not None:
            client.in_hook = lease.worker_id
        try:
            result = await answer(world, lease, client)
        except trio.Cancelled:
            # Cut short by the deadline, or the client was cancelled: the pool keeps
            # the worker unless the hook left a request on it unfinished.
            slot = lease._slot  # still set: the pool takes it back after the hook
            if slot is not None and _unfinished(lease, slot, "", "") is not None:
                refused(world, lease.worker_id, client)
            raise
        except BaseException:  # raised: the pool removes the worker
            refused(world, lease.worker_id, client)
            raise
        finally:
            if client is not None:
                client.in_hook = None
        if not isinstance(result, Keep):
            refused(world, lease.worker_id, client)
        return result

    return handle_checkout


async def _client_task(world: PoolWorld, client: PoolClient) -> None:
    pool = world.pool
    send, receive = trio.open_memory_channel[tuple[str, Any]](1)
    client.commands = send
    world.client_tasks[trio.lowlevel.current_task()] = client
    with client.scope:
        try:
            # No checkpoint from here to the enqueue: this is the arrival order.
            client.arrival = next(world.arrivals)
            began = trio.current_time()
            timeout = client.timeout if client.own_timeout else None
            async with pool.checkout(session=client.session, timeout=timeout) as lease:
                waited = trio.current_time() - began
                # The real clock (ports) reads a little late after the hand-over.
                if waited > client.timeout + (0.05 if world.target.ports else 0.0):
                    world.violations.append(
                        f"{client!r} was served after {waited:.6g} s, past its checkout "
                        f"timeout of {client.timeout} s"
                    )
                client.worker = lease.worker_id
                client.served_at = _last_checkout(world, lease.worker_id)
                client.status = _Status.HOLDING
                async for command, argument in receive:
                    if command == "checkin":
                        break
                    if command == "error":
                        raise ValueError("client error inside the lease")
                    if command == "request":
                        client.requesting = True
                        token = f"{client.number}:{argument}"
                        try:
                            reply = await world.target.request(lease, argument, token)
                        finally:
                            client.requesting = False
                        if reply != world.target.expected(lease.worker_id, token):
                            world.violations.append(
                                f"{client!r} (worker {lease.worker_id}) got {reply!r}"
                            )
            client.outcome = "checked in"
        except CheckoutTimeout:
            client.outcome = "timed out"
            waited = trio.current_time() - began
            # Float sums are a rounding off; the real clock reads a little late.
            slack = 0.05 if world.target.ports else 1e-9
            if not client.timeout - 1e-9 <= waited <= client.timeout + slack:
                world.violations.append(
                    f"{client!r} timed out after {waited:.6g} s, not at its checkout "
                    f"timeout of {client.timeout} s"
                )
        except PoolClosed:
            client.outcome = "pool closed"
        except ValueError:
            client.outcome = "error"
        except PortClosed:
            client.outcome = "worker died"
    if client.scope.cancelled_caught:
        client.outcome = "cancelled"
    client.status = _Status.DONE


def _last_checkout(world: PoolWorld, worker_id: int) -> int:
    for index in range(len(world.log) - 1, -1, -1):
        event = world.log[index]
        if (
            isinstance(event, Transition)
            and event.worker_id == worker_id
            and event.to_state is WorkerState.LEASED
        ):
            return index
    raise AssertionError(f"worker {worker_id} was leased without a CHECKOUT transition")


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------


def pool_state_machine(
    target: Callable[[], PoolTarget] = ScriptedTarget,
    *,
    size: int = 2,
    lazy: bool = False,
    name: str | None = None,
    max_steps: int | None = None,
    scripted_checkout: bool = False,
    **pool_options: Any,
) -> TrioStateMachine[PoolWorld]:
    """Build the pool state machine for one pool configuration.

    Example::

        from nursemaid.testing import PortTarget, pool_state_machine

        machine = pool_state_machine(lambda: PortTarget([sys.executable, "my_worker.py"]),
                                     size=2, lazy=True, init_timeout=10.0)
        test_my_pool = pytest.mark.slow(machine.test(settings(max_examples=5)))

    Args:
        target: a factory (called once per example) of the :class:`PoolTarget`:
            :class:`ScriptedTarget` (the default: in-process workers, virtual
            clock) or e.g. ``lambda: PortTarget(argv)`` (real processes, real clock).
        size: the pool's ``size`` (default 2).
        lazy: the pool's ``lazy`` (default False).
        name: the machine's name (default e.g. ``"lazy pool of 2"``).
        max_steps: steps per example (default 40 in-process, 12 for processes).
        scripted_checkout: give the pool a scripted ``handle_checkout``, and the
            machine the ``script_checkouts`` and ``arrive_scripted`` rules that
            script it (default False: the pool runs without hooks, on its fast
            path, unless you pass your own ``handle_checkout``, which answers
            whenever the script is empty).
        **pool_options: more :func:`~nursemaid.open_pool` options; they override the
            machine's defaults (``init_timeout`` 1.0 in-process or 5.0 for
            processes, ``checkout_timeout=5.0``, ``health_interval`` 5.0
            in-process (so health checks race the clients) or 30.0 for processes,
            ``intensity=10_000`` so that races, not giving up, are hunted,
            ``period=1.0``, ``close_grace=2.0``).

    Returns:
        A :class:`~nursemaid.testing.TrioStateMachine` over :class:`PoolWorld`.
    """
    probe = target()
    ports, scripts_handshakes = probe.ports, probe.scripts_handshakes
    options: dict[str, Any] = {
        "init_timeout": 5.0 if ports else 1.0,
        "checkout_timeout": 5.0,
        "health_interval": 30.0 if ports else 5.0,
        "intensity": 10_000,
        "period": 1.0,
        "close_grace": 2.0,
    }
    options.update(pool_options)
    # Real processes run on the real clock: keep the waits short.
    short, long = (0.01, 0.2) if ports else (0.1, 2.0)
    forever = 3.0 if ports else 50.0
    poll = 0.05 if ports else 1.0  # the teardown's pace while it waits for clients
    own_hook = options.pop("handle_checkout", None)
    hooked = scripted_checkout or own_hook is not None

    @asynccontextmanager
    async def setup(harness: Harness) -> AsyncIterator[PoolWorld]:
        backend: PoolTarget = target()
        children = child_pids() if ports else frozenset[int]()
        log: list[Transition | SessionMoved] = []
        worlds: list[PoolWorld] = []  # the hook's way to the world made below
        hook: dict[str, Any] = (
            {"handle_checkout": _checkout_hook(worlds, long, own_hook)} if hooked else {}
        )
        async with open_pool(
            backend.worker, size=size, lazy=lazy, subscribers=[log.append], **options, **hook
        ) as pool:
            world = PoolWorld(pool, backend, size, harness)
            worlds.append(world)
            for event in log:
                world.record(event)
            pool.subscribe(world.record)
            yield world
        assert backend.all_gone(children), "closing the pool left workers alive"

    kind = "lazy" if lazy else "eager"
    machine: TrioStateMachine[PoolWorld] = TrioStateMachine(
        setup,
        name=name
        or f"{kind} pool of {size}"
        + (" processes" if ports else "")
        + (" with a scripted checkout hook" if scripted_checkout else ""),
        max_steps=max_steps if max_steps is not None else (12 if ports else 40),
        clock=None if ports else autojump_clock,
    )

    def new_client(world: PoolWorld, checkout_timeout: float | None, session: Any) -> PoolClient:
        # None: the client leaves its timeout to the pool's checkout_timeout.
        if checkout_timeout is None:
            timeout = options["checkout_timeout"]
            return PoolClient(len(world.clients), timeout, session, own_timeout=False)
        return PoolClient(len(world.clients), checkout_timeout, session)

    timeouts = st.sampled_from([0.5, 3.0, math.inf, None])

    @machine.rule(checkout_timeout=timeouts, session=st.sampled_from([None, None, "s1", "s2"]))
    async def arrive(
        world: PoolWorld, checkout_timeout: float | None, session: Hashable | None
    ) -> None:
        client = new_client(world, checkout_timeout, session)
        world.clients.append(client)
        world.harness.start_soon(_client_task, world, client)

    if scripted_checkout:
        # Arrivals whose own checkouts are scripted: races in the hook (a deadline
        # or cancellation striking inside it, refusals re-queueing the client) need
        # one step instead of two, so a CI run's few examples reach them.
        @machine.rule(
            checkout_timeout=timeouts,
            session=st.sampled_from([None, None, "s1", "s2"]),
            answers=st.lists(st.sampled_from(CheckoutAnswer), min_size=1, max_size=2),
        )
        async def arrive_scripted(
            world: PoolWorld,
            checkout_timeout: float | None,
            session: Hashable | None,
            answers: list[CheckoutAnswer],
        ) -> None:
            client = new_client(world, checkout_timeout, session)
            client.checkout_answers.extend(answers)
            world.clients.append(client)
            world.harness.start_soon(_client_task, world, client)

    @machine.rule(
        seconds=st.sampled_from([short, long, forever]),
        within=st.sampled_from([None, long / 2, 30.0]),
    )
    async def execute(world: PoolWorld, seconds: float, within: float | None) -> None:
        number = len(world.executions)
        world.executions.append("")
        if world.executions_finished.is_set():
            world.executions_finished = trio.Event()

        async def call() -> None:
            token = f"x{number}"
            try:
                got = await world.target.execute(world.pool, seconds, token, within)
            except (CheckoutTimeout, PoolClosed, PortClosed, TimeoutError) as exc:
                world.executions[number] = type(exc).__name__
            else:
                if got != token:
                    world.violations.append(f"execute {number} got {got!r}")
                world.executions[number] = "done"
            if all(world.executions):
                world.executions_finished.set()

        world.harness.start_soon(call)

    # Live-state arguments are picks, not sampled_from: against real ports the live
    # state differs between runs of one example, and the draw must keep its shape.
    holder = pick(PoolWorld.idle_holders)

    @machine.rule(precondition=lambda w: bool(w.idle_holders()), client=holder)
    async def checkin(world: PoolWorld, client: PoolClient) -> None:
        client.commands.send_nowait(("checkin", None))

    @machine.rule(precondition=lambda w: bool(w.idle_holders()), client=holder)
    async def checkin_with_error(world: PoolWorld, client: PoolClient) -> None:
        client.commands.send_nowait(("error", None))

    @machine.rule(
        precondition=lambda w: bool(w.idle_holders()),
        client=holder,
        seconds=st.sampled_from([short, long, forever]),
    )
    async def start_request(world: PoolWorld, client: PoolClient, seconds: float) -> None:
        client.commands.send_nowait(("request", seconds))

    @machine.rule(
        precondition=lambda w: bool(w.waiting()),
        client=pick(PoolWorld.waiting),
    )
    async def cancel_waiter(world: PoolWorld, client: PoolClient) -> None:
        client.scope.cancel()

    @machine.rule(
        precondition=lambda w: bool(w.holding()),
        client=pick(PoolWorld.holding),
    )
    async def cancel_lease(world: PoolWorld, client: PoolClient) -> None:
        client.scope.cancel()  # mid-request when it is requesting

    @machine.rule(
        precondition=lambda w: bool(w.alive_workers()),
        worker=pick(PoolWorld.alive_workers),
    )
    async def crash_worker(world: PoolWorld, worker: int) -> None:
        world.target.crash(world.pool, worker)

    if scripts_handshakes:

        @machine.rule(plan=st.lists(st.sampled_from(Handshake), min_size=1, max_size=3))
        async def script_handshakes(world: PoolWorld, plan: list[Handshake]) -> None:
            world.target.script(plan)

    if scripted_checkout:

        @machine.rule(plan=st.lists(st.sampled_from(CheckoutAnswer), min_size=1, max_size=3))
        async def script_checkouts(world: PoolWorld, plan: list[CheckoutAnswer]) -> None:
            world.checkout_answers.extend(plan)

    pauses = [0.001, 0.05, 0.3] if ports else [0.005, 0.3, 1.5, 6.0, 40.0]

    @machine.rule(seconds=st.sampled_from(pauses))
    async def advance_clock(world: PoolWorld, seconds: float) -> None:
        await trio.sleep(seconds)

    interval = options["health_interval"]
    if not ports and interval is not None:

        @machine.rule()
        async def until_a_health_check(world: PoolWorld) -> None:
            # Ends the step while a worker is CHECKING (its ping takes
            # ScriptedWorkers.health_answer), so the next steps race the check;
            # a clock step lands inside one only by luck.
            started = trio.Event()

            def watch(event: object) -> None:
                if isinstance(event, Transition) and event.event is WorkerEvent.CHECK:
                    started.set()

            unsubscribe = world.pool.subscribe(watch)
            try:
                with trio.move_on_after(2 * interval):  # no idle worker: no check
                    await started.wait()
            finally:
                unsubscribe()

    @machine.invariant
    def no_worker_leased_twice(world: PoolWorld) -> None:
        held = [c.worker for c in world.holding()]
        held += [c.in_hook for c in world.waiting() if c.in_hook is not None]
        assert len(held) == len(set(held)), f"a worker is held twice: {held}"

    @machine.invariant
    def held_workers_are_leased(world: PoolWorld) -> None:
        states = {w.id: w.state for w in world.pool.statistics().workers}
        for client in world.holding():
            if client.worker is not None and world.target.is_alive(client.worker):
                assert states.get(client.worker) is WorkerState.LEASED, (client, states)

    @machine.invariant
    def a_session_holds_one_live_worker_at_a_time(world: PoolWorld) -> None:
        held: dict[Hashable, set[int]] = {}
        for client in world.holding():
            worker = client.worker
            if (
                client.session is not None
                and worker is not None
                and world.target.is_alive(worker)
                and world.last_state.get(worker) in LIVE_STATES
            ):
                held.setdefault(client.session, set()).add(worker)
        split = {session: workers for session, workers in held.items() if len(workers) > 1}
        assert not split, f"a session holds two live workers at once: {split}"

    @machine.invariant
    def never_more_than_size(world: PoolWorld) -> None:
        stats = world.pool.statistics()
        assert stats.leased + stats.idle + stats.checking + stats.starting <= world.size, stats

    @machine.invariant
    def an_open_eager_pool_replaces_every_worker_it_loses(world: PoolWorld) -> None:
        if not lazy and world.pool_is_open():
            stats = world.pool.statistics()
            assert stats.leased + stats.idle + stats.checking + stats.starting == world.size, stats

    # A check's ping is bounded by init_timeout; on the real clock (ports) a step
    # may read the time a little after the deadline passed.
    check_limit = options["init_timeout"] + (0.5 if ports else 1e-9)

    @machine.invariant
    def health_checks_end_within_init_timeout(world: PoolWorld) -> None:
        now = trio.current_time()
        late = {w: now - t for w, t in world.checking_since.items() if now - t > check_limit}
        assert not late, f"CHECKING for longer than init_timeout: {late}"

    @machine.invariant
    def no_idle_worker_while_a_client_waits_for_any(world: PoolWorld) -> None:
        stats = world.pool.statistics()
        if stats.idle:
            free = [c for c in world.waiting() if c.session is None and c.in_hook is None]
            assert not free, f"{free} wait while {stats.idle} worker(s) idle"

    @machine.invariant
    def served_in_arrival_order(world: PoolWorld) -> None:
        served = [c for c in world.clients if c.served_at is not None and c.session is None]
        served.sort(key=lambda c: c.served_at or 0)
        arrivals = [c.arrival for c in served]
        assert arrivals == sorted(arrivals), f"served {served} in arrival order {arrivals}"

    @machine.invariant
    def workers_refused_at_checkout_are_stopped_never_held_again_and_replaced(
        world: PoolWorld,
    ) -> None:
        removed = world.removed_at_checkout
        for worker_id in removed:
            state = world.last_state.get(worker_id)
            assert state not in LIVE_STATES, f"worker {worker_id} refused at checkout is {state}"
        held = {c.worker for c in world.holding()}
        assert not held & set(removed), f"a worker refused at checkout is held: {held}"
        if world.pool_is_open():
            restarts = world.pool.statistics().restarts
            assert restarts >= len(removed), f"{removed} removed, {restarts} replaced"

    @machine.invariant
    def replies_reach_their_requests_and_transitions_follow_the_table(world: PoolWorld) -> None:
        assert not world.violations, world.violations

    @machine.teardown
    async def every_client_is_served_or_gives_up(world: PoolWorld) -> None:
        world.target.forget_script()
        world.checkout_answers.clear()
        for client in world.holding():
            if client.requesting:
                client.scope.cancel()
            else:
                client.commands.send_nowait(("checkin", None))
        with trio.fail_after(1_000):
            while world.waiting() or world.holding():
                for client in world.holding():
                    if not client.requesting:
                        with contextlib.suppress(trio.WouldBlock):
                            client.commands.send_nowait(("checkin", None))
                await trio.sleep(poll)
        with trio.fail_after(1_000):
            await world.executions_finished.wait()
        assert all(c.outcome for c in world.clients)
        # The machine's clients are done, and the health check never leases a
        # worker (it takes idle ones to CHECKING). But rules a user adds may hold
        # workers in background tasks of their own (world.harness.start_soon)
        # that the machine does not track: give those a bounded while to finish.
        # A worker still leased after it has leaked.
        for _ in range(math.ceil(2 * options["init_timeout"] / poll) + 4):
            if not world.pool.statistics().leased:
                break
            await trio.sleep(poll)
        leaked = [w for w in world.pool.statistics().workers if w.state is WorkerState.LEASED]
        assert not leaked, f"leased with every client done: {leaked}"

    return machine


show_public_module(globals())
