"""The demo scenario: a supervised pool of real worker processes, under fire.

Rules:
    * Everything is real: the workers are Python processes running
      :mod:`nursemaid._cli.demo_worker`, faults are real signals and real bytes.
    * Every request is tracked from start to finish in a
      :class:`~nursemaid._cli._report.Ledger`: the report's ``lost`` counts the
      requests that neither returned nor raised a named error.
    * Leaks are measured, not assumed: child processes after the supervisor has
      stopped, file descriptors after ``trio.run`` has returned.
    * The first Ctrl-C (SIGINT) ends the run early, exactly as the end of
      ``--duration`` would: clients finish the request they are making, the tree
      shuts down, the report is printed. A second Ctrl-C cancels the requests
      still in flight (they are reported as ``cancelled``, not lost).

Theory of operation:
    The tree is ``open_supervisor`` → one child, ``"pool"``, which opens the pool
    and publishes it to the clients through a :class:`PoolHolder` (if the
    supervisor ever restarts the pool, clients pick up the new one). Client tasks
    loop until the run is over: most call ``pool.execute("work", ...)``, some hold
    a session lease for a few ``incr`` requests (session affinity), a few call the
    ``fail`` op (a handler error: ``RemoteError``, the worker survives). Before each
    request a client injects a fault with probability ``fault_rate``:

    ``kill``       SIGKILL one of the workers, chosen at random among those that are
                   up and not hanging on an injected ``hang``.
    ``hang``       the next request a worker takes never gets an answer: its client
                   gets ``RequestTimeout`` and the pool stops the deaf worker with
                   signals (kills spare it, so that this is what happens).
    ``garbage``    the next request a worker takes is answered with bytes that are
                   not a frame.
    ``init-fail``  the next worker to start exits during its init handshake.

    The last three are *armed* as files in a private directory and claimed by
    whichever worker gets there first (see :mod:`nursemaid._cli.demo_worker`).

    A monitor task samples ``pool.statistics()`` to drive the live display. Recovery
    is timed from the pool's lifecycle events: a kill is recovered from when a
    worker started after it becomes ready (``HANDSHAKING -> IDLE``), that is, when
    the pool has noticed the death, spawned a replacement and handshaken it. Worker
    ids only grow, so "started after the kill" is "an id above every id the pool had
    at the kill"; kills are matched with new workers oldest first. A replacement made
    for another fault in the meantime can close a kill's recovery, so with many
    faults at once the figure is the time until the pool *had a new worker ready*.

    When the run is over (duration, ``--requests`` or Ctrl-C), clients stop taking
    new requests and the run waits up to a drain deadline (every timeout that
    could still end a request, plus a margin) for the ones in flight; any request
    still pending after it is lost.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import random
import shutil
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from nursemaid._cli._display import Display, NullDisplay, Snapshot
from nursemaid._cli._report import DemoReport, Ledger
from nursemaid.testing._leaks import child_pids, open_fds
from nursemaid.workers._lifecycle import WorkerState

__all__ = ["FAULT_KINDS", "DemoConfig", "run", "run_demo"]

FAULT_KINDS = ("kill", "hang", "garbage", "init-fail")
"""The faults the demo can inject; ``--faults`` picks among them."""

_FAULT_WEIGHTS = {"kill": 5, "hang": 1, "garbage": 2, "init-fail": 2}
"""Relative frequency of each fault kind when several are enabled: with all four,
half the faults are kills."""

_KILLABLE = frozenset(
    {WorkerState.IDLE, WorkerState.CHECKING, WorkerState.LEASED, WorkerState.RETURNING}
)
"""Workers the ``kill`` fault picks from: ones that are up (not starting or stopping)."""

POOL_INTENSITY = 1_000_000
"""The demo's pool never gives up on its workers: the faults are on purpose, and a
pool that closed with ``StartError`` would only show its supervisor restarting it."""


@attrs.frozen
class DemoConfig:
    """The knobs of one run; the command line's options map onto these fields."""

    duration: float = 15.0
    """Seconds to run before stopping (the run may also stop at ``requests``)."""
    requests: int | None = None
    """Stop after this many requests were started (``None``: no limit)."""
    size: int = 4
    """Workers in the pool."""
    clients: int = 8
    """Concurrent client tasks."""
    fault_rate: float = 0.01
    """Probability that a request is preceded by one injected fault."""
    faults: tuple[str, ...] = FAULT_KINDS
    """Which faults to inject."""
    seed: int = 0
    """Seeds the clients' random choices (the scheduling itself is not seeded)."""
    request_timeout: float = 1.0
    """Timeout of each request (a hung worker costs its client this long)."""
    checkout_timeout: float = 5.0
    """How long a client waits for a free worker."""
    shutdown: float = 2.0
    """The pool child's shutdown grace, which its workers' close sequence uses."""
    display_interval: float = 0.25
    """Seconds between live display updates."""

    def __attrs_post_init__(self) -> None:
        if not (self.duration > 0 and math.isfinite(self.duration)):
            raise ValueError(
                f"duration must be a positive number of seconds (got {self.duration!r})"
            )
        if self.requests is not None and self.requests < 1:
            raise ValueError(f"requests must be at least 1 (got {self.requests!r})")
        if self.size < 1:
            raise ValueError(f"size must be at least 1 (got {self.size!r})")
        if self.clients < 1:
            raise ValueError(f"clients must be at least 1 (got {self.clients!r})")
        if not 0 <= self.fault_rate <= 1:
            raise ValueError(
                "fault rate is a probability per request, between 0 and 1 "
                f"(got {self.fault_rate!r})"
            )
        unknown = sorted(set(self.faults) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown!r} (expected some of {FAULT_KINDS!r})")

    @property
    def drain_timeout(self) -> float:
        """How long to wait for requests in flight once the run is over."""
        return self.checkout_timeout + self.request_timeout + 3.0


