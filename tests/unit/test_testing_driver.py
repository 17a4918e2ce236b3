"""The state-machine driver rejects misuse at once, with messages naming the fix."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from nursemaid import UsageError
from nursemaid.testing import Harness, Rule, TrioStateMachine


async def noop(state: object) -> None:
    pass


def test_rule_must_be_an_async_function() -> None:
    machine: TrioStateMachine[Harness] = TrioStateMachine()

    def sync_rule(state: object) -> None:
        pass

    with pytest.raises(ValueError, match="rule 'sync_rule' must be an async function"):
        machine.add_rule(Rule(sync_rule))  # type: ignore[arg-type]


def test_two_rules_cannot_share_a_name() -> None:
    machine: TrioStateMachine[Harness] = TrioStateMachine(name="m")
    machine.add_rule(Rule(noop))
    with pytest.raises(ValueError, match="'m' already has a rule named 'noop'"):
        machine.add_rule(Rule(noop))


def test_rule_decorator_returns_the_function_and_records_arguments() -> None:
    machine: TrioStateMachine[Harness] = TrioStateMachine()
    strategy = st.integers()
    assert machine.rule(n=strategy)(noop) is noop
    assert machine.rules == [Rule(noop, {"n": strategy})]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_steps", -1, "max_steps must be >= 0 (got -1)"),
        ("average_steps", 0, "average_steps must be >= 1 (got 0)"),
        ("step_timeout", 0.0, "step_timeout must be > 0 (got 0.0)"),
    ],
)
def test_bad_options_are_rejected(option: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrioStateMachine(**{option: value})  # type: ignore[arg-type]


def test_machine_without_rules_is_a_usage_error() -> None:
    test = TrioStateMachine(name="empty").test()
    with pytest.raises(UsageError, match="'empty' has no rules"):
        test()


def test_background_nursery_is_unavailable_before_setup_yields() -> None:
    with pytest.raises(UsageError, match="opens after setup has yielded"):
        _ = Harness(clock=None).nursery


def test_test_function_is_named_after_the_machine() -> None:
    assert TrioStateMachine(name="Pool: lazy").test().__name__ == "test_pool__lazy"


def test_rules_given_to_the_constructor_are_checked_like_decorated_ones() -> None:
    with pytest.raises(ValueError, match="'m' already has a rule named 'noop'"):
        TrioStateMachine(name="m", rules=[Rule(noop), Rule(noop)])
