"""Fault plans round-trip through the fault worker's command line; plans read right."""

from __future__ import annotations

import pytest
from hypothesis import given

from nursemaid.testing import FAULT_KINDS, FaultPlan, fault_plans
from nursemaid.testing.fault_worker import _parser


@given(fault_plans(max_faults=len(FAULT_KINDS)))
def test_fault_plan_argv_parses_back_to_the_same_plan(plan: FaultPlan) -> None:
    options = vars(_parser().parse_args(plan.argv()[3:]))
    assert FaultPlan(**options) == plan


def test_healthy_plan_has_no_options() -> None:
    assert FaultPlan().argv("python") == ["python", "-m", "nursemaid.testing.fault_worker"]
    assert FaultPlan().starts
    assert FaultPlan().answers is None


def test_answers_is_the_earliest_fault() -> None:
    assert FaultPlan(crash_after=3, garbage_after=1).answers == 1
    assert not FaultPlan(hang_on_init=True).starts


def test_unknown_fault_kind_is_rejected_at_once() -> None:
    with pytest.raises(ValueError, match=r"unknown fault kinds \['explode'\]"):
        fault_plans(kinds=["crash_after", "explode"])
