"""The standard-library JSON backend's shortcut gives exactly the reference's answers.

``_std_dumps`` and ``_std_loads`` call ``json``'s C encoder and scanner directly and
fall back to ``_reference_dumps`` / ``_reference_loads`` (``JSONEncoder.encode`` and
``JSONDecoder.decode`` with every error translated) for anything unusual. These
tests hold the shortcut to the reference, and both to plain ``json.dumps`` /
``json.loads``: same values, same bytes, and the same exception with the same
message (and the same cause) whenever one of them refuses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from nursemaid import LocalProtocolError
from nursemaid.protocol._codec import (
    _reference_dumps,
    _reference_loads,
    _std_dumps,
    _std_loads,
)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from([2**100, "\ud800", "é\n\x00", math.inf, {1, 2}, object(), b"x"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text() | st.integers() | st.none() | st.floats(), inner, max_size=4)
    ),
    max_leaves=20,
)


def outcome(fn: Callable[[], Any]) -> tuple[str, str, str]:
    try:
        value = fn()
    except Exception as exc:
        return type(exc).__name__, str(exc), type(exc.__cause__).__name__
    return "ok", repr(value), ""  # repr: NaN != NaN, but their reprs agree


def plain_dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


@given(values)
@example({"self": "circular"})  # replaced by a real cycle below
def test_dumps_gives_the_references_bytes_or_its_error(value: Any) -> None:
    if value == {"self": "circular"}:
        value = {}
        value["self"] = value
    assert outcome(lambda: _std_dumps(value)) == outcome(lambda: _reference_dumps(value))


@given(values)
def test_dumps_gives_json_dumps_bytes_or_refuses_with_its_error(value: Any) -> None:
    kind, text, _ = outcome(lambda: plain_dumps(value))
    if kind == "ok":
        assert repr(_std_dumps(value)) == text
    else:
        with pytest.raises(LocalProtocolError) as info:
            _std_dumps(value)
        assert (type(info.value.__cause__).__name__, str(info.value.__cause__)) == (kind, text)


@given(st.binary(max_size=60))
@example(b' {"id": 1} ')
@example(b'{"id": 1} {"id": 2}')
@example(b"[NaN]")
@example(b"\xef\xbb\xbf[1]")
@example(b'["\xed\xa0\x80"]')
@example(b"[" * 100_000)
def test_loads_of_any_bytes_gives_the_references_value_or_its_error(data: bytes) -> None:
    assert outcome(lambda: _std_loads(data)) == outcome(lambda: _reference_loads(data))


@given(
    values.filter(lambda v: outcome(lambda: plain_dumps(v))[0] == "ok"),
    st.sampled_from([None, 0, 2]),
    st.sampled_from([(",", ":"), (", ", ": ")]),
    st.booleans(),
)
def test_loads_reads_what_json_loads_reads(
    value: Any, indent: int | None, separators: tuple[str, str], ensure_ascii: bool
) -> None:
    text = json.dumps(value, indent=indent, separators=separators, ensure_ascii=ensure_ascii)
    data = text.encode("utf-8", "surrogatepass")
    assert outcome(lambda: _std_loads(data)) == outcome(lambda: json.loads(data))


def test_the_shortcut_reads_memoryviews_and_bytearrays_too() -> None:
    assert _std_loads(memoryview(b'{"a":[1]}')) == {"a": [1]}  # type: ignore[arg-type]
    assert _std_loads(bytearray(b'{"a":[1]}')) == {"a": [1]}  # type: ignore[arg-type]
