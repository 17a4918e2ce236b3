"""The worker lifecycle table: total, reachable, enforced, observable, drawn."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest

from nursemaid import LifecycleError
from nursemaid.workers._lifecycle import (
    INITIAL_STATE,
    TERMINAL_STATES,
    TRANSITIONS,
    Transition,
    WorkerEvent,
    WorkerLifecycle,
    WorkerState,
    lifecycle_diagram,
    next_state,
)

GENERATED = Path(__file__).resolve().parents[2] / "docs" / "_generated"


def test_table_has_a_row_for_every_state() -> None:
    assert set(TRANSITIONS) == set(WorkerState)


def test_every_event_is_used_somewhere() -> None:
    used = {event for row in TRANSITIONS.values() for event in row}
    assert used == set(WorkerEvent)


def test_every_state_is_reachable_from_starting() -> None:
    seen = {INITIAL_STATE}
    frontier = [INITIAL_STATE]
    while frontier:
        for target in TRANSITIONS[frontier.pop()].values():
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(WorkerState)


def test_every_state_can_reach_a_terminal_state() -> None:
    for state in WorkerState:
        seen = {state}
        frontier = [state]
        while frontier:
            for target in TRANSITIONS[frontier.pop()].values():
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
        assert seen & TERMINAL_STATES, state


def test_terminal_states_are_exactly_stopped_and_failed() -> None:
    assert {WorkerState.STOPPED, WorkerState.FAILED} == TERMINAL_STATES


def test_every_live_state_can_be_stopped_or_fail() -> None:
    # No worker can get stuck: the pool can always stop it, and death is always legal
    # wherever the worker exists.
    for state in WorkerState:
        if state in TERMINAL_STATES or state is WorkerState.STOPPING:
            continue
        assert WorkerEvent.STOP in TRANSITIONS[state], state
        assert TRANSITIONS[state].keys() & {WorkerEvent.CRASH, WorkerEvent.INIT_FAILED}, state


@pytest.mark.parametrize(("state", "event"), list(itertools.product(WorkerState, WorkerEvent)))
def test_fire_follows_the_table_or_raises_leaving_state_unchanged(
    state: WorkerState, event: WorkerEvent
) -> None:
    seen: list[Transition] = []
    life = WorkerLifecycle(3, subscribers=[seen.append])
    life.state = state  # set up the case directly; production code never does this
    expected = TRANSITIONS[state].get(event)
    if expected is None:
        with pytest.raises(LifecycleError) as info:
            life.fire(event, now=1.0)
        assert life.state is state
        assert seen == []
        assert info.value.state is state
        assert info.value.event is event
        assert state.name in str(info.value)
        assert event.name in str(info.value)
        with pytest.raises(LifecycleError):
            next_state(state, event)
    else:
        assert life.fire(event, now=1.5, cause="because") is expected
        assert life.state is expected
        assert seen == [Transition(3, state, expected, event, "because", 1.5)]
        assert next_state(state, event) is expected


def test_illegal_transition_message_lists_what_is_allowed() -> None:
    life = WorkerLifecycle(9)
    with pytest.raises(LifecycleError, match=r"worker 9 in state STARTING cannot take event "):
        life.fire(WorkerEvent.CHECKOUT, now=0.0)
    with pytest.raises(LifecycleError, match="allowed from STARTING: SPAWNED, INIT_FAILED, STOP"):
        life.fire(WorkerEvent.CHECKOUT, now=0.0)


def test_terminal_state_says_so_in_the_error() -> None:
    life = WorkerLifecycle(1)
    life.fire(WorkerEvent.INIT_FAILED, now=0.0)
    assert life.terminal
    with pytest.raises(LifecycleError, match="none: the state is terminal"):
        life.fire(WorkerEvent.SPAWNED, now=0.0)


def test_subscribers_see_a_full_life_in_order() -> None:
    seen: list[Transition] = []
    life = WorkerLifecycle(0, subscribers=[seen.append])
    path = [
        WorkerEvent.SPAWNED,
        WorkerEvent.READY,
        WorkerEvent.CHECKOUT,
        WorkerEvent.CHECKIN,
        WorkerEvent.ACCEPT,
        WorkerEvent.STOP,
        WorkerEvent.EXIT,
    ]
    for t, event in enumerate(path):
        life.fire(event, now=float(t))
    assert [(tr.from_state, tr.to_state) for tr in seen] == [
        (WorkerState.STARTING, WorkerState.HANDSHAKING),
        (WorkerState.HANDSHAKING, WorkerState.IDLE),
        (WorkerState.IDLE, WorkerState.LEASED),
        (WorkerState.LEASED, WorkerState.RETURNING),
        (WorkerState.RETURNING, WorkerState.IDLE),
        (WorkerState.IDLE, WorkerState.STOPPING),
        (WorkerState.STOPPING, WorkerState.STOPPED),
    ]
    assert [tr.time for tr in seen] == [float(t) for t in range(len(path))]


def test_a_raising_subscriber_is_dropped_and_the_state_still_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Transition] = []

    def broken(transition: Transition) -> None:
        raise ZeroDivisionError

    subscribers = [broken, seen.append]
    life = WorkerLifecycle(2, subscribers=subscribers)
    with caplog.at_level(logging.ERROR, logger="nursemaid.workers"):
        life.fire(WorkerEvent.SPAWNED, now=0.0)
    assert life.state is WorkerState.HANDSHAKING
    assert subscribers == [seen.append]
    assert len(seen) == 1
    assert "unsubscribed" in caplog.text


@pytest.mark.parametrize(("fmt", "suffix"), [("mermaid", "mmd"), ("dot", "dot")])
def test_committed_diagram_matches_the_table(fmt: str, suffix: str) -> None:
    # Regenerate with the commands in docs/lifecycle.md ("The diagram").
    committed = (GENERATED / f"lifecycle.{suffix}").read_text()
    assert committed == lifecycle_diagram(fmt)  # type: ignore[arg-type]


def test_diagram_draws_every_transition_of_the_table() -> None:
    mermaid = lifecycle_diagram("mermaid")
    dot = lifecycle_diagram("dot")
    for state, row in TRANSITIONS.items():
        for event, target in row.items():
            assert f"{state.name} --> {target.name}: {event.name}" in mermaid
            assert f'{state.name} -> {target.name} [label="{event.name}"]' in dot


def test_unknown_diagram_format_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"must be 'mermaid' or 'dot' \(got 'svg'\)"):
        lifecycle_diagram("svg")  # type: ignore[arg-type]
