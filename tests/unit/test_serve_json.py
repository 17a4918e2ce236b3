"""serve's JSON shortcut gives exactly the answers of ``json.loads`` and ``JSONEncoder.encode``.

``serve`` calls the standard library's C scanner and encoder directly and falls back
to the plain calls for anything unusual (``nursemaid.workers._serve._json_functions``).
These tests hold the shortcut to the plain calls: same values, same bytes, and the
same exception with the same message whenever the plain call raises.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nursemaid.workers._serve import _json_functions

LOADS, DUMPS = _json_functions()
ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        value = fn()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "ok", repr(value)  # repr: NaN != NaN, but their reprs agree


@given(json_values)
def test_dumps_gives_the_bytes_encode_gives_or_its_error(value: Any) -> None:
    # NaN and infinities included: both refuse them with the same message.
    assert outcome(lambda: DUMPS(value)) == outcome(lambda: ENCODE(value).encode())


@given(json_values)
def test_loads_reads_what_json_loads_reads(value: Any) -> None:
    data = json.dumps(value).encode()  # NaN and infinities as literals, read by both
    assert outcome(lambda: LOADS(data)) == outcome(lambda: json.loads(data))


@given(st.binary(max_size=40))
def test_loads_of_any_bytes_matches_json_loads(data: bytes) -> None:
    assert outcome(lambda: LOADS(data)) == outcome(lambda: json.loads(data))


@pytest.mark.parametrize(
    "data",
    [
        b' {"id": 1} ',  # whitespace around the value
        b'{"id": 1}\n',
        b'{"id": 1} {"id": 2}',  # extra data
        b"",
        b"   ",
        "\ufeff[1]".encode(),  # a UTF-8 byte-order mark
        '{"a": "é"}'.encode("utf-16"),  # json.loads detects UTF-16 and UTF-32
        '["x"]'.encode("utf-32-le"),
        b'["\xed\xa0\x80"]',  # an encoded lone surrogate: json.loads takes it
        b"[NaN, Infinity, -Infinity]",  # json.loads reads these; so does serve
        b'{"id": 1, "op": "echo", "args": "\xff"}',  # not UTF-8
        b'["a\x01"]',  # a raw control character in a string
        b"[" * 100_000,  # nested too deeply
    ],
)
def test_unusual_payloads_get_json_loads_own_answer(data: bytes) -> None:
    assert outcome(lambda: LOADS(data)) == outcome(lambda: json.loads(data))


def circular() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


@pytest.mark.parametrize(
    "make",
    [
        lambda: {"result": math.nan},
        lambda: {"result": [math.inf]},
        lambda: {"result": {1, 2}},
        lambda: {"result": object()},
        lambda: {1: "int keys become strings", None: "and so does None"},
        lambda: {"result": ("a", "tuple")},
        circular,
        lambda: {"result": "\ud800"},  # a lone surrogate: escaped, as encode() does
        lambda: {"result": 2**100},
    ],
)
def test_unusual_results_get_encode_own_answer(make: Callable[[], Any]) -> None:
    value = make()
    assert outcome(lambda: DUMPS(value)) == outcome(lambda: ENCODE(value).encode())


def test_a_plain_frame_takes_the_shortcut_and_an_unusual_one_the_plain_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []

    def plain_loads(data: bytes) -> str:
        calls.append(data)
        return "plain"

    monkeypatch.setattr(json, "loads", plain_loads)
    loads, dumps = _json_functions()
    # encode() is looked up when the encoder is built; the work it does, at each call.
    monkeypatch.setattr(
        json.JSONEncoder, "iterencode", lambda self, value, _one_shot=False: ['"plain"']
    )
    assert loads(b'{"id":1,"op":"echo","args":[1]}') == {"id": 1, "op": "echo", "args": [1]}
    assert dumps({"id": 1, "result": [1]}) == b'{"id":1,"result":[1]}'
    assert calls == []
    assert loads(b' {"id":1}') == "plain"
    assert calls == [b' {"id":1}']
    assert dumps({"self": circular()}) == b'"plain"'
