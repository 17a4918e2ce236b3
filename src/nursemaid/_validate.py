"""Argument checks shared by every layer (generic helpers only; no domain logic).

Rules:
    * A bad argument is refused before anything happens (no frame written, no
      worker checked out), with a ``ValueError`` in the house style: lower-case,
      the argument's name, what was expected, and the offending value as ``!r``.
    * Imports no trio, attrs or cattrs: the protocol layer and ``serve``'s side may
      use it too.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_seconds", "check_timeout"]


def _is_seconds(value: object) -> bool:
    # Any real number (numpy's and Fraction too, as Trio takes them); bool is an
    # int, but `timeout=True` is a mistake, never a duration.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    seconds = float(value)
    return not math.isnan(seconds) and seconds >= 0


def check_timeout(value: float | None, name: str = "timeout") -> float | None:
    """Return *value* if it is ``None`` or a number of seconds ``>= 0``; else raise.

    ``math.inf`` is accepted (no limit, as ``None``); ``NaN``, negative numbers,
    booleans and non-numbers are refused.

    Example:
        >>> check_timeout(2.5)
        2.5
        >>> check_timeout(-1)
        Traceback (most recent call last):
        ...
        ValueError: timeout must be a number of seconds >= 0, or None for no limit (got -1)

    Args:
        value: the timeout to check.
        name: the argument's name, for the message (default ``"timeout"``).

    Raises:
        ValueError: *value* is not ``None`` and not a number of seconds ``>= 0``.
    """
    if value is None or _is_seconds(value):
        return value
    raise ValueError(
        f"{name} must be a number of seconds >= 0, or None for no limit (got {value!r})"
    )


def check_seconds(value: float, name: str) -> float:
    """Return *value* if it is a number of seconds ``>= 0`` (``None`` is refused).

    For durations that must be given, such as a grace period.

    Raises:
        ValueError: *value* is not a number of seconds ``>= 0``.
    """
    if _is_seconds(value):
        return value
    raise ValueError(f"{name} must be a number of seconds >= 0 (got {value!r})")
