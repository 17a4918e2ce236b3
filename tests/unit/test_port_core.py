"""The pure parts of ports: the stderr tail, default names, argv checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nursemaid.workers._port import StderrTail, _check_argv, _default_name


def test_stderr_tail_returns_each_completed_line_once() -> None:
    tail = StderrTail()
    assert tail.feed("one\ntw") == ["one"]
    assert tail.feed("o\nthree\n") == ["two", "three"]
    assert tail.text() == "one\ntwo\nthree\n"


def test_stderr_tail_keeps_the_unfinished_line_apart_until_the_end() -> None:
    tail = StderrTail()
    assert tail.feed("partial") == []
    assert tail.text() == "partial"
    assert tail.feed("", final=True) == ["partial"]
    assert tail.text() == "partial\n"


def test_stderr_tail_keeps_only_the_last_lines() -> None:
    tail = StderrTail(max_lines=3)
    tail.feed("".join(f"line {i}\n" for i in range(10)))
    assert tail.text() == "line 7\nline 8\nline 9\n"


def test_stderr_tail_cuts_long_lines_and_says_how_much() -> None:
    tail = StderrTail(line_chars=10)
    assert tail.feed("x" * 25 + "\n") == ["x" * 10 + "... [15 more characters]"]


def test_stderr_tail_bounds_a_line_that_never_ends() -> None:
    tail = StderrTail(max_lines=3, line_chars=10)
    for _ in range(1000):
        tail.feed("y" * 7)
    assert len(tail.text()) <= 3 * (10 + len("... [99 more characters]") + 1) + 10


def test_stderr_tail_drops_carriage_returns_of_crlf_lines() -> None:
    tail = StderrTail()
    assert tail.feed("windows\r\n") == ["windows"]


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        ([sys.executable, "worker.py"], "worker"),
        ([sys.executable, "-u", "/srv/app/calc_worker.py", "--fast"], "calc_worker"),
        (["python3", "-m", "nursemaid.testing.fault_worker"], "nursemaid.testing.fault_worker"),
        (["python", "-c", "print()"], "python"),
        (["/usr/bin/cat"], "cat"),
    ],
)
def test_default_name_is_the_worker_not_the_interpreter(argv: list[str], name: str) -> None:
    assert _default_name(argv) == name


def test_argv_accepts_paths_and_gives_strings() -> None:
    assert _check_argv([Path("/bin/cat"), "-u"]) == ("/bin/cat", "-u")


def test_argv_as_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="never runs a shell"):
        _check_argv("cat -u")


def test_empty_argv_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="must name a program"):
        _check_argv([])


@pytest.mark.parametrize(
    ("op", "args"),
    [("echo", None), ("add", [1, 2]), ("é", {"text": "ünïcode", "n": [1.5, True, None]})],
)
def test_the_ports_fast_request_encoding_equals_the_standard_envelopes(
    op: str, args: object
) -> None:
    from nursemaid.protocol._codec import json_functions
    from nursemaid.protocol._envelope import Request, StandardEnvelope

    envelope = StandardEnvelope()
    dumps = json_functions(envelope.backend)[1]  # type: ignore[arg-type]
    assert dumps({"id": 7, "op": op, "args": args}) == envelope.encode_request(Request(7, op, args))
