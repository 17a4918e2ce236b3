"""The pool under a hypothesis state machine: checkout and init races, hunted.

Each example is one real Trio run (``nursemaid.testing.TrioStateMachine``: one
``trio.run`` per example, a virtual clock, the scheduler seeded from the example)
of a real pool over scripted in-process workers. Rules are what clients and
workers do — arrive, check in, check in with an error, start a request, be
cancelled while waiting or mid-request, crash, fail or hang the handshake, let
time pass — and after every step the invariants below must hold. A failure shrinks
to the shortest run and prints it as Python statements.

Invariants (after every step, on the settled system):
    * no worker is leased twice;
    * leased + idle + starting <= size;
    * clients are served in arrival order;
    * every reply reaches the request that asked for it;
    * every state change follows the lifecycle table, and each worker's changes
      form one chain from STARTING.
And at the end: every client was served, timed out, or was cancelled (none is
left waiting), and closing the pool leaves no worker alive.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Hashable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
from hypothesis import settings
from hypothesis import strategies as st

from nursemaid import CheckoutTimeout, PoolClosed, PortClosed, RemoteError, RequestTimeout
from nursemaid.testing import Harness, TrioStateMachine, autojump_clock
from nursemaid.testing._leaks import child_pids
from nursemaid.workers._lifecycle import TRANSITIONS, Transition, WorkerState
from nursemaid.workers._pool import Pool, open_pool
from nursemaid.workers._pool_core import SessionMoved

# ---------------------------------------------------------------------------
# Scripted in-process workers (a WorkerFactory written against the protocol)
# ---------------------------------------------------------------------------


class Init(enum.Enum):
    OK = "ok"
    FAIL = "fail"
    HANG = "hang"


class ScriptedWorker:
    """A worker whose handshake follows the factory's script and that can crash."""

    def __init__(self, worker_id: int, factory: ScriptedWorkers) -> None:
        self.worker_id = worker_id
        self.factory = factory
        self.returncode: int | None = None
        self.dead = trio.Event()
        self.in_flight: set[trio.CancelScope] = set()

    async def request(
        self,
        op: str,
        args: Any = None,
        *,
        timeout: float | None = None,
    ) -> Any:
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
        if op == "ping":
            plan = self.factory.init_plan.pop(0) if self.factory.init_plan else Init.OK
            if plan is Init.HANG:
                await trio.sleep_forever()
            await trio.sleep(0.01)
            if plan is Init.FAIL:
                raise PortClosed(f"scripted worker {self.worker_id} refused its handshake")
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
    """The factory: every worker it made, and the script for coming handshakes."""

    ping_op = "ping"

    def __init__(self) -> None:
        self.workers: dict[int, ScriptedWorker] = {}
        self.init_plan: list[Init] = []

    def open_worker(self, worker_id: int) -> AbstractAsyncContextManager[ScriptedWorker]:
        return self._open(worker_id)

    @asynccontextmanager
    async def _open(self, worker_id: int) -> AsyncIterator[ScriptedWorker]:
        await trio.sleep(0.01)  # spawning takes time (and may be cancelled)
        worker = ScriptedWorker(worker_id, self)
        self.workers[worker_id] = worker
        try:
            yield worker
        finally:
            worker.crash()  # closing: whatever was in flight fails
            with trio.CancelScope(shield=True):
                await trio.sleep(0.01)  # a close sequence takes time, off the client's path


class ScriptedBackend:
    """The fast backend: scripted in-process workers on the virtual clock."""

    ports = False

    def __init__(self) -> None:
        self.factory = ScriptedWorkers()
        self.worker: Any = self.factory

    def alive(self, pool: Pool) -> list[int]:
        return sorted(w.worker_id for w in self.factory.workers.values() if w.returncode is None)

    def is_alive(self, worker_id: int) -> bool:
        worker = self.factory.workers.get(worker_id)
        return worker is not None and worker.returncode is None

    def crash(self, pool: Pool, worker_id: int) -> None:
        self.factory.workers[worker_id].crash()

    def script(self, plan: list[Init]) -> None:
        self.factory.init_plan.extend(plan)

    def forget_script(self) -> None:
        self.factory.init_plan.clear()

    async def request(self, lease: Any, seconds: float, token: str) -> object:
        return await lease.request("work", {"seconds": seconds, "token": token})

    def expected(self, worker_id: int | None, token: str) -> object:
        return {"worker": worker_id, "token": token}

    async def execute(self, pool: Pool, seconds: float, token: str, timeout: float | None) -> Any:
        reply = await pool.execute("work", {"seconds": seconds, "token": token}, timeout=timeout)
        return reply["token"]

    def all_gone(self, children: frozenset[int]) -> bool:
        return not self.alive(None)  # type: ignore[arg-type]


