"""nursemaid.workers: see the package's modules; this file only re-exports, lazily."""

from __future__ import annotations

from nursemaid._lazy import attach

# Not `from typing import TYPE_CHECKING`: importing typing costs a worker ~4 ms of
# start-up; type checkers treat this name the same way.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from nursemaid.workers._lifecycle import TRANSITIONS as TRANSITIONS
    from nursemaid.workers._lifecycle import Transition as Transition
    from nursemaid.workers._lifecycle import WorkerEvent as WorkerEvent
    from nursemaid.workers._lifecycle import WorkerState as WorkerState
    from nursemaid.workers._lifecycle import lifecycle_diagram as lifecycle_diagram
    from nursemaid.workers._lifecycle import next_state as next_state
    from nursemaid.workers._pool import Keep as Keep
    from nursemaid.workers._pool import Lease as Lease
    from nursemaid.workers._pool import Pool as Pool
    from nursemaid.workers._pool import PoolStatistics as PoolStatistics
    from nursemaid.workers._pool import PoolWorker as PoolWorker
    from nursemaid.workers._pool import PortWorkers as PortWorkers
    from nursemaid.workers._pool import Remove as Remove
    from nursemaid.workers._pool import WorkerFactory as WorkerFactory
    from nursemaid.workers._pool import WorkerInfo as WorkerInfo
    from nursemaid.workers._pool import open_pool as open_pool
    from nursemaid.workers._pool_core import SessionMoved as SessionMoved
    from nursemaid.workers._pool_inprocess import InProcessWorker as InProcessWorker
    from nursemaid.workers._pool_inprocess import InProcessWorkers as InProcessWorkers
    from nursemaid.workers._port import Port as Port
    from nursemaid.workers._port import open_port as open_port
    from nursemaid.workers._serve import serve as serve

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "._port": ("Port", "open_port"),
        "._serve": ("serve",),
        "._lifecycle": (
            "TRANSITIONS",
            "Transition",
            "WorkerEvent",
            "WorkerState",
            "lifecycle_diagram",
            "next_state",
        ),
        "._pool": (
            "Keep",
            "Lease",
            "Pool",
            "PoolStatistics",
            "PoolWorker",
            "PortWorkers",
            "Remove",
            "WorkerFactory",
            "WorkerInfo",
            "open_pool",
        ),
        "._pool_core": ("SessionMoved",),
        "._pool_inprocess": (
            "InProcessWorker",
            "InProcessWorkers",
        ),
    },
)
