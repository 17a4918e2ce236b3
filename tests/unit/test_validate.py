"""The shared argument checks: what they accept, and how they say no."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from nursemaid._validate import check_seconds, check_timeout


@pytest.mark.parametrize("value", [None, 0, 0.0, 2, 2.5, math.inf, Fraction(1, 3)])
def test_check_timeout_returns_none_and_numbers_of_seconds_unchanged(value: object) -> None:
    assert check_timeout(value) is value  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, -0.001, -math.inf, math.nan, "1", True, False, [1]])
def test_check_timeout_refuses_anything_else_naming_the_value(value: object) -> None:
    with pytest.raises(ValueError) as info:
        check_timeout(value, "checkout_timeout")  # type: ignore[arg-type]
    assert str(info.value) == (
        f"checkout_timeout must be a number of seconds >= 0, or None for no limit (got {value!r})"
    )


@pytest.mark.parametrize("value", [0, 5, 0.25, math.inf])
def test_check_seconds_returns_numbers_of_seconds_unchanged(value: float) -> None:
    assert check_seconds(value, "shutdown") == value


@pytest.mark.parametrize("value", [None, -1, math.nan, "5", True])
def test_check_seconds_refuses_none_and_anything_else(value: object) -> None:
    with pytest.raises(ValueError, match=r"^shutdown must be a number of seconds >= 0 \(got "):
        check_seconds(value, "shutdown")  # type: ignore[arg-type]
