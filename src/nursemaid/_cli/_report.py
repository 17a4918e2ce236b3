"""The demo's bookkeeping: every request from start to finish, and the final report.

Rules:
    * Every request the demo makes is registered with :meth:`Ledger.start` *before*
      anything is awaited for it, and leaves the ledger exactly once: with
      :meth:`Ledger.succeeded` (it returned a result) or :meth:`Ledger.failed` (it
      raised). A request still registered when the run is over never came back.
    * A request is **lost** when it neither returned a result nor raised a named
      error (a :class:`~nursemaid.NursemaidError`): either it raised something
      else (an unnamed error: ``KeyError``, an ``ExceptionGroup``...), or it was
      still pending after the drain deadline, that is, after every timeout that
      should have ended it. Requests that the *user* cancelled (a second Ctrl-C)
      are counted as ``cancelled``, not lost.
    * Pure: no Trio, no clock reads. Callers pass ``now`` in (Trio's clock).

Theory of operation:
    The demo and the soak both fill one :class:`Ledger`, then freeze it, together
    with what was measured outside it (restarts, leaks, faults injected), into a
    :class:`DemoReport`, which prints as text for people or as one JSON line for
    programs (``--json``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from nursemaid._errors import NursemaidError

__all__ = ["DemoReport", "Ledger", "error_kind", "percentile"]


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Return the *p*-th percentile of *sorted_values* by the nearest-rank method.

    The smallest value with at least ``p`` percent of the values at or below it;
    ``0.0`` for no values.

    Raises:
        ValueError: *p* is not within ``(0, 100]``.
    """
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100] (got {p!r})")
    if not sorted_values:
        return 0.0
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[rank - 1]


def error_kind(exc: BaseException) -> tuple[str, bool]:
    """Return ``(kind, named)`` for an exception a request raised.

    *kind* is the exception's class name; *named* says whether it is one of
    nursemaid's own errors (the only kind a request may end with and not be lost).
    """
    return type(exc).__name__, isinstance(exc, NursemaidError)


@attrs.define
class Ledger:
    """Every request the demo made, from start to finish.

    Example::

        ledger = Ledger()
        token = ledger.start(now=0.0)
        ledger.succeeded(token, now=0.004)

    Don't modify the attributes directly; use the methods.
    """

    pending: dict[int, float] = attrs.field(factory=dict)
    """token -> start time, for requests that have not finished yet."""
    ok: int = 0
    errors: Counter[str] = attrs.field(factory=Counter)
    """Named errors (``NursemaidError`` subclasses) by class name."""
    unnamed: Counter[str] = attrs.field(factory=Counter)
    """Any other exception a request ended with, by class name: these are lost."""
    latencies: list[float] = attrs.field(factory=list)
    """Seconds from start to result, for the requests that succeeded."""
    _next_token: int = 0

    @property
    def started(self) -> int:
        """How many requests were started."""
        return self._next_token

    def start(self, *, now: float) -> int:
        """Register a request that is about to be made; return its token."""
        token = self._next_token
        self._next_token += 1
        self.pending[token] = now
        return token

    def succeeded(self, token: int, *, now: float) -> None:
        """Record that the request *token* returned a result."""
        started = self.pending.pop(token)
        self.ok += 1
        self.latencies.append(now - started)

    def failed(self, token: int, exc: BaseException) -> str:
        """Record that the request *token* raised *exc*; return the error's kind."""
        del self.pending[token]
        kind, named = error_kind(exc)
        (self.errors if named else self.unnamed)[kind] += 1
        return kind