class PortBackend:
    """The real backend: ``python -m nursemaid.testing.fault_worker`` processes."""

    ports = True

    def __init__(self) -> None:
        self.worker: Any = [sys.executable, "-m", "nursemaid.testing.fault_worker"]
        self.killed: set[int] = set()

    def _pids(self, pool: Pool) -> dict[int, int]:
        return {
            w.id: w.pid
            for w in pool.statistics().workers
            if w.pid is not None and w.state in (WorkerState.IDLE, WorkerState.LEASED)
        }

    def alive(self, pool: Pool) -> list[int]:
        return sorted(i for i in self._pids(pool) if i not in self.killed)

    def is_alive(self, worker_id: int) -> bool:
        return worker_id not in self.killed

    def crash(self, pool: Pool, worker_id: int) -> None:
        self.killed.add(worker_id)
        os.kill(self._pids(pool)[worker_id], signal.SIGKILL)

    def script(self, plan: list[Init]) -> None:  # pragma: no cover - not a port rule
        raise AssertionError("handshake scripts are for scripted workers")

    def forget_script(self) -> None:
        pass

    async def request(self, lease: Any, seconds: float, token: str) -> object:
        await lease.request("sleep", seconds)
        return await lease.request("echo", {"token": token})

    def expected(self, worker_id: int | None, token: str) -> object:
        return {"token": token}

    async def execute(self, pool: Pool, seconds: float, token: str, timeout: float | None) -> Any:
        reply = await pool.execute("echo", {"token": token}, timeout=timeout)
        return reply["token"]

    def all_gone(self, children: frozenset[int]) -> bool:
        return child_pids() == children


Backend = ScriptedBackend | PortBackend


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------


class Status(enum.Enum):
    WAITING = "waiting"
    HOLDING = "holding"
    DONE = "done"


@attrs.define(eq=False)
class Client:
    number: int
    timeout: float
    session: Hashable | None = None
    status: Status = Status.WAITING
    outcome: str = ""
    worker: int | None = None
    served_at: int | None = None  # index of its CHECKOUT transition in the log
    waited: bool = False
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    commands: Any = None  # trio memory channel (send side) to the holding client
    requesting: bool = False

    def __repr__(self) -> str:
        return f"client{self.number}"


@attrs.define(eq=False)
class World:
    pool: Pool
    backend: Backend
    size: int
    harness: Harness
    clients: list[Client] = attrs.field(factory=list)
    log: list[Transition | SessionMoved] = attrs.field(factory=list)
    violations: list[str] = attrs.field(factory=list)
    last_state: dict[int, WorkerState] = attrs.field(factory=dict)
    executions: list[str] = attrs.field(factory=list)

    def holding(self) -> list[Client]:
        return [c for c in self.clients if c.status is Status.HOLDING]

    def idle_holders(self) -> list[Client]:
        return [c for c in self.holding() if not c.requesting]

    def waiting(self) -> list[Client]:
        return [c for c in self.clients if c.status is Status.WAITING]

    def alive_workers(self) -> list[int]:
        return self.backend.alive(self.pool)

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


