"""The strategy as a pure plan: which siblings stop, in which order, which start."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nursemaid.supervisor._spec import Restart, Strategy
from nursemaid.supervisor._strategy import (
    RestartPlan,
    Sibling,
    affected,
    plan_restart,
    shutdown_order,
)

P, T, TMP = Restart.PERMANENT, Restart.TRANSIENT, Restart.TEMPORARY


def kids(*specs: tuple[str, Restart, bool]) -> list[Sibling]:
    return [Sibling(i, r, running) for i, r, running in specs]


FOUR = kids(("a", P, True), ("b", P, True), ("c", P, True), ("d", P, True))


def test_one_for_one_restarts_only_the_child() -> None:
    b_exited = [s if s.id != "b" else Sibling("b", P, False) for s in FOUR]
    assert plan_restart(Strategy.ONE_FOR_ONE, b_exited, "b") == RestartPlan((), (), ("b",))


def test_one_for_all_stops_siblings_in_reverse_start_order_and_starts_all_in_start_order() -> None:
    b_exited = [s if s.id != "b" else Sibling("b", P, False) for s in FOUR]
    plan = plan_restart(Strategy.ONE_FOR_ALL, b_exited, "b")
    assert plan == RestartPlan(("d", "c", "a"), (), ("a", "b", "c", "d"))


def test_rest_for_one_restarts_the_child_and_those_started_after_it() -> None:
    b_exited = [s if s.id != "b" else Sibling("b", P, False) for s in FOUR]
    plan = plan_restart(Strategy.REST_FOR_ONE, b_exited, "b")
    assert plan == RestartPlan(("d", "c"), (), ("b", "c", "d"))


def test_temporary_siblings_are_stopped_and_dropped_not_restarted() -> None:
    siblings = kids(("a", TMP, True), ("b", P, False), ("c", TMP, True), ("d", T, True))
    plan = plan_restart(Strategy.ONE_FOR_ALL, siblings, "b")
    assert plan == RestartPlan(("d", "c", "a"), ("c", "a"), ("b", "d"))


def test_stopped_siblings_are_started_again_as_otp_does() -> None:
    # A transient sibling that had exited normally, or one terminated by hand,
    # comes back with a one_for_all restart (OTP's restart_multiple_children).
    siblings = kids(("a", T, False), ("b", P, False), ("c", P, True))
    plan = plan_restart(Strategy.ONE_FOR_ALL, siblings, "b")
    assert plan == RestartPlan(("c",), (), ("a", "b", "c"))


def test_affected_rejects_an_unknown_child() -> None:
    with pytest.raises(ValueError):
        affected(Strategy.ONE_FOR_ONE, ["a"], "zz")


def test_shutdown_order_is_reverse_start_order_of_running_children() -> None:
    siblings = kids(("a", P, True), ("b", P, False), ("c", P, True))
    assert shutdown_order(siblings) == ("c", "a")


siblings_lists = st.lists(
    st.tuples(st.sampled_from(list(Restart)), st.booleans()), min_size=1, max_size=8
).map(lambda xs: [Sibling(i, r, run) for i, (r, run) in enumerate(xs)])


@given(siblings_lists, st.sampled_from(list(Strategy)), st.data())
def test_plan_invariants_hold_for_any_children(
    siblings: list[Sibling], strategy: Strategy, data: st.DataObject
) -> None:
    child: Hashable = data.draw(st.sampled_from([s.id for s in siblings]))
    siblings = [Sibling(s.id, s.restart, False) if s.id == child else s for s in siblings]
    plan = plan_restart(strategy, siblings, child)
    position = {s.id: n for n, s in enumerate(siblings)}
    by_id = {s.id: s for s in siblings}
    # the child itself is always started, never stopped
    assert child in plan.start
    assert child not in plan.stop
    # orders
    assert [position[i] for i in plan.stop] == sorted(
        (position[i] for i in plan.stop), reverse=True
    )
    assert [position[i] for i in plan.start] == sorted(position[i] for i in plan.start)
    # only running children are stopped; dropped ones are temporary and never started
    assert all(by_id[i].running for i in plan.stop)
    assert all(by_id[i].restart is Restart.TEMPORARY for i in plan.drop)
    assert not set(plan.drop) & set(plan.start)
    # everything touched is affected by the strategy
    involved = set(affected(strategy, [s.id for s in siblings], child))
    assert set(plan.stop) | set(plan.start) | set(plan.drop) <= involved
    if strategy is Strategy.ONE_FOR_ONE:
        assert plan == RestartPlan((), (), (child,))
