"""Hypothesis strategies for fault plans and client schedules.

``fault_plans()`` draws a :class:`FaultPlan`: how one fault worker process will
misbehave (its :meth:`FaultPlan.argv` is the command line to start it with), and
what a pool or port must do about it. ``client_schedules()`` draws a list of
:class:`ClientVisit`: when clients arrive, how long they wait and hold a worker,
and how each lease ends; :func:`run_client_schedule` plays one against a pool and
returns what happened to each client.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Hashable, Sequence
from typing import Any

import attrs
import trio
from hypothesis import strategies as st

from nursemaid._errors import CheckoutTimeout, PoolClosed, RemoteError, WorkerError
from nursemaid.testing._public import show_public_module
from nursemaid.testing.fault_worker import DEFAULT_EXIT_CODE

__all__ = [
    "ClientVisit",
    "FaultPlan",
    "LeaseEnd",
    "client_schedules",
    "fault_plans",
    "run_client_schedule",
]


@attrs.frozen
class FaultPlan:
    """How one fault worker misbehaves: the options of
    ``python -m nursemaid.testing.fault_worker`` as data.

    Every field defaults to "no fault", so ``FaultPlan()`` is a healthy worker.
    See :mod:`nursemaid.testing.fault_worker` for what each one does.
    """

    fail_init: bool = False
    hang_on_init: bool = False
    init_delay: float = 0.0
    crash_after: int | None = None
    hang_after: int | None = None
    garbage_after: int | None = None
    slow: float = 0.0
    stderr_flood: int = 0
    exit_code: int = DEFAULT_EXIT_CODE

    @property
    def starts(self) -> bool:
        """Whether a worker with this plan completes its init handshake."""
        return not (self.fail_init or self.hang_on_init)

    @property
    def answers(self) -> int | None:
        """How many requests it answers before its first fault (``None``: all)."""
        limits = [
            n for n in (self.crash_after, self.hang_after, self.garbage_after) if n is not None
        ]
        return min(limits) if limits else None

    def argv(self, python: str = sys.executable) -> list[str]:
        """The command line that starts a fault worker with this plan."""
        argv = [python, "-m", "nursemaid.testing.fault_worker"]
        flags = {"fail_init": self.fail_init, "hang_on_init": self.hang_on_init}
        argv += [f"--{key.replace('_', '-')}" for key, on in flags.items() if on]
        numbers: dict[str, Any] = {
            "init_delay": self.init_delay or None,
            "crash_after": self.crash_after,
            "hang_after": self.hang_after,
            "garbage_after": self.garbage_after,
            "slow": self.slow or None,
            "stderr_flood": self.stderr_flood or None,
            "exit_code": None if self.exit_code == DEFAULT_EXIT_CODE else self.exit_code,
        }
        for key, value in numbers.items():
            if value is not None:
                argv += [f"--{key.replace('_', '-')}", str(value)]
        return argv


#: The fault kinds :func:`fault_plans` knows, by field name.
FAULT_KINDS: tuple[str, ...] = (
    "fail_init",
    "hang_on_init",
    "init_delay",
    "crash_after",
    "hang_after",
    "garbage_after",
    "slow",
    "stderr_flood",
)


def fault_plans(
    *,
    kinds: Sequence[str] = FAULT_KINDS,
    max_faults: int = 1,
    max_after: int = 5,
    max_seconds: float = 0.05,
    max_flood: int = 2_000,
) -> st.SearchStrategy[FaultPlan]:
    """Draw :class:`FaultPlan` values: up to *max_faults* faults among *kinds*.

    Shrinks towards a healthy worker (no fault), then towards earlier and shorter
    faults, so a failing example names the least misbehaviour that breaks you.

    Args:
        kinds: the fault kinds to choose from (default: all of :data:`FAULT_KINDS`).
        max_faults: at most this many faults per plan (default 1).
        max_after: the largest N for the ``*_after`` faults (default 5).
        max_seconds: the largest ``init_delay`` and ``slow`` (default 0.05 s: these
            are real seconds).
        max_flood: the most stderr lines (default 2,000).

    Raises:
        ValueError: an unknown kind (at once, not when drawing).
    """
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown!r}; expected some of {FAULT_KINDS!r}")
    values: dict[str, st.SearchStrategy[Any]] = {
        "fail_init": st.just(True),
        "hang_on_init": st.just(True),
        "init_delay": st.floats(0.001, max_seconds),
        "crash_after": st.integers(0, max_after),
        "hang_after": st.integers(0, max_after),
        "garbage_after": st.integers(0, max_after),
        "slow": st.floats(0.001, max_seconds),
        "stderr_flood": st.integers(1, max_flood),
    }

    @st.composite
    def plans(draw: st.DrawFn) -> FaultPlan:
        chosen = draw(st.lists(st.sampled_from(list(kinds)), max_size=max_faults, unique=True))
        return FaultPlan(**{kind: draw(values[kind]) for kind in chosen})

    return plans()


class LeaseEnd(enum.Enum):
    """How a client's lease ends in a :class:`ClientVisit`."""

    CHECKIN = "checkin"  # the block ends normally
    ERROR = "error"  # the block raises: the worker is removed and replaced
    CANCEL = "cancel"  # the client is cancelled while holding