async def client_task(world: World, client: Client) -> None:
    pool = world.pool
    send, receive = trio.open_memory_channel[tuple[str, Any]](1)
    client.commands = send
    with client.scope:
        try:
            async with pool.checkout(session=client.session, timeout=client.timeout) as lease:
                client.worker = lease.worker_id
                client.served_at = _last_checkout(world, lease.worker_id)
                client.status = Status.HOLDING
                async for command, argument in receive:
                    if command == "checkin":
                        break
                    if command == "error":
                        raise ValueError("client error inside the lease")
                    if command == "request":
                        client.requesting = True
                        token = f"{client.number}:{argument}"
                        try:
                            reply = await world.backend.request(lease, argument, token)
                        except PortClosed:
                            client.requesting = False
                            raise
                        client.requesting = False
                        if reply != world.backend.expected(lease.worker_id, token):
                            world.violations.append(
                                f"{client!r} (worker {lease.worker_id}) got {reply!r}"
                            )
            client.outcome = "checked in"
        except CheckoutTimeout:
            client.outcome = "timed out"
        except PoolClosed:
            client.outcome = "pool closed"
        except ValueError:
            client.outcome = "error"
        except PortClosed:
            client.outcome = "worker died"
    if client.scope.cancelled_caught:
        client.outcome = "cancelled"
    client.status = Status.DONE


def _last_checkout(world: World, worker_id: int) -> int:
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


