"""Codecs (``nursemaid.protocol._codec``): JSON on either backend, raw bytes, lookup."""

from __future__ import annotations

import importlib.util
import math
import sys
from typing import Any

import pytest

from nursemaid import LocalProtocolError, RemoteProtocolError
from nursemaid.protocol import Codec, JsonCodec, RawCodec, get_codec
from nursemaid.protocol._codec import json_functions

HAS_ORJSON = importlib.util.find_spec("orjson") is not None
BACKENDS = [
    "json",
    pytest.param(
        "orjson", marks=pytest.mark.skipif(not HAS_ORJSON, reason="the orjson extra is missing")
    ),
]


@pytest.fixture(params=BACKENDS)
def codec(request: pytest.FixtureRequest) -> JsonCodec:
    return JsonCodec(backend=request.param)


# ---- JSON: encoding -------------------------------------------------------------------


def test_json_is_compact_utf8_not_ascii_escaped(codec: JsonCodec) -> None:
    assert codec.encode({"a": [1, 2.5, None, True], "é": "ü"}) == (
        b'{"a":[1,2.5,null,true],"\xc3\xa9":"\xc3\xbc"}'
    )


def test_json_tuples_encode_as_arrays(codec: JsonCodec) -> None:
    assert codec.decode(codec.encode((1, (2,)))) == [1, [2]]


def test_json_encodes_integers_beyond_64_bits_exactly(codec: JsonCodec) -> None:
    assert codec.encode(2**70) == b"1180591620717411303424"


def test_json_non_string_keys_become_strings(codec: JsonCodec) -> None:
    assert codec.decode(codec.encode({1: "a"})) == {"1": "a"}


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ({1, 2}, "set is not JSON serializable"),
        (object(), "object is not JSON serializable"),
        (b"bytes", "bytes is not JSON serializable"),
        ("\ud800", "surrogates not allowed"),
    ],
)
def test_json_refuses_values_json_cannot_carry(codec: JsonCodec, value: Any, why: str) -> None:
    with pytest.raises(LocalProtocolError, match=rf"cannot encode message as JSON: .*{why}"):
        codec.encode(value)


def test_json_refusal_says_what_was_expected_and_what_came(codec: JsonCodec) -> None:
    with pytest.raises(LocalProtocolError) as info:
        codec.encode({"when": {1, 2}})
    assert "\nExpected: None, bool, int, finite float, str" in str(info.value)
    assert "\nGot: {'when': {1, 2}}" in str(info.value)


def test_json_refuses_a_circular_structure(codec: JsonCodec) -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(LocalProtocolError, match=r"cannot encode message as JSON"):
        codec.encode(loop)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "make",
    [
        lambda x: x,
        lambda x: [None, x],
        lambda x: {"id": 1, "op": "echo", "args": [1.5, {"deep": (None, x)}]},
    ],
)
def test_json_refuses_nan_and_infinity_on_either_backend_with_one_message(
    codec: JsonCodec, value: float, make: Any
) -> None:
    message = make(value)
    with pytest.raises(LocalProtocolError, match=r"not JSON compliant") as info:
        codec.encode(message)
    with pytest.raises(LocalProtocolError) as reference:
        JsonCodec(backend="json").encode(message)
    assert str(info.value) == str(reference.value)


def test_json_writes_null_and_finite_floats_beside_each_other(codec: JsonCodec) -> None:
    # The orjson backend's check for NaN looks twice at payloads with a null in them.
    assert codec.encode([None, 1.5, {"x": None}]) == b'[null,1.5,{"x":null}]'


# ---- JSON: decoding -------------------------------------------------------------------


def test_json_decodes_any_json_value(codec: JsonCodec) -> None:
    assert codec.decode(b' {"a": [1, -2.5e3, "x", null, false]} ') == {
        "a": [1, -2500.0, "x", None, False]
    }


def test_json_decodes_an_escaped_lone_surrogate_exactly(codec: JsonCodec) -> None:
    assert codec.decode(b'"\\ud800"') == "\ud800"


def test_stdlib_json_decodes_integers_beyond_64_bits_exactly() -> None:
    assert JsonCodec(backend="json").decode(b"1180591620717411303424") == 2**70


@pytest.mark.parametrize("payload", [b"\xff", b'"\xc3"', b'{"a":"\xed\xa0\x80"}'])
def test_invalid_utf8_is_a_remote_protocol_error_naming_the_byte(
    codec: JsonCodec, payload: bytes
) -> None:
    with pytest.raises(RemoteProtocolError, match=r"payload is not valid UTF-8 \(.* at byte \d+\)"):
        codec.decode(payload)


