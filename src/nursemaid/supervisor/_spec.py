"""Child specs and supervisor flags: the data a supervisor is built from.

Rules:
    * Every default is defined once, here, in :data:`DEFAULTS`.
"""

from __future__ import annotations

import enum
import math
from typing import Final

__all__ = ["BRUTAL_KILL", "DEFAULT_SHUTDOWN", "INFINITY", "Shutdown", "shutdown_seconds"]


class Shutdown(enum.Enum):
    """The two shutdown values that are not a number of seconds."""

    BRUTAL_KILL = "brutal_kill"
    """No grace at all: the child is cancelled and gets no time to await."""
    INFINITY = "infinity"
    """Unbounded grace: meant for child supervisors, which bound themselves."""

    def __repr__(self) -> str:
        return self.name


BRUTAL_KILL: Final = Shutdown.BRUTAL_KILL
INFINITY: Final = Shutdown.INFINITY

DEFAULT_SHUTDOWN: Final = 5.0
"""A child's shutdown grace in seconds unless its spec says otherwise."""


def shutdown_seconds(shutdown: float | Shutdown) -> float:
    """Return *shutdown* in seconds: 0.0 for BRUTAL_KILL, ``math.inf`` for INFINITY."""
    if shutdown is Shutdown.BRUTAL_KILL:
        return 0.0
    if shutdown is Shutdown.INFINITY:
        return math.inf
    return float(shutdown)
