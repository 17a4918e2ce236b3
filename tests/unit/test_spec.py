"""Child specs and supervisor flags: defaults in one place, validation that names the fix."""

from __future__ import annotations

import math
from typing import Any

import pytest

from nursemaid.supervisor._spec import (
    BRUTAL_KILL,
    DEFAULTS,
    INFINITY,
    AutoShutdown,
    ChildSpec,
    ChildType,
    Restart,
    Strategy,
    SupervisorFlags,
    check_specs,
    shutdown_seconds,
)


async def child(*, task_status: Any = None) -> None:
    pass


def test_child_spec_defaults_come_from_defaults() -> None:
    spec = ChildSpec("a", child)
    assert spec.restart is DEFAULTS.restart is Restart.PERMANENT
    assert spec.shutdown == DEFAULTS.shutdown == 5.0
    assert spec.start_timeout == DEFAULTS.start_timeout
    assert spec.significant is False
    assert spec.type is ChildType.WORKER
    assert spec.name is None


def test_supervisor_flags_defaults_come_from_defaults() -> None:
    flags = SupervisorFlags()
    assert flags.strategy is Strategy.ONE_FOR_ONE
    assert (flags.intensity, flags.period) == (3, 5.0)
    assert flags.auto_shutdown is AutoShutdown.NEVER


def test_child_spec_is_frozen() -> None:
    spec = ChildSpec("a", child)
    with pytest.raises(AttributeError):
        spec.id = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("shutdown", "seconds"), [(BRUTAL_KILL, 0.0), (INFINITY, math.inf), (2, 2.0), (0.5, 0.5)]
)
def test_shutdown_seconds(shutdown: Any, seconds: float) -> None:
    assert shutdown_seconds(shutdown) == seconds
    assert ChildSpec("a", child, shutdown=shutdown).shutdown_seconds == seconds


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"restart": "permanent"}, TypeError, r"child spec 'a': restart must be one of Restart\."),
        ({"shutdown": -1}, ValueError, r"shutdown must be a number of seconds >= 0.*\(got -1\)"),
        ({"shutdown": math.nan}, ValueError, r"shutdown must be a number"),
        ({"shutdown": "5"}, ValueError, r"shutdown must be a number"),
        ({"start_timeout": 0}, ValueError, r"start_timeout must be a number of seconds > 0"),
        ({"significant": 1}, TypeError, r"significant must be a bool \(got 1\)"),
        (
            {"significant": True},
            ValueError,
            r"child 'a' must have restart=TRANSIENT or TEMPORARY to be significant "
            r"\(got PERMANENT\)",
        ),
        ({"type": "worker"}, TypeError, r"type must be one of ChildType"),
        ({"name": []}, TypeError, r"name must be hashable or None"),
    ],
)
def test_bad_child_spec_fields_name_child_field_and_value(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ChildSpec("a", child, **kwargs)


def test_start_must_be_callable() -> None:
    with pytest.raises(TypeError, match=r"start must be an async callable.*\(got 42\)"):
        ChildSpec("a", 42)  # type: ignore[arg-type]


def test_id_must_be_hashable() -> None:
    with pytest.raises(TypeError, match=r"id must be hashable"):
        ChildSpec([], child)  # type: ignore[arg-type]


def test_significant_transient_child_is_allowed() -> None:
    assert ChildSpec("a", child, Restart.TRANSIENT, significant=True).significant


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "one_for_one"}, "strategy must be one of"),
        ({"intensity": -1}, "intensity must be an int >= 0"),
        ({"period": 0}, "period must be a number of seconds > 0"),
        ({"auto_shutdown": None}, "auto_shutdown must be one of"),
    ],
)
def test_bad_flags_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        SupervisorFlags(**kwargs)


def test_check_specs_rejects_duplicate_ids() -> None:
    with pytest.raises(ValueError, match="duplicate child id 'a'"):
        check_specs([ChildSpec("a", child), ChildSpec("a", child)], AutoShutdown.NEVER)


def test_check_specs_rejects_an_id_already_present() -> None:
    with pytest.raises(ValueError, match="duplicate child id 'a'"):
        check_specs([ChildSpec("a", child)], AutoShutdown.NEVER, existing=["a"])


def test_check_specs_rejects_significant_child_without_auto_shutdown() -> None:
    spec = ChildSpec("a", child, Restart.TRANSIENT, significant=True)
    with pytest.raises(ValueError, match="auto_shutdown=NEVER; pass auto_shutdown="):
        check_specs([spec], AutoShutdown.NEVER)
    assert check_specs([spec], AutoShutdown.ANY_SIGNIFICANT) == (spec,)


def test_check_specs_rejects_non_specs() -> None:
    with pytest.raises(TypeError, match="children must be ChildSpec instances"):
        check_specs([("a", child)], AutoShutdown.NEVER)  # type: ignore[list-item]


def test_a_supervisors_run_is_inferred_as_a_supervisor_child() -> None:
    from nursemaid.supervisor import Supervisor

    sup = Supervisor([], name="inner")
    assert ChildSpec("inner", sup.run).type is ChildType.SUPERVISOR
    spec = sup.child_spec()
    assert (spec.id, spec.type, spec.shutdown) == ("inner", ChildType.SUPERVISOR, INFINITY)
    assert spec.start_timeout == math.inf


def test_every_supervisor_enum_member_reprs_as_the_python_that_names_it() -> None:
    import nursemaid
    from nursemaid.supervisor._policy import Decision

    enums = [
        nursemaid.AutoShutdown,
        nursemaid.ChildState,
        nursemaid.ChildType,
        nursemaid.ExitKind,
        nursemaid.Restart,
        nursemaid.Strategy,
    ]
    for cls in enums:
        for member in cls:
            assert eval(repr(member), {cls.__name__: cls}) is member
    assert [repr(d) for d in Decision] == ["Decision.RESTART", "Decision.FORGET"]
    assert repr(BRUTAL_KILL) == "BRUTAL_KILL"