@pytest.mark.parametrize("payload", [b"", b"{", b"[1,]", b"nul", b"1 2", b"{'a': 1}"])
def test_text_that_is_not_json_is_a_remote_protocol_error(codec: JsonCodec, payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match=r"payload is not JSON \(.* at byte \d+\)"):
        codec.decode(payload)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"[1, NaN]"])
def test_nan_and_infinity_literals_are_not_json(codec: JsonCodec, literal: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match=r"payload is not JSON"):
        codec.decode(literal)


def test_json_nested_too_deeply_is_a_remote_protocol_error_not_recursion(
    codec: JsonCodec,
) -> None:
    with pytest.raises(RemoteProtocolError, match=r"nested too deeply"):
        codec.decode(b"[" * 100_000 + b"]" * 100_000)


def test_error_message_quotes_a_bounded_snippet(codec: JsonCodec) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        codec.decode(b"x" * 10_000)
    assert "... (10000 bytes)" in str(info.value)
    assert len(str(info.value)) < 300


def test_json_decode_accepts_bytes_like_payloads(codec: JsonCodec) -> None:
    assert codec.decode(memoryview(b"[1]")) == [1]  # type: ignore[arg-type]
    assert codec.decode(bytearray(b"[1]")) == [1]  # type: ignore[arg-type]


# ---- backends -------------------------------------------------------------------------


def test_auto_backend_prefers_orjson_when_installed() -> None:
    assert JsonCodec().backend == ("orjson" if HAS_ORJSON else "json")


def test_auto_backend_falls_back_to_the_stdlib_without_orjson(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # makes `import orjson` fail
    codec = JsonCodec()
    assert codec.backend == "json"
    assert codec.decode(codec.encode({"a": [1]})) == {"a": [1]}


def test_orjson_backend_without_orjson_is_an_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)
    with pytest.raises(ImportError):
        JsonCodec(backend="orjson")


def test_unknown_backend_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"JSON backend must be 'auto', 'json' or 'orjson'"):
        json_functions("simdjson")  # type: ignore[arg-type]


def test_codec_repr_names_the_backend() -> None:
    assert repr(JsonCodec(backend="json")) == "JsonCodec(backend='json')"
    assert repr(RawCodec()) == "RawCodec()"


# ---- raw ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"\x00\xff", bytearray(b"\x00\xff"), memoryview(b"\x00\xff")])
def test_raw_sends_bytes_like_values_unchanged(value: bytes) -> None:
    encoded = RawCodec().encode(value)
    assert encoded == b"\x00\xff"
    assert type(encoded) is bytes


def test_raw_decodes_every_payload_to_bytes() -> None:
    assert RawCodec().decode(b"") == b""
    assert type(RawCodec().decode(bytearray(b"a"))) is bytes  # type: ignore[arg-type]


def test_raw_refuses_str_and_suggests_encoding_it() -> None:
    with pytest.raises(LocalProtocolError, match=r"Got: 'hi' \(encode the str first"):
        RawCodec().encode("hi")  # type: ignore[arg-type]


def test_raw_refuses_other_values_with_expected_and_got() -> None:
    with pytest.raises(LocalProtocolError, match=r"Expected: bytes.*\nGot: 5$"):
        RawCodec().encode(5)  # type: ignore[arg-type]


# ---- lookup ---------------------------------------------------------------------------


def test_get_codec_knows_json_and_raw_by_name() -> None:
    assert isinstance(get_codec("json"), JsonCodec)
    assert isinstance(get_codec("raw"), RawCodec)
    assert get_codec("json").name == "json"
    assert get_codec("raw").name == "raw"


def test_get_codec_passes_a_codec_object_through() -> None:
    class Upper:
        name = "upper"

        def encode(self, value: str) -> bytes:
            return value.upper().encode()

        def decode(self, data: bytes) -> str:
            return data.decode()

    upper = Upper()
    assert isinstance(upper, Codec)
    assert get_codec(upper) is upper


def test_get_codec_rejects_an_unknown_name() -> None:
    with pytest.raises(ValueError, match=r"unknown codec 'msgpack'; use one of \['json', 'raw'\]"):
        get_codec("msgpack")


def test_get_codec_rejects_what_is_not_a_codec() -> None:
    with pytest.raises(TypeError, match=r"codec must be a name or a Codec"):
        get_codec(42)  # type: ignore[arg-type]