def pool_machine(*, lazy: bool, size: int, ports: bool = False) -> TrioStateMachine[World]:
    """Build the pool state machine for one pool shape, on scripted or real workers."""

    @asynccontextmanager
    async def setup(harness: Harness) -> AsyncIterator[World]:
        backend: Backend = PortBackend() if ports else ScriptedBackend()
        children = child_pids()
        log: list[Transition | SessionMoved] = []
        async with open_pool(
            backend.worker,
            size=size,
            lazy=lazy,
            init_timeout=5.0 if ports else 1.0,
            checkout_timeout=5.0,
            health_interval=30.0,
            intensity=10_000,  # races, not give-up, are hunted here
            period=1.0,
            close_grace=2.0,
            subscribers=[log.append],
        ) as pool:
            world = World(pool, backend, size, harness)
            for event in log:
                world.record(event)
            pool.subscribe(world.record)
            yield world
        assert backend.all_gone(children), "closing the pool left workers alive"

    kind = "lazy" if lazy else "eager"
    machine: TrioStateMachine[World] = TrioStateMachine(
        setup,
        name=f"{kind} pool of {size}" + (" ports" if ports else ""),
        max_steps=12 if ports else 40,
        clock=None if ports else autojump_clock,
    )
    # Real processes run on the real clock: keep the waits short.
    short, long = (0.01, 0.2) if ports else (0.1, 2.0)
    forever = 3.0 if ports else 50.0

    @machine.rule(
        timeout=st.sampled_from([0.5, 3.0, math.inf]),
        session=st.sampled_from([None, None, "s1", "s2"]),
    )
    async def arrive(world: World, timeout: float, session: Hashable | None) -> None:
        client = Client(len(world.clients), timeout, session)
        world.clients.append(client)
        world.harness.start_soon(client_task, world, client)

    @machine.rule(
        seconds=st.sampled_from([short, long, forever]),
        timeout=st.sampled_from([None, long / 2, 30.0]),
    )
    async def execute(world: World, seconds: float, timeout: float | None) -> None:
        number = len(world.executions)
        world.executions.append("")

        async def call() -> None:
            token = f"x{number}"
            try:
                got = await world.backend.execute(world.pool, seconds, token, timeout)
            except (CheckoutTimeout, PoolClosed, PortClosed, TimeoutError) as exc:
                world.executions[number] = type(exc).__name__
                return
            if got != token:
                world.violations.append(f"execute {number} got {got!r}")
            world.executions[number] = "done"

        world.harness.start_soon(call)

    def holder(world: World) -> st.SearchStrategy[Client]:
        return st.sampled_from(world.idle_holders())

    @machine.rule(precondition=lambda w: bool(w.idle_holders()), client=holder)
    async def checkin(world: World, client: Client) -> None:
        client.commands.send_nowait(("checkin", None))

    @machine.rule(precondition=lambda w: bool(w.idle_holders()), client=holder)
    async def checkin_with_error(world: World, client: Client) -> None:
        client.commands.send_nowait(("error", None))

    @machine.rule(
        precondition=lambda w: bool(w.idle_holders()),
        client=holder,
        seconds=st.sampled_from([short, long, forever]),
    )
    async def start_request(world: World, client: Client, seconds: float) -> None:
        client.commands.send_nowait(("request", seconds))

    @machine.rule(
        precondition=lambda w: bool(w.waiting()),
        client=lambda w: st.sampled_from(w.waiting()),
    )
    async def cancel_waiter(world: World, client: Client) -> None:
        client.scope.cancel()

    @machine.rule(
        precondition=lambda w: bool(w.holding()),
        client=lambda w: st.sampled_from(w.holding()),
    )
    async def cancel_lease(world: World, client: Client) -> None:
        client.scope.cancel()  # mid-request when it is requesting

    @machine.rule(
        precondition=lambda w: bool(w.alive_workers()),
        worker=lambda w: st.sampled_from(w.alive_workers()),
    )
    async def crash_worker(world: World, worker: int) -> None:
        world.backend.crash(world.pool, worker)

    if not ports:

        @machine.rule(plan=st.lists(st.sampled_from(Init), min_size=1, max_size=3))
        async def script_handshakes(world: World, plan: list[Init]) -> None:
            world.backend.script(plan)

    pauses = [0.001, 0.05, 0.3] if ports else [0.005, 0.3, 1.5, 6.0, 40.0]

    @machine.rule(seconds=st.sampled_from(pauses))
    async def advance_clock(world: World, seconds: float) -> None:
        await trio.sleep(seconds)

    @machine.invariant
    def no_worker_leased_twice(world: World) -> None:
        held = [c.worker for c in world.holding()]
        assert len(held) == len(set(held)), f"a worker is held twice: {held}"

    @machine.invariant
    def held_workers_are_leased(world: World) -> None:
        states = {w.id: w.state for w in world.pool.statistics().workers}
        for client in world.holding():
            if world.backend.is_alive(client.worker):  # type: ignore[arg-type]
                assert states.get(client.worker) is WorkerState.LEASED, (client, states)

    @machine.invariant
    def never_more_than_size(world: World) -> None:
        stats = world.pool.statistics()
        assert stats.leased + stats.idle + stats.starting <= world.size, stats

    @machine.invariant
    def no_idle_worker_while_a_client_waits_for_any(world: World) -> None:
        stats = world.pool.statistics()
        if stats.idle:
            free = [c for c in world.waiting() if c.session is None]
            assert not free, f"{free} wait while {stats.idle} worker(s) idle"

    @machine.invariant
    def served_in_arrival_order(world: World) -> None:
        served = [c for c in world.clients if c.served_at is not None and c.session is None]
        order = [c.number for c in sorted(served, key=lambda c: c.served_at or 0)]
        assert order == sorted(order), f"served out of arrival order: {order}"

    @machine.invariant
    def replies_reach_their_requests_and_transitions_follow_the_table(world: World) -> None:
        assert not world.violations, world.violations

    @machine.teardown
    async def every_client_is_served_or_gives_up(world: World) -> None:
        world.backend.forget_script()
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
                await trio.sleep(1)
        with trio.fail_after(1_000):
            while not all(world.executions):
                await trio.sleep(1)
        assert all(c.outcome for c in world.clients)

    return machine


test_lazy_pool_of_two = pool_machine(lazy=True, size=2).test()
test_eager_pool_of_three = pool_machine(lazy=False, size=3).test()
test_lazy_pool_of_one = pool_machine(lazy=True, size=1).test()
test_lazy_pool_of_two_ports = pytest.mark.slow(
    pool_machine(lazy=True, size=2, ports=True).test(settings(max_examples=4))
)
test_eager_pool_of_two_ports = pytest.mark.slow(
    pool_machine(lazy=False, size=2, ports=True).test(settings(max_examples=4))
)


@pytest.mark.parametrize("lazy", [True, False])
def test_machine_rules_are_all_reachable(lazy: bool) -> None:
    # Guards the harness itself: every rule has a name and is registered once.
    machine = pool_machine(lazy=lazy, size=2)
    assert {r.name for r in machine.rules} == {
        "arrive",
        "checkin",
        "checkin_with_error",
        "start_request",
        "cancel_waiter",
        "cancel_lease",
        "crash_worker",
        "script_handshakes",
        "advance_clock",
        "execute",
    }