@attrs.frozen
class DemoReport:
    """The outcome of one demo (or soak) run.

    ``requests == ok + sum(errors.values()) + lost + cancelled`` always holds.
    The run is a success (exit status 0) when nothing was lost and nothing leaked.
    """

    requests: int
    ok: int
    errors: Mapping[str, int]
    lost: int
    cancelled: int
    restarts: int
    supervisor_restarts: int
    p50_ms: float
    p99_ms: float
    leaked_processes: int
    leaked_fds: int
    faults: Mapping[str, int]
    max_recovery_ms: float | None  # None: no kill was recovered from (none made, say)
    duration_s: float
    interrupted: bool
    size: int
    clients: int
    seed: int
    unnamed_errors: Mapping[str, int] = attrs.field(factory=dict)
    unrecovered_kills: int = 0  # kills with no new worker ready by the end of the run
    drain_expired: bool = False  # the drain deadline cut requests off (they are in `lost`)

    @classmethod
    def from_ledger(cls, ledger: Ledger, *, pending_are_lost: bool, **measured: Any) -> DemoReport:
        """Freeze *ledger* and the figures measured outside it into a report.

        Args:
            ledger: the requests, after the run.
            pending_are_lost: whether requests still pending count as lost (the
                drain deadline passed) or as cancelled (the user stopped the run).
            measured: the remaining fields (restarts, leaks, faults...).
        """
        pending = len(ledger.pending)
        lost = sum(ledger.unnamed.values()) + (pending if pending_are_lost else 0)
        latencies = sorted(ledger.latencies)
        return cls(
            requests=ledger.started,
            ok=ledger.ok,
            errors=dict(sorted(ledger.errors.items())),
            lost=lost,
            cancelled=0 if pending_are_lost else pending,
            p50_ms=round(percentile(latencies, 50) * 1000, 3),
            p99_ms=round(percentile(latencies, 99) * 1000, 3),
            unnamed_errors=dict(sorted(ledger.unnamed.items())),
            **measured,
        )

    @property
    def succeeded(self) -> bool:
        """Whether nothing was lost and nothing leaked."""
        return self.lost == 0 and self.leaked_processes == 0 and self.leaked_fds == 0

    def to_json(self) -> str:
        """Return the report as one line of JSON (the ``--json`` output)."""
        return json.dumps(attrs.asdict(self), separators=(",", ":"))

    def to_text(self) -> str:
        """Return the report for people to read."""
        rate = self.requests / self.duration_s if self.duration_s > 0 else 0.0
        errors = ", ".join(f"{k} {v:,}" for k, v in self.errors.items()) or "none"
        faults = ", ".join(f"{k} {v:,}" for k, v in self.faults.items()) or "none"
        verdict = "OK: nothing lost, nothing leaked" if self.succeeded else "FAILED"
        lines = [
            f"requests           {self.requests:,} in {self.duration_s:.1f} s ({rate:,.0f}/s)",
            f"  ok               {self.ok:,}",
            f"  errors           {errors}",
            f"  lost             {self.lost:,}",
        ]
        if self.unnamed_errors:
            unnamed = ", ".join(f"{k} {v:,}" for k, v in self.unnamed_errors.items())
            lines.append(f"    unnamed errors {unnamed}")
        if self.cancelled:
            lines.append(f"  cancelled        {self.cancelled:,} (by you)")
        lines += [
            f"latency ok         p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms",
            f"faults injected    {faults}",
            f"restarts           {self.restarts:,} workers replaced, "
            f"{self.supervisor_restarts} supervisor restarts",
            _recovery_line(self.max_recovery_ms, self.unrecovered_kills),
            f"leaked processes   {self.leaked_processes}",
            f"leaked descriptors {self.leaked_fds}",
            verdict + (" (interrupted)" if self.interrupted else ""),
        ]
        if self.drain_expired:
            lines.insert(4, "    (the drain deadline cut the requests still running off: lost)")
        return "\n".join(lines)


def _recovery_line(longest_ms: float | None, unrecovered: int) -> str:
    if longest_ms is None:
        text = "n/a (no kill recovered from)"
    else:
        text = f"{longest_ms:.0f} ms after a kill"
    if unrecovered:
        text += f"; {unrecovered:,} kill(s) with no new worker ready by the end"
    return f"longest recovery   {text}"
