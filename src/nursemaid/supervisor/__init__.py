"""nursemaid.supervisor: OTP supervisors on Trio nurseries.

Unlike the top-level package, this one imports eagerly: using a supervisor means
running Trio anyway. Read ``docs/supervision.md`` for the tutorial.
"""

from __future__ import annotations

from nursemaid import _lazy
from nursemaid.supervisor._events import ChildExited as ChildExited
from nursemaid.supervisor._events import ChildRestarting as ChildRestarting
from nursemaid.supervisor._events import ChildStarted as ChildStarted
from nursemaid.supervisor._events import ChildStartFailed as ChildStartFailed
from nursemaid.supervisor._events import SupervisorAutoShutdown as SupervisorAutoShutdown
from nursemaid.supervisor._events import SupervisorEscalated as SupervisorEscalated
from nursemaid.supervisor._events import SupervisorEvent as SupervisorEvent
from nursemaid.supervisor._grace import current_shutdown as current_shutdown
from nursemaid.supervisor._grace import shutdown_grace as shutdown_grace
from nursemaid.supervisor._intensity import RestartWindow as RestartWindow
from nursemaid.supervisor._policy import ExitKind as ExitKind
from nursemaid.supervisor._registry import Registry as Registry
from nursemaid.supervisor._registry import whereis as whereis
from nursemaid.supervisor._runtime import ChildCounts as ChildCounts
from nursemaid.supervisor._runtime import ChildInfo as ChildInfo
from nursemaid.supervisor._runtime import ChildState as ChildState
from nursemaid.supervisor._runtime import Supervisor as Supervisor
from nursemaid.supervisor._runtime import open_supervisor as open_supervisor
from nursemaid.supervisor._spec import BRUTAL_KILL as BRUTAL_KILL
from nursemaid.supervisor._spec import INFINITY as INFINITY
from nursemaid.supervisor._spec import AutoShutdown as AutoShutdown
from nursemaid.supervisor._spec import ChildSpec as ChildSpec
from nursemaid.supervisor._spec import ChildType as ChildType
from nursemaid.supervisor._spec import Restart as Restart
from nursemaid.supervisor._spec import Shutdown as Shutdown
from nursemaid.supervisor._spec import Strategy as Strategy
from nursemaid.supervisor._spec import SupervisorFlags as SupervisorFlags

__all__ = [
    "BRUTAL_KILL",
    "INFINITY",
    "AutoShutdown",
    "ChildCounts",
    "ChildExited",
    "ChildInfo",
    "ChildRestarting",
    "ChildSpec",
    "ChildStartFailed",
    "ChildStarted",
    "ChildState",
    "ChildType",
    "ExitKind",
    "Registry",
    "Restart",
    "RestartWindow",
    "Shutdown",
    "Strategy",
    "Supervisor",
    "SupervisorAutoShutdown",
    "SupervisorEscalated",
    "SupervisorEvent",
    "SupervisorFlags",
    "current_shutdown",
    "open_supervisor",
    "shutdown_grace",
    "whereis",
]


def _fix_module() -> None:
    # Show the public path in tracebacks and reprs (Trio's habit).
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type) or callable(obj):
            _lazy.publish(obj, "nursemaid.supervisor")


_fix_module()
