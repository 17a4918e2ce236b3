"""Restart intensity: a pure sliding window over restart timestamps.

Rules:
    * A :class:`RestartWindow` never reads a clock. The caller passes the current
      time (a monotonic timestamp, in seconds: the supervisor passes
      ``trio.current_time()``, so :class:`trio.testing.MockClock` drives it).
    * Timestamps must not go backwards; passing an older one is a ``ValueError``.
    * A window is immutable: :meth:`RestartWindow.add` returns a new window.

Theory of operation:
    OTP keeps the list of recent restart times, newest first. On every restart it
    prepends *now*, keeps the timestamps *t* with ``t >= now - period`` (the
    boundary is inclusive) and compares the count with the intensity: more than
    ``intensity`` restarts in the window means the supervisor gives up. So with
    ``intensity=3, period=5.0``, three restarts in five seconds are tolerated and
    the fourth one stops the supervisor; ``intensity=0`` gives up on the first
    restart. We keep the same rule, oldest first, with float seconds instead of
    OTP's whole seconds.

    A pool uses the same window to decide when replacing crashed workers has
    become hopeless.
"""

from __future__ import annotations

import math

import attrs

__all__ = ["RestartWindow"]


def _check_intensity(_: object, __: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"intensity must be an int >= 0 (got {value!r})")


def _check_period(_: object, __: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value <= 0
    ):
        raise ValueError(f"period must be a number of seconds > 0 (got {value!r})")


@attrs.frozen
class RestartWindow:
    """A *restart window*: the restarts that happened in the last ``period`` seconds.

    Example::

        window = RestartWindow(intensity=3, period=5.0)
        window = window.add(trio.current_time())
        if window.exceeded:
            ...  # give up: stop every child, raise RestartIntensityExceeded

    Args:
        intensity: how many restarts are tolerated within ``period`` (an ``int``
            >= 0). One more than this within the window means giving up.
        period: the length of the window in seconds (> 0; ``math.inf`` means
            restarts are never forgotten).
        restarts: the timestamps of the restarts still in the window, oldest
            first. Normally left to :meth:`add`.

    Raises:
        ValueError: for a negative or non-integer intensity, or a period <= 0.
    """

    intensity: int = attrs.field(validator=_check_intensity)
    period: float = attrs.field(validator=_check_period)
    restarts: tuple[float, ...] = ()

    def add(self, now: float) -> RestartWindow:
        """Record a restart at *now* and forget the ones older than ``period``.

        Args:
            now: the current monotonic time in seconds, not earlier than the
                newest timestamp already recorded.

        Returns:
            A new window; check its :attr:`exceeded`.

        Raises:
            ValueError: if *now* is earlier than the newest recorded restart.
        """
        if self.restarts and now < self.restarts[-1]:
            raise ValueError(
                f"restart timestamps must not go backwards: got {now!r} after "
                f"{self.restarts[-1]!r}; pass a monotonic clock such as trio.current_time()"
            )
        kept: tuple[float, ...] = (*self.in_window(now), now)
        return attrs.evolve(self, restarts=kept)

    def in_window(self, now: float) -> tuple[float, ...]:
        """Return the recorded restarts that still count at *now* (``t >= now - period``)."""
        threshold = now - self.period
        kept = self.restarts
        # Oldest first: drop from the front while too old.
        start = 0
        while start < len(kept) and kept[start] < threshold:
            start += 1
        return kept[start:]

    @property
    def exceeded(self) -> bool:
        """More than ``intensity`` restarts are recorded in the window."""
        return len(self.restarts) > self.intensity
