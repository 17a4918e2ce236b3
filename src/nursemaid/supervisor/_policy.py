"""The restart decision, as tables: what happens when a child exits by itself.

Rules:
    * :data:`RESTART_POLICY` maps every ``(Restart, ExitKind)`` pair to RESTART or
      FORGET; the table is total (a unit test checks it). It follows the clauses
      of OTP's ``supervisor:do_restart/3``:

      ============  ======  ========  =====
      restart       NORMAL  SHUTDOWN  CRASH
      ============  ======  ========  =====
      PERMANENT     RESTART RESTART   RESTART
      TRANSIENT     FORGET  FORGET    RESTART
      TEMPORARY     FORGET  FORGET    FORGET
      ============  ======  ========  =====

    * FORGET keeps the spec of a PERMANENT or TRANSIENT child (not running; OTP's
      ``pid = undefined``) and drops a TEMPORARY one: :data:`KEEPS_SPEC`.
    * Only an exit the child made *by itself* is looked up here. A child its
      supervisor stops (terminate_child, a sibling's restart, the supervisor
      stopping) is never restarted for it, and never triggers auto-shutdown.
    * After a FORGET, a *significant* child's exit may stop the supervisor:
      :func:`auto_shutdown_due`.

Theory of operation:
    What counts as *normal* for a transient child, in Trio terms: returning from
    ``start`` (OTP's ``normal``). A child supervisor that stops itself (its
    ``stop()``, or an auto-shutdown) returns, which is what OTP's ``shutdown``
    exit reason means to a parent: not restarted unless permanent. SHUTDOWN is
    the kind of an exit the supervisor caused by cancelling the child; such an
    exit is never looked up here (the SHUTDOWN column keeps the table total and
    mirrors OTP's ``shutdown`` clauses). Raising an ``Exception`` is a crash.
    ``KeyboardInterrupt``, ``SystemExit`` and any other ``BaseException``
    (including a ``Cancelled`` that is not the supervisor's) are not exits at
    all: they propagate through every supervisor untouched.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from nursemaid.supervisor._spec import AutoShutdown, Restart, member_repr

__all__ = [
    "KEEPS_SPEC",
    "RESTART_POLICY",
    "Decision",
    "ExitKind",
    "auto_shutdown_due",
    "decide",
]


class ExitKind(enum.Enum):
    """How a child's task ended."""

    NORMAL = "normal"
    """``start`` returned (OTP's ``normal``)."""
    SHUTDOWN = "shutdown"
    """It was cancelled by its supervisor (terminate_child, a restart, a stop)."""
    CRASH = "crash"
    """``start`` raised an ``Exception`` (any other OTP exit reason)."""

    __repr__ = member_repr


class Decision(enum.Enum):
    """What the supervisor does about a child that exited by itself."""

    RESTART = "restart"
    """Count a restart towards the intensity, then restart per the strategy."""
    FORGET = "forget"
    """Leave it stopped (drop the spec if TEMPORARY); maybe auto-shutdown."""

    __repr__ = member_repr


RESTART: Final = Decision.RESTART
FORGET: Final = Decision.FORGET

RESTART_POLICY: Final[Mapping[Restart, Mapping[ExitKind, Decision]]] = {
    Restart.PERMANENT: {
        ExitKind.NORMAL: RESTART,
        ExitKind.SHUTDOWN: RESTART,
        ExitKind.CRASH: RESTART,
    },
    Restart.TRANSIENT: {
        ExitKind.NORMAL: FORGET,
        ExitKind.SHUTDOWN: FORGET,
        ExitKind.CRASH: RESTART,
    },
    Restart.TEMPORARY: {
        ExitKind.NORMAL: FORGET,
        ExitKind.SHUTDOWN: FORGET,
        ExitKind.CRASH: FORGET,
    },
}

KEEPS_SPEC: Final[Mapping[Restart, bool]] = {
    # OTP's del_child: a temporary child's spec goes with its process.
    Restart.PERMANENT: True,
    Restart.TRANSIENT: True,
    Restart.TEMPORARY: False,
}


def decide(restart: Restart, kind: ExitKind) -> Decision:
    """Look up :data:`RESTART_POLICY` (the lookup *is* the rule)."""
    return RESTART_POLICY[restart][kind]


def auto_shutdown_due(
    auto_shutdown: AutoShutdown, significant: bool, significant_still_running: bool
) -> bool:
    """Whether a forgotten child's own exit stops its supervisor (OTP 24's auto_shutdown).

    Args:
        auto_shutdown: the supervisor's flag.
        significant: whether the child that exited is significant.
        significant_still_running: whether any *other* significant child still
            runs (OTP: has a pid).

    Returns:
        True when the supervisor should stop itself, normally: NEVER never does;
        ANY_SIGNIFICANT does on any significant exit; ALL_SIGNIFICANT does when
        no significant child is left running.
    """
    if auto_shutdown is AutoShutdown.NEVER or not significant:
        return False
    if auto_shutdown is AutoShutdown.ANY_SIGNIFICANT:
        return True
    return not significant_still_running
