"""What a supervisor reports: one frozen attrs event per thing that happened.

Rules:
    * Every start, start failure, exit (normal, crash with its exception,
      shutdown), restart, escalation and auto-shutdown is an event, delivered
      in the order it happened to every subscriber of that supervisor
      (:meth:`Supervisor.subscribe`), and logged through :mod:`logging` on the
      ``nursemaid.supervisor`` logger.
    * Events carry the supervisor's name, the child id and the Trio clock time,
      so a test asserts on what happened instead of scraping logs.
    * Log records follow OTP's report shape: a *context* (``start_error``,
      ``child_terminated``, ``shutdown_error``, ``shutdown``), a *reason* and an
      *offender* (the child spec), also attached to the record as
      ``record.context``, ``record.reason`` and ``record.offender``. Crashes log
      at WARNING with their traceback, giving up (intensity exceeded) at ERROR.
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from nursemaid.supervisor._policy import ExitKind

__all__ = [
    "ChildExited",
    "ChildRestarting",
    "ChildStartFailed",
    "ChildStarted",
    "SupervisorAutoShutdown",
    "SupervisorEscalated",
    "SupervisorEvent",
]


@attrs.frozen
class ChildStarted:
    """A child called ``task_status.started(handle)``."""

    supervisor: Hashable | None
    child_id: Hashable
    handle: object
    time: float
    restart: bool
    """True when this start is part of a restart (not the first start)."""


@attrs.frozen
class ChildStartFailed:
    """A child raised, returned, or timed out before calling ``started``."""

    supervisor: Hashable | None
    child_id: Hashable
    reason: BaseException
    time: float


@attrs.frozen
class ChildExited:
    """A running child's task ended."""

    supervisor: Hashable | None
    child_id: Hashable
    kind: ExitKind
    """NORMAL (it returned), CRASH (it raised; see ``exception``) or SHUTDOWN."""
    exception: BaseException | None
    time: float
    stopped: bool
    """True when its supervisor had asked it to stop (then no restart follows)."""


@attrs.frozen
class ChildRestarting:
    """A child exited and will be restarted (the restart counted towards intensity)."""

    supervisor: Hashable | None
    child_id: Hashable
    restarts: tuple[float, ...]
    """The restart times still in the intensity window, this one included."""
    time: float


@attrs.frozen
class SupervisorEscalated:
    """Restart intensity was exceeded: the supervisor stops every child and raises."""

    supervisor: Hashable | None
    child_id: Hashable
    reason: BaseException | None
    restarts: tuple[float, ...]
    time: float


@attrs.frozen
class SupervisorAutoShutdown:
    """A significant child's exit made the supervisor stop itself (normally)."""

    supervisor: Hashable | None
    child_id: Hashable
    time: float


SupervisorEvent = (
    ChildStarted
    | ChildStartFailed
    | ChildExited
    | ChildRestarting
    | SupervisorEscalated
    | SupervisorAutoShutdown
)
"""Any of the events a supervisor reports."""
