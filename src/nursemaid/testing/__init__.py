"""nursemaid.testing: the harness for property-based tests of supervised workers.

A Trio driver for hypothesis state machines (:class:`TrioStateMachine`), hypothesis
strategies for fault plans and client schedules, scripted supervised children
(:class:`ScriptedChildren`), a fault-injecting worker program
(``python -m nursemaid.testing.fault_worker``), and a pytest plugin with fixtures.
See ``docs/testing.md``.

This file only re-exports, lazily (see :mod:`nursemaid._lazy`): running
``python -m nursemaid.testing.fault_worker`` executes it first, and the worker must
start without importing trio, attrs, cattrs or hypothesis.
"""

from __future__ import annotations

from nursemaid._lazy import attach

# Not `from typing import TYPE_CHECKING`: the fault worker (`python -m
# nursemaid.testing.fault_worker`) imports this package, and importing typing costs
# a worker ~4 ms of start-up; type checkers treat this name as True.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from nursemaid.testing._driver import DEFAULT_AVERAGE_STEPS as DEFAULT_AVERAGE_STEPS
    from nursemaid.testing._driver import DEFAULT_MAX_STEPS as DEFAULT_MAX_STEPS
    from nursemaid.testing._driver import DEFAULT_STEP_TIMEOUT as DEFAULT_STEP_TIMEOUT
    from nursemaid.testing._driver import Harness as Harness
    from nursemaid.testing._driver import Pick as Pick
    from nursemaid.testing._driver import Rule as Rule
    from nursemaid.testing._driver import TrioStateMachine as TrioStateMachine
    from nursemaid.testing._driver import autojump_clock as autojump_clock
    from nursemaid.testing._driver import pick as pick
    from nursemaid.testing._plugin import EventCapture as EventCapture
    from nursemaid.testing._plugin import LeakCheck as LeakCheck
    from nursemaid.testing._pool_machine import FAULT_WORKER as FAULT_WORKER
    from nursemaid.testing._pool_machine import CheckoutAnswer as CheckoutAnswer
    from nursemaid.testing._pool_machine import Handshake as Handshake
    from nursemaid.testing._pool_machine import PoolClient as PoolClient
    from nursemaid.testing._pool_machine import PoolTarget as PoolTarget
    from nursemaid.testing._pool_machine import PoolWorld as PoolWorld
    from nursemaid.testing._pool_machine import PortTarget as PortTarget
    from nursemaid.testing._pool_machine import ScriptedTarget as ScriptedTarget
    from nursemaid.testing._pool_machine import ScriptedWorkers as ScriptedWorkers
    from nursemaid.testing._pool_machine import pool_state_machine as pool_state_machine
    from nursemaid.testing._scripted import ScriptedChildren as ScriptedChildren
    from nursemaid.testing._scripted import ScriptedCrash as ScriptedCrash
    from nursemaid.testing._scripted import ScriptedStartFailure as ScriptedStartFailure
    from nursemaid.testing._strategies import FAULT_KINDS as FAULT_KINDS
    from nursemaid.testing._strategies import ClientVisit as ClientVisit
    from nursemaid.testing._strategies import FaultPlan as FaultPlan
    from nursemaid.testing._strategies import LeaseEnd as LeaseEnd
    from nursemaid.testing._strategies import client_schedules as client_schedules
    from nursemaid.testing._strategies import fault_plans as fault_plans
    from nursemaid.testing._strategies import run_client_schedule as run_client_schedule

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "nursemaid.testing._driver": (
            "DEFAULT_AVERAGE_STEPS",
            "DEFAULT_MAX_STEPS",
            "DEFAULT_STEP_TIMEOUT",
            "Harness",
            "Pick",
            "Rule",
            "TrioStateMachine",
            "autojump_clock",
            "pick",
        ),
        "nursemaid.testing._plugin": (
            "EventCapture",
            "LeakCheck",
        ),
        "nursemaid.testing._pool_machine": (
            "FAULT_WORKER",
            "CheckoutAnswer",
            "Handshake",
            "PoolClient",
            "PoolTarget",
            "PoolWorld",
            "PortTarget",
            "ScriptedTarget",
            "ScriptedWorkers",
            "pool_state_machine",
        ),
        "nursemaid.testing._scripted": (
            "ScriptedChildren",
            "ScriptedCrash",
            "ScriptedStartFailure",
        ),
        "nursemaid.testing._strategies": (
            "FAULT_KINDS",
            "ClientVisit",
            "FaultPlan",
            "LeaseEnd",
            "client_schedules",
            "fault_plans",
            "run_client_schedule",
        ),
    },
)
