"""The restart decision table: total, and OTP's do_restart clause by clause."""

from __future__ import annotations

import itertools

import pytest

from nursemaid.supervisor._policy import (
    KEEPS_SPEC,
    RESTART_POLICY,
    Decision,
    ExitKind,
    auto_shutdown_due,
    decide,
)
from nursemaid.supervisor._spec import AutoShutdown, Restart


def test_restart_policy_is_total() -> None:
    assert set(RESTART_POLICY) == set(Restart)
    for row in RESTART_POLICY.values():
        assert set(row) == set(ExitKind)
        assert all(isinstance(d, Decision) for d in row.values())


def test_keeps_spec_is_total() -> None:
    assert set(KEEPS_SPEC) == set(Restart)


@pytest.mark.parametrize("kind", list(ExitKind))
def test_permanent_child_is_restarted_after_any_exit(kind: ExitKind) -> None:
    assert decide(Restart.PERMANENT, kind) is Decision.RESTART


@pytest.mark.parametrize("kind", [ExitKind.NORMAL, ExitKind.SHUTDOWN])
def test_transient_child_not_restarted_after_normal_exit_or_shutdown(kind: ExitKind) -> None:
    assert decide(Restart.TRANSIENT, kind) is Decision.FORGET


def test_transient_child_restarted_after_crash() -> None:
    assert decide(Restart.TRANSIENT, ExitKind.CRASH) is Decision.RESTART


@pytest.mark.parametrize("kind", list(ExitKind))
def test_temporary_child_never_restarted(kind: ExitKind) -> None:
    assert decide(Restart.TEMPORARY, kind) is Decision.FORGET


def test_only_temporary_specs_are_dropped_when_forgotten() -> None:
    assert KEEPS_SPEC == {
        Restart.PERMANENT: True,
        Restart.TRANSIENT: True,
        Restart.TEMPORARY: False,
    }


@pytest.mark.parametrize(
    ("flag", "significant", "others_running"),
    list(itertools.product(AutoShutdown, [False, True], [False, True])),
)
def test_auto_shutdown_due_matches_otp(
    flag: AutoShutdown, significant: bool, others_running: bool
) -> None:
    expected = significant and (
        flag is AutoShutdown.ANY_SIGNIFICANT
        or (flag is AutoShutdown.ALL_SIGNIFICANT and not others_running)
    )
    assert auto_shutdown_due(flag, significant, others_running) is expected
