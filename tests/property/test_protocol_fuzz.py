"""Fuzz the protocol layer with hostile input: nothing escapes but the named errors.

Whatever bytes a worker writes, the frame decoder and the envelopes raise only
:class:`~nursemaid.RemoteProtocolError` (never ``ValueError``, ``KeyError``,
``RecursionError``, ``UnicodeDecodeError``, a cattrs exception group, ...), and
whatever value a caller hands the codecs, they raise only
:class:`~nursemaid.LocalProtocolError`. A coverage-guided version of the same
checks runs under atheris: ``tests/fuzz/fuzz_protocol.py`` (not part of CI).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from nursemaid import LocalProtocolError, RemoteProtocolError
from nursemaid.protocol import (
    PACKET_SIZES,
    CommandEnvelope,
    FrameDecoder,
    JsonCodec,
    RawCodec,
    StandardEnvelope,
)
from nursemaid.protocol._codec import JsonBackend

BACKENDS: list[JsonBackend] = ["json"]
if importlib.util.find_spec("orjson") is not None:
    BACKENDS.append("orjson")

# Bytes that look a little like JSON reach deeper than uniform noise.
json_alphabet = st.sampled_from(
    [
        *(b"{", b"}", b"[", b"]", b'"', b":", b",", b"1", b"-", b".", b"e", b"\\u", b"d800"),
        *(b"true", b"null", b"NaN", b'"id"', b'"result"', b'"error"', b'"op"', b"\xff", b"\xc3"),
    ]
)
hostile_bytes = st.binary(max_size=200) | st.lists(json_alphabet, max_size=40).map(b"".join)


def any_json(depth: int = 3) -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text()
        | st.sampled_from(["id", "op", "result", "error", "type", "message", "success"])
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["id", "op", "args", "result", "error", "type", "message"])
                | st.sampled_from(["traceback", "success", "command"])
                | st.text(max_size=3),
                inner,
                max_size=5,
            )
        ),
        max_leaves=15,
    )


def as_json_bytes(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


payloads = hostile_bytes | any_json().map(as_json_bytes)


@given(
    packet=st.sampled_from(PACKET_SIZES),
    max_frame=st.integers(min_value=0, max_value=64),
    chunks=st.lists(st.binary(min_size=1, max_size=40), max_size=12),  # b"" is EOF
)
def test_frame_decoder_raises_only_remote_protocol_errors(
    packet: int, max_frame: int, chunks: list[bytes]
) -> None:
    decoder = FrameDecoder(packet=packet, max_frame=max_frame)
    poisoned = False
    for chunk in [*chunks, b""]:
        try:
            decoder.receive_data(chunk)
            while (frame := decoder.next_frame()) is not None:
                assert not poisoned
                assert len(frame) <= max_frame
        except RemoteProtocolError:
            poisoned = True


@pytest.mark.parametrize("backend", BACKENDS)
@given(payload=payloads)
def test_envelopes_raise_only_remote_protocol_errors(backend: JsonBackend, payload: bytes) -> None:
    messages = []
    for envelope in (StandardEnvelope(backend=backend), CommandEnvelope(backend=backend)):
        for decode in (envelope.decode_reply, envelope.decode_request):
            try:
                decode(payload)
            except RemoteProtocolError as exc:
                messages.append(str(exc))
    assert all(m and m[0].islower() for m in messages)  # house style holds for every error


@pytest.mark.parametrize("backend", BACKENDS)
@given(payload=payloads)
def test_json_decode_raises_only_remote_protocol_errors(
    backend: JsonBackend, payload: bytes
) -> None:
    with contextlib.suppress(RemoteProtocolError):
        JsonCodec(backend=backend).decode(payload)


# Values a caller might hand the codec by mistake.
odd_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary(max_size=4)
    | st.builds(object)
    | st.sampled_from([float("nan"), "\ud800", 2**100, ..., print, 1j]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.frozensets(st.integers(), max_size=2)
        | st.dictionaries(st.integers() | st.text() | st.none() | st.floats(), inner, max_size=3)
    ),
    max_leaves=10,
)


@pytest.mark.parametrize("backend", BACKENDS)
@given(value=odd_values)
def test_json_encode_raises_only_local_protocol_errors(backend: JsonBackend, value: Any) -> None:
    with contextlib.suppress(LocalProtocolError):
        JsonCodec(backend=backend).encode(value)


@given(value=odd_values)
@example(value=[None, float("nan")])
@example(value={"args": (1.5, float("-inf"))})
def test_json_backends_refuse_the_same_values_with_the_same_message(value: Any) -> None:
    outcomes = []
    for backend in BACKENDS:
        try:
            outcomes.append(("ok", json.loads(JsonCodec(backend=backend).encode(value))))
        except LocalProtocolError as exc:
            outcomes.append(("refused", str(exc)))
    assert all(outcome == outcomes[0] for outcome in outcomes)


@given(value=odd_values)
def test_raw_encode_raises_only_local_protocol_errors(value: Any) -> None:
    with contextlib.suppress(LocalProtocolError):
        assert type(RawCodec().encode(value)) is bytes
