"""The demo's ledger and report: what counts as lost, and how figures are computed."""

from __future__ import annotations

import json

import pytest

from nursemaid import PortClosed, RequestTimeout
from nursemaid._cli._report import DemoReport, Ledger, percentile

MEASURED = {
    "restarts": 3,
    "supervisor_restarts": 0,
    "leaked_processes": 0,
    "leaked_fds": 0,
    "faults": {"kill": 2},
    "max_recovery_ms": 12.5,
    "duration_s": 1.0,
    "interrupted": False,
    "size": 4,
    "clients": 8,
    "seed": 1,
}


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_zero() -> None:
    assert percentile([], 50) == 0.0


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_percentile_outside_range_is_a_value_error(p: float) -> None:
    with pytest.raises(ValueError, match=r"percentile must be in \(0, 100\]"):
        percentile([1.0], p)


def test_named_errors_are_counted_by_kind_and_not_lost() -> None:
    ledger = Ledger()
    for exc in (RequestTimeout("late"), PortClosed("gone"), RequestTimeout("late")):
        ledger.failed(ledger.start(now=0.0), exc)
    report = DemoReport.from_ledger(ledger, pending_are_lost=True, **MEASURED)
    assert report.errors == {"PortClosed": 1, "RequestTimeout": 2}
    assert report.lost == 0
    assert report.succeeded


def test_an_unnamed_error_is_a_lost_request() -> None:
    ledger = Ledger()
    ledger.failed(ledger.start(now=0.0), KeyError("oops"))
    report = DemoReport.from_ledger(ledger, pending_are_lost=True, **MEASURED)
    assert report.lost == 1
    assert report.unnamed_errors == {"KeyError": 1}
    assert report.errors == {}
    assert not report.succeeded


def test_a_request_pending_after_the_drain_is_lost() -> None:
    ledger = Ledger()
    ledger.start(now=0.0)
    report = DemoReport.from_ledger(ledger, pending_are_lost=True, **MEASURED)
    assert (report.lost, report.cancelled) == (1, 0)


def test_a_request_the_user_cancelled_is_not_lost() -> None:
    ledger = Ledger()
    ledger.start(now=0.0)
    report = DemoReport.from_ledger(ledger, pending_are_lost=False, **MEASURED)
    assert (report.lost, report.cancelled) == (0, 1)
    assert report.succeeded


def test_every_request_is_accounted_for_exactly_once() -> None:
    ledger = Ledger()
    ledger.succeeded(ledger.start(now=0.0), now=0.002)
    ledger.failed(ledger.start(now=0.0), RequestTimeout("late"))
    ledger.failed(ledger.start(now=0.0), ValueError("unnamed"))
    ledger.start(now=0.0)
    report = DemoReport.from_ledger(ledger, pending_are_lost=True, **MEASURED)
    assert report.requests == 4
    assert (
        report.requests == report.ok + sum(report.errors.values()) + report.lost + report.cancelled
    )


def test_a_request_cannot_finish_twice() -> None:
    ledger = Ledger()
    token = ledger.start(now=0.0)
    ledger.succeeded(token, now=1.0)
    with pytest.raises(KeyError):
        ledger.failed(token, RequestTimeout("late"))


def test_latency_percentiles_are_in_milliseconds_of_successes() -> None:
    ledger = Ledger()
    for ms in range(1, 101):
        ledger.succeeded(ledger.start(now=0.0), now=ms / 1000)
    ledger.failed(ledger.start(now=0.0), RequestTimeout("slow ones do not count"))
    report = DemoReport.from_ledger(ledger, pending_are_lost=True, **MEASURED)
    assert (report.p50_ms, report.p99_ms) == (50.0, 99.0)


def test_a_leak_fails_the_run() -> None:
    report = DemoReport.from_ledger(
        Ledger(), pending_are_lost=True, **{**MEASURED, "leaked_fds": 1}
    )
    assert not report.succeeded
    assert "FAILED" in report.to_text()


def test_json_report_is_one_line_with_the_documented_keys() -> None:
    ledger = Ledger()
    ledger.succeeded(ledger.start(now=0.0), now=0.001)
    line = DemoReport.from_ledger(ledger, pending_are_lost=True, **MEASURED).to_json()
    assert "\n" not in line
    data = json.loads(line)
    for key in (
        "requests",
        "ok",
        "errors",
        "lost",
        "restarts",
        "p50_ms",
        "p99_ms",
        "leaked_processes",
    ):
        assert key in data
    assert data["requests"] == data["ok"] == 1


def test_the_recovery_line_says_when_nothing_was_measured_or_a_kill_never_recovered() -> None:
    # A run without kills measured no recovery: it must not claim "0 ms".
    none = DemoReport.from_ledger(
        Ledger(), pending_are_lost=True, **{**MEASURED, "max_recovery_ms": None}
    )
    assert "longest recovery   n/a (no kill recovered from)" in none.to_text()
    late = DemoReport.from_ledger(Ledger(), pending_are_lost=True, **MEASURED, unrecovered_kills=3)
    assert "12 ms after a kill; 3 kill(s) with no new worker ready by the end" in late.to_text()


def test_the_report_says_when_the_drain_deadline_cut_requests_off() -> None:
    ledger = Ledger()
    ledger.start(now=0.0)  # still running when the drain deadline passed
    report = DemoReport.from_ledger(ledger, pending_are_lost=True, **MEASURED, drain_expired=True)
    text = report.to_text()
    assert report.lost == 1
    assert "  lost             1\n    (the drain deadline cut" in text