def worker_argv(faults_dir: str) -> list[str]:
    """The demo worker's command line."""
    return [sys.executable, "-m", "nursemaid._cli.demo_worker", "--faults", faults_dir]


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------


def kill_child(pid: int) -> bool:
    """Send SIGKILL to our child *pid*; return whether a live child was killed.

    Race-free against pid reuse: the signal goes through a pidfd, opened and then
    checked to still be our (not yet dead) child, so a pid that was reaped and
    reused in between is never signalled.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return False
    try:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return False
        state, ppid = fields[0], int(fields[1])
        if ppid != os.getpid() or state in ("Z", "X"):
            return False
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)


@attrs.define
class Chaos:
    """Injects faults and remembers what it did. One per run."""

    faults_dir: str
    kinds: tuple[str, ...]
    killed: set[int] = attrs.field(factory=set)
    """Pids already sent SIGKILL (never picked twice)."""
    unrecovered: collections.deque[tuple[float, int]] = attrs.field(factory=collections.deque)
    """(kill time, highest worker id at that time), oldest first."""
    kills: int = 0
    armed: Counter[str] = attrs.field(factory=Counter)
    recoveries: list[float] = attrs.field(factory=list)

    def inject(self, rng: random.Random, now: float, stats: Any) -> None:
        """Inject one fault, of a kind chosen with *rng*, into the pool *stats* describes."""
        weights = [_FAULT_WEIGHTS[kind] for kind in self.kinds]
        kind = rng.choices(self.kinds, weights)[0]
        if kind == "kill":
            candidates = sorted(
                worker.pid
                for worker in stats.workers
                if worker.pid is not None
                and worker.state in _KILLABLE
                and worker.pid not in self.killed
                and not self.hanging(worker.pid)
            )
            if candidates:
                pid = rng.choice(candidates)
                if kill_child(pid):
                    self.kills += 1
                    self.killed.add(pid)
                    self.unrecovered.append((now, max(worker.id for worker in stats.workers)))
        else:
            path = os.path.join(self.faults_dir, kind)
            try:
                # O_EXCL: at most one armed fault of each kind at a time.
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                return
            self.armed[kind] += 1

    def hanging(self, pid: int) -> bool:
        """Whether the worker *pid* claimed an armed hang, so its request awaits a reply
        that will never come.

        Kills spare such a worker: a SIGKILL would end the hang before the request's
        timeout, its client would get ``WorkerCrashed`` rather than ``RequestTimeout``,
        and the pool's stopping of a worker deaf to its stdin would go unexercised
        (when kills could pick hung workers, a 15,000-request soak had 126 of its
        127 hangs cut short by one, a median 0.14 s after the hang began). One race
        remains: a worker that claims a hang between this check and the signal is
        killed all the same.
        """
        return os.path.exists(os.path.join(self.faults_dir, f"hang.taken.{pid}"))

    def taken(self) -> Counter[str]:
        """How many armed faults a worker actually claimed, by kind."""
        counts: Counter[str] = Counter()
        for name in os.listdir(self.faults_dir):
            kind, sep, _ = name.partition(".taken.")
            if sep:
                counts[kind] += 1
        return counts

    def see(self, event: Any) -> None:
        """Pool subscriber: a new worker ready closes the oldest kill it came after."""
        if (
            self.unrecovered
            and getattr(event, "to_state", None) is WorkerState.IDLE
            and event.from_state is WorkerState.HANDSHAKING
            and event.worker_id > self.unrecovered[0][1]
        ):
            killed_at, _ = self.unrecovered.popleft()
            self.recoveries.append(event.time - killed_at)

    def report(self) -> dict[str, int]:
        """Faults injected, by kind (armed faults count once a worker took them)."""
        taken = self.taken()
        out = {"kill": self.kills} if "kill" in self.kinds else {}
        for kind in self.kinds:
            if kind != "kill":
                out[kind] = taken[kind]
        return out


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


@attrs.define
class PoolHolder:
    """The pool the clients use now; the supervisor may replace it."""

    pool: Any = None
    ready: trio.Event = attrs.field(factory=trio.Event)
    restarts_seen: dict[Any, int] = attrs.field(factory=dict)
    """Pool -> the last ``statistics().restarts`` seen, summed across pools. Keyed
    by the pool itself, not ``id(pool)``: a pool the supervisor replaced may be
    freed, and its id given to the next one, which would overwrite its count."""

    def set(self, pool: Any) -> None:
        self.pool = pool
        self.ready.set()

    def clear(self, pool: Any) -> None:
        self.sample(pool)
        if self.pool is pool:
            self.pool = None
            self.ready = trio.Event()

    async def get(self) -> Any:
        while self.pool is None:
            await self.ready.wait()
        return self.pool

    def sample(self, pool: Any) -> Any:
        stats = pool.statistics()
        self.restarts_seen[pool] = stats.restarts
        return stats

    @property
    def restarts(self) -> int:
        return sum(self.restarts_seen.values())


@attrs.define
class _Run:
    config: DemoConfig
    display: Display
    ledger: Ledger = attrs.field(factory=Ledger)
    holder: PoolHolder = attrs.field(factory=PoolHolder)
    stop: trio.Event = attrs.field(factory=trio.Event)
    interrupted: bool = False
    user_cancelled: bool = False
    drain_expired: bool = False
    started_at: float = 0.0
    states: dict[str, int] = attrs.field(factory=dict)
    chaos: Chaos | None = None
    recent: collections.deque[str] = attrs.field(factory=collections.deque)

    # -- clients ------------------------------------------------------------

    async def client(self, index: int) -> None:
        rng = random.Random(f"{self.config.seed}:{index}")
        ledger, config = self.ledger, self.config
        assert self.chaos is not None
        while not self.stop.is_set():
            if config.requests is not None and ledger.started >= config.requests:
                self.stop.set()
                break
            pool = await self.holder.get()
            if config.faults and rng.random() < config.fault_rate:
                self.chaos.inject(rng, trio.current_time(), pool.statistics())
            roll = rng.random()
            if roll < 0.15:
                await self.session(pool, rng, f"s{index}")
                continue
            op = "fail" if roll < 0.17 else "work"
            args = {"n": rng.randrange(100, 2000), "sleep_ms": rng.random() * 2}
            token = ledger.start(now=trio.current_time())
            try:
                await pool.execute(op, args, timeout=config.request_timeout)
            except Exception as exc:  # named or not: the ledger tells them apart
                ledger.failed(token, exc)
            else:
                ledger.succeeded(token, now=trio.current_time())
            await trio.lowlevel.checkpoint()

    async def session(self, pool: Any, rng: random.Random, session: str) -> None:
        """Hold one lease with session affinity for a few ``incr`` requests."""
        ledger, config = self.ledger, self.config
        token: int | None = ledger.start(now=trio.current_time())  # includes the checkout
        try:
            async with pool.checkout(session=session, timeout=config.checkout_timeout) as lease:
                for _ in range(rng.randrange(1, 5)):
                    if token is None:
                        if config.requests is not None and ledger.started >= config.requests:
                            break  # --requests is a limit, sessions included
                        token = ledger.start(now=trio.current_time())
                    await lease.request(
                        "incr", {"session": session}, timeout=config.request_timeout
                    )
                    ledger.succeeded(token, now=trio.current_time())
                    token = None
        except Exception as exc:
            if token is None:  # the lease's end raised, after its last request
                token = ledger.start(now=trio.current_time())
            ledger.failed(token, exc)

    # -- the tree -------------------------------------------------------------

    async def pool_child(
        self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
    ) -> None:
        from nursemaid import open_pool

        assert self.chaos is not None
        async with open_pool(
            worker_argv(self.chaos.faults_dir),
            size=self.config.size,
            checkout_timeout=self.config.checkout_timeout,
            intensity=POOL_INTENSITY,
            name="demo",
            # Also the ports' own grace: a worker the pool replaces after a client's
            # lease may be started from that client's task, outside this child.
            shutdown=self.config.shutdown,
        ) as pool:
            self.chaos.unrecovered.clear()  # a new pool numbers its workers from 0 again
            pool.subscribe(self.chaos.see)
            self.holder.set(pool)
            try:
                task_status.started(pool)
                await trio.sleep_forever()
            finally:
                self.holder.clear(pool)

    async def monitor(self) -> None:
        """Sample the pool for the live display (and its restart count)."""
        while True:
            pool = self.holder.pool
            if pool is not None:
                self.states = worker_states(self.holder.sample(pool))
                self.display.update(self.snapshot(trio.current_time()))
            await trio.sleep(self.config.display_interval)

    def snapshot(self, now: float) -> Snapshot:
        assert self.chaos is not None
        faults = dict(self.chaos.armed)
        if self.chaos.kills:
            faults["kill"] = self.chaos.kills
        return Snapshot(
            elapsed=now - self.started_at,
            duration=self.config.duration,
            requests=self.ledger.started,
            ok=self.ledger.ok,
            in_flight=len(self.ledger.pending),
            errors=dict(self.ledger.errors + self.ledger.unnamed),
            restarts=self.holder.restarts,
            states=dict(self.states),
            faults=faults,
            stopping=self.stop.is_set(),
            recent=tuple(self.recent),
        )

    async def watch_sigint(self, drain: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                if not self.stop.is_set():
                    self.interrupted = True
                    self.stop.set()
                else:
                    self.user_cancelled = True
                    drain.cancel()

    async def timer(self, drain: trio.CancelScope) -> None:
        with trio.move_on_after(self.config.duration):
            await self.stop.wait()
        self.stop.set()
        drain.deadline = trio.current_time() + self.config.drain_timeout

    async def main(self, faults_dir: str) -> dict[str, Any]:
        from nursemaid import ChildSpec, open_supervisor

        self.chaos = Chaos(faults_dir, tuple(k for k in FAULT_KINDS if k in self.config.faults))
        children_before = child_pids()
        drain = trio.CancelScope()
        supervisor_restarts = 0
        async with trio.open_nursery() as background:
            background.start_soon(self.watch_sigint, drain)
            spec = ChildSpec("pool", self.pool_child, shutdown=self.config.shutdown)
            async with open_supervisor([spec], intensity=5, period=10.0, name="demo") as sup:
                self.started_at = trio.current_time()
                background.start_soon(self.monitor)
                with drain:
                    async with trio.open_nursery() as clients:
                        clients.start_soon(self.timer, drain)
                        for index in range(self.config.clients):
                            clients.start_soon(self.client, index)
                self.drain_expired = drain.cancelled_caught and not self.user_cancelled
                elapsed = trio.current_time() - self.started_at
                if self.holder.pool is not None:
                    self.holder.sample(self.holder.pool)
                supervisor_restarts = sum(child.restarts for child in sup.which_children())
            leaked = child_pids() - children_before
            background.cancel_scope.cancel()
        self.display.update(self.snapshot(trio.current_time()))
        return {
            "restarts": self.holder.restarts,
            "supervisor_restarts": supervisor_restarts,
            "leaked_processes": len(leaked),
            "faults": self.chaos.report(),
            "max_recovery_ms": (
                round(max(self.chaos.recoveries) * 1000, 1) if self.chaos.recoveries else None
            ),
            "unrecovered_kills": len(self.chaos.unrecovered),
            "drain_expired": self.drain_expired,
            "duration_s": round(elapsed, 3),
        }


def worker_states(stats: Any) -> dict[str, int]:
    """Workers by lifecycle state (lower-case names), from the pool's statistics."""
    return dict(Counter(worker.state.value for worker in stats.workers))


