"""nursemaid: OTP-style supervision for Trio: supervisors, ports to worker
processes over ``{packet, 4}`` frames, and a pool of such workers.

Importing this package is cheap (it imports no trio, attrs or cattrs): each public
name is loaded on first use, so a worker program can ``from nursemaid import serve``
and start in milliseconds. See :mod:`nursemaid._lazy`.
"""

from __future__ import annotations

from nursemaid._lazy import attach

# Not `from typing import TYPE_CHECKING`: importing typing costs a worker ~4 ms of
# start-up; type checkers treat this name the same way.
TYPE_CHECKING = False

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from nursemaid._errors import CheckoutTimeout as CheckoutTimeout
    from nursemaid._errors import ChildAlreadyExists as ChildAlreadyExists
    from nursemaid._errors import ChildNotFound as ChildNotFound
    from nursemaid._errors import ChildRunning as ChildRunning
    from nursemaid._errors import InternalError as InternalError
    from nursemaid._errors import LifecycleError as LifecycleError
    from nursemaid._errors import LocalProtocolError as LocalProtocolError
    from nursemaid._errors import NursemaidError as NursemaidError
    from nursemaid._errors import PoolClosed as PoolClosed
    from nursemaid._errors import PortClosed as PortClosed
    from nursemaid._errors import PortOwnershipError as PortOwnershipError
    from nursemaid._errors import ProtocolError as ProtocolError
    from nursemaid._errors import RemoteError as RemoteError
    from nursemaid._errors import RemoteProtocolError as RemoteProtocolError
    from nursemaid._errors import RequestTimeout as RequestTimeout
    from nursemaid._errors import RestartIntensityExceeded as RestartIntensityExceeded
    from nursemaid._errors import StartError as StartError
    from nursemaid._errors import SupervisorError as SupervisorError
    from nursemaid._errors import UsageError as UsageError
    from nursemaid._errors import WorkerCrashed as WorkerCrashed
    from nursemaid._errors import WorkerError as WorkerError
    from nursemaid.supervisor import BRUTAL_KILL as BRUTAL_KILL
    from nursemaid.supervisor import INFINITY as INFINITY
    from nursemaid.supervisor import AutoShutdown as AutoShutdown
    from nursemaid.supervisor import ChildCounts as ChildCounts
    from nursemaid.supervisor import ChildExited as ChildExited
    from nursemaid.supervisor import ChildInfo as ChildInfo
    from nursemaid.supervisor import ChildRestarting as ChildRestarting
    from nursemaid.supervisor import ChildSpec as ChildSpec
    from nursemaid.supervisor import ChildStarted as ChildStarted
    from nursemaid.supervisor import ChildStartFailed as ChildStartFailed
    from nursemaid.supervisor import ChildState as ChildState
    from nursemaid.supervisor import ChildType as ChildType
    from nursemaid.supervisor import ExitKind as ExitKind
    from nursemaid.supervisor import Registry as Registry
    from nursemaid.supervisor import Restart as Restart
    from nursemaid.supervisor import RestartWindow as RestartWindow
    from nursemaid.supervisor import Shutdown as Shutdown
    from nursemaid.supervisor import Strategy as Strategy
    from nursemaid.supervisor import Supervisor as Supervisor
    from nursemaid.supervisor import SupervisorAutoShutdown as SupervisorAutoShutdown
    from nursemaid.supervisor import SupervisorEscalated as SupervisorEscalated
    from nursemaid.supervisor import SupervisorEvent as SupervisorEvent
    from nursemaid.supervisor import SupervisorFlags as SupervisorFlags
    from nursemaid.supervisor import current_shutdown as current_shutdown
    from nursemaid.supervisor import open_supervisor as open_supervisor
    from nursemaid.supervisor import shutdown_grace as shutdown_grace
    from nursemaid.supervisor import whereis as whereis
    from nursemaid.workers import InProcessWorker as InProcessWorker
    from nursemaid.workers import InProcessWorkers as InProcessWorkers
    from nursemaid.workers import Keep as Keep
    from nursemaid.workers import Lease as Lease
    from nursemaid.workers import Pool as Pool
    from nursemaid.workers import PoolStatistics as PoolStatistics
    from nursemaid.workers import PoolWorker as PoolWorker
    from nursemaid.workers import Port as Port
    from nursemaid.workers import PortWorkers as PortWorkers
    from nursemaid.workers import Remove as Remove
    from nursemaid.workers import SessionMoved as SessionMoved
    from nursemaid.workers import Transition as Transition
    from nursemaid.workers import WorkerEvent as WorkerEvent
    from nursemaid.workers import WorkerFactory as WorkerFactory
    from nursemaid.workers import WorkerInfo as WorkerInfo
    from nursemaid.workers import WorkerState as WorkerState
    from nursemaid.workers import open_pool as open_pool
    from nursemaid.workers import open_port as open_port
    from nursemaid.workers import serve as serve

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "nursemaid._errors": (
            "CheckoutTimeout",
            "ChildAlreadyExists",
            "ChildNotFound",
            "ChildRunning",
            "InternalError",
            "LifecycleError",
            "LocalProtocolError",
            "NursemaidError",
            "PoolClosed",
            "PortClosed",
            "PortOwnershipError",
            "ProtocolError",
            "RemoteError",
            "RemoteProtocolError",
            "RequestTimeout",
            "RestartIntensityExceeded",
            "StartError",
            "SupervisorError",
            "UsageError",
            "WorkerCrashed",
            "WorkerError",
        ),
        # Owners of the packages below add their public names here (and above,
        # under TYPE_CHECKING); tests/unit/test_exports.py checks both lists agree.
        "nursemaid.supervisor": (
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
        ),
        "nursemaid.workers": (
            "Port",
            "open_port",
            "serve",
            "InProcessWorker",
            "InProcessWorkers",
            "Keep",
            "Lease",
            "Pool",
            "PoolStatistics",
            "PoolWorker",
            "PortWorkers",
            "Remove",
            "SessionMoved",
            "Transition",
            "WorkerEvent",
            "WorkerFactory",
            "WorkerInfo",
            "WorkerState",
            "open_pool",
        ),
    },
)