@attrs.frozen
class ClientVisit:
    """One client in a schedule.

    Attributes:
        gap: seconds after the previous client arrived (the first: after the start).
        session: the session id (``None``: any worker will do).
        checkout_timeout: seconds it waits for a worker.
        hold: seconds it holds the worker.
        end: how its lease ends.
    """

    gap: float
    session: Hashable | None
    checkout_timeout: float
    hold: float
    end: LeaseEnd


def client_schedules(
    *,
    max_clients: int = 8,
    sessions: Sequence[Hashable] = ("s1", "s2"),
    timeouts: Sequence[float] = (0.5, 5.0, math.inf),
    max_gap: float = 1.0,
    max_hold: float = 2.0,
) -> st.SearchStrategy[list[ClientVisit]]:
    """Draw client schedules: lists of up to *max_clients* :class:`ClientVisit`.

    Gaps of zero are common (clients arriving at the same instant is where lazy
    pools race). Shrinks towards fewer clients, no gaps, no sessions and normal
    checkins. Times are meant for a virtual clock.

    Args:
        max_clients: the longest schedule (default 8).
        sessions: session ids to use besides ``None`` (default ``("s1", "s2")``).
        timeouts: checkout timeouts to choose from.
        max_gap: the longest gap between arrivals, in seconds (default 1.0).
        max_hold: the longest hold, in seconds (default 2.0).
    """
    visit = st.builds(
        ClientVisit,
        gap=st.one_of(st.just(0.0), st.floats(0.0, max_gap)),
        session=st.one_of(st.none(), st.sampled_from(list(sessions))) if sessions else st.none(),
        checkout_timeout=st.sampled_from(list(timeouts)),
        hold=st.floats(0.0, max_hold),
        end=st.sampled_from(LeaseEnd),
    )
    return st.lists(visit, max_size=max_clients)


class _ClientError(Exception):
    pass


async def run_client_schedule(
    pool: Any, schedule: Sequence[ClientVisit], *, op: str, args: Any = None
) -> list[str]:
    """Play *schedule* against *pool* and return each client's outcome, in order.

    Each client checks out (with its session and timeout), sends one request
    ``op(args)`` on the lease, holds the worker for ``hold`` seconds, and ends the
    lease as planned. Outcomes: ``"checked in"``, ``"error"`` (the planned
    exception), ``"cancelled"``, ``"timed out"`` (:class:`CheckoutTimeout`),
    ``"pool closed"``, ``"remote error"``, or the name of the :class:`WorkerError`
    subclass a dying worker caused. Anything else escapes: it is a bug.
    """
    outcomes = [""] * len(schedule)

    async def client(number: int, visit: ClientVisit) -> None:
        with trio.CancelScope() as scope:
            try:
                async with pool.checkout(
                    session=visit.session, timeout=visit.checkout_timeout
                ) as lease:
                    await lease.request(op, args)
                    await trio.sleep(visit.hold)
                    if visit.end is LeaseEnd.ERROR:
                        raise _ClientError("the client's planned error")
                    if visit.end is LeaseEnd.CANCEL:
                        scope.cancel()
                        await trio.lowlevel.checkpoint()
                outcomes[number] = "checked in"
            except _ClientError:
                outcomes[number] = "error"
            except CheckoutTimeout:
                outcomes[number] = "timed out"
            except PoolClosed:
                outcomes[number] = "pool closed"
            except RemoteError:
                outcomes[number] = "remote error"
            except WorkerError as exc:
                outcomes[number] = type(exc).__name__
        if scope.cancelled_caught:
            outcomes[number] = "cancelled"

    async with trio.open_nursery() as nursery:
        for number, visit in enumerate(schedule):
            await trio.sleep(visit.gap)
            nursery.start_soon(client, number, visit)
    return outcomes


show_public_module(globals())
