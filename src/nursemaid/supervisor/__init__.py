"""nursemaid.supervisor: OTP supervisors on Trio nurseries.

Unlike the top-level package, this one imports eagerly: using a supervisor means
running Trio anyway.
"""

from __future__ import annotations

from nursemaid.supervisor._grace import current_shutdown as current_shutdown
from nursemaid.supervisor._grace import shutdown_grace as shutdown_grace
from nursemaid.supervisor._intensity import RestartWindow as RestartWindow
from nursemaid.supervisor._spec import BRUTAL_KILL as BRUTAL_KILL
from nursemaid.supervisor._spec import INFINITY as INFINITY
from nursemaid.supervisor._spec import Shutdown as Shutdown

__all__ = [
    "BRUTAL_KILL",
    "INFINITY",
    "RestartWindow",
    "Shutdown",
    "current_shutdown",
    "shutdown_grace",
]
