"""RestartWindow: OTP's add_restart as a pure window over timestamps passed in."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nursemaid.supervisor import RestartWindow


def add_all(window: RestartWindow, times: list[float]) -> RestartWindow:
    for t in times:
        window = window.add(t)
    return window


def test_intensity_restarts_within_period_are_tolerated() -> None:
    assert not add_all(RestartWindow(3, 5.0), [0, 1, 2]).exceeded


def test_one_more_restart_than_intensity_within_period_exceeds() -> None:
    assert add_all(RestartWindow(3, 5.0), [0, 1, 2, 3]).exceeded


def test_zero_intensity_exceeds_on_first_restart() -> None:
    assert RestartWindow(0, 5.0).add(10.0).exceeded


def test_restarts_older_than_period_are_forgotten() -> None:
    window = add_all(RestartWindow(1, 5.0), [0.0, 5.5])
    assert window.restarts == (5.5,)
    assert not window.exceeded


def test_window_boundary_is_inclusive_as_in_otp() -> None:
    # OTP keeps R when R >= Now - Period.
    window = add_all(RestartWindow(1, 5.0), [0.0, 5.0])
    assert window.restarts == (0.0, 5.0)
    assert window.exceeded


def test_infinite_period_never_forgets() -> None:
    window = add_all(RestartWindow(2, math.inf), [0, 1e9, 2e9])
    assert window.exceeded


def test_window_is_immutable() -> None:
    window = RestartWindow(1, 1.0)
    window.add(0.0)
    assert window.restarts == ()


def test_timestamps_going_backwards_are_rejected() -> None:
    with pytest.raises(ValueError, match="must not go backwards"):
        RestartWindow(3, 5.0).add(2.0).add(1.0)


@pytest.mark.parametrize("intensity", [-1, 1.5, True, "3"])
def test_bad_intensity_is_rejected(intensity: object) -> None:
    with pytest.raises(ValueError, match="intensity must be an int >= 0"):
        RestartWindow(intensity, 5.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("period", [0, -1.0, math.nan, None])
def test_bad_period_is_rejected(period: object) -> None:
    with pytest.raises(ValueError, match="period must be a number of seconds > 0"):
        RestartWindow(3, period)  # type: ignore[arg-type]


@given(
    st.integers(0, 5),
    st.floats(0.1, 10),
    st.lists(st.floats(0, 5, allow_nan=False), max_size=30),
)
def test_window_agrees_with_counting_restarts_in_period(
    intensity: int, period: float, gaps: list[float]
) -> None:
    times: list[float] = []
    now = 0.0
    window = RestartWindow(intensity, period)
    for gap in gaps:
        now += gap
        times.append(now)
        window = window.add(now)
        recent = [t for t in times if t >= now - period]
        assert window.restarts == tuple(recent)
        assert window.exceeded is (len(recent) > intensity)