async def run_demo(
    config: DemoConfig,
    display: Display,
    faults_dir: str,
    recent: collections.deque[str] | None = None,
) -> DemoReport:
    """Run the scenario inside Trio and return its report (file descriptors unchecked)."""
    demo = _Run(config, display, recent=recent if recent is not None else collections.deque())
    measured = await demo.main(faults_dir)
    return DemoReport.from_ledger(
        demo.ledger,
        pending_are_lost=not demo.user_cancelled,
        leaked_fds=0,
        interrupted=demo.interrupted,
        size=config.size,
        clients=config.clients,
        seed=config.seed,
        **measured,
    )


class _RecentLog(logging.Handler):
    """Keeps the last few log lines, for the live display, instead of printing them."""

    def __init__(self, lines: collections.deque[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # a bad format string: logging's own convention
            self.handleError(record)


@contextmanager
def _capture_logs(lines: collections.deque[str]) -> Iterator[None]:
    """Route nursemaid's log records (each worker stderr line, each escalation to a
    signal) to *lines*, instead of interleaving them with the live display.

    Dozens of workers dying on purpose is the point of the demo, not news.
    """
    logger = logging.getLogger("nursemaid")
    handler = _RecentLog(lines)
    saved = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate, level = saved
        logger.setLevel(level)


@contextmanager
def _faults_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="nursemaid-demo-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run(config: DemoConfig, display: Display | None = None) -> DemoReport:
    """Run the demo to the end and return its report, leaked descriptors included.

    Descriptors are compared before ``trio.run`` starts and after it returns, so
    Trio's own (its wake-up socket, epoll) are not mistaken for leaks.
    """
    display = display if display is not None else NullDisplay()
    recent: collections.deque[str] = collections.deque(maxlen=5)
    with _faults_dir() as faults_dir, _capture_logs(recent):
        fds_before = open_fds()
        with display:
            report = trio.run(run_demo, config, display, faults_dir, recent)
        leaked_fds = len(open_fds() - fds_before)
    return attrs.evolve(report, leaked_fds=leaked_fds)
