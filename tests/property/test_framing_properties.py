"""Properties of the protocol layer: framing under any chunking, and round trips.

* Any list of payloads, framed and then cut into arbitrary chunks, decodes to the
  same list (for every packet size).
* The incremental decoder agrees with a one-shot reference parser on *any* byte
  stream: same frames, and an oversized header is rejected at the same frame, as
  soon as its header is complete, however the stream is cut.
* No frame over ``max_frame`` is ever produced or accepted.
* Codec and envelope round trips, on both JSON backends; the envelope's
  hand-written fast path agrees with the cattrs reference on arbitrary objects.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from nursemaid import LocalProtocolError, RemoteProtocolError
from nursemaid.protocol import (
    PACKET_SIZES,
    CommandEnvelope,
    ErrorReply,
    FrameDecoder,
    JsonCodec,
    Reply,
    Request,
    StandardEnvelope,
    encode_frame,
)
from nursemaid.protocol._codec import JsonBackend

BACKENDS: list[JsonBackend] = ["json"]
if importlib.util.find_spec("orjson") is not None:
    BACKENDS.append("orjson")

HEADER_LIMIT = {1: 255, 2: 65535, 4: 2**32 - 1}

packets = st.sampled_from(PACKET_SIZES)


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    """Cut *stream* at the given offsets (any order, duplicates allowed)."""
    offsets = sorted({0, len(stream), *(p % (len(stream) + 1) for p in points)})
    return [stream[a:b] for a, b in itertools.pairwise(offsets)]


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[bytes]:
    frames = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    return frames


# ---- framing --------------------------------------------------------------------------


@given(
    packet=packets,
    payloads=st.lists(st.binary(max_size=300)),
    points=st.lists(st.integers(min_value=0)),
)
def test_framed_messages_cut_anywhere_decode_to_the_same_list(
    packet: int, payloads: list[bytes], points: list[int]
) -> None:
    payloads = [p[: HEADER_LIMIT[packet]] for p in payloads]
    stream = b"".join(encode_frame(p, packet=packet) for p in payloads)
    decoder = FrameDecoder(packet=packet)
    assert feed_all(decoder, [*cut(stream, points), b""]) == payloads
    assert decoder.at_eof
    assert decoder.buffered == 0


def reference_parse(stream: bytes, packet: int, max_frame: int) -> tuple[list[bytes], bool, int]:
    """Parse a whole stream at once: (frames, rejected, offset where parsing stopped).

    ``rejected`` means a complete header announced more than *max_frame*, at
    ``offset``; otherwise ``offset`` is where the incomplete tail begins.
    """
    frames, offset = [], 0
    while len(stream) - offset >= packet:
        length = int.from_bytes(stream[offset : offset + packet], "big")
        if length > max_frame:
            return frames, True, offset
        end = offset + packet + length
        if end > len(stream):
            break
        frames.append(stream[offset + packet : end])
        offset = end
    return frames, False, offset


@given(
    packet=packets,
    max_frame=st.integers(min_value=0, max_value=40),
    stream=st.binary(max_size=200),
    points=st.lists(st.integers(min_value=0), max_size=20),
)
def test_decoder_agrees_with_a_one_shot_parser_on_any_stream(
    packet: int, max_frame: int, stream: bytes, points: list[int]
) -> None:
    expected, rejected, stop = reference_parse(stream, packet, max_frame)
    decoder = FrameDecoder(packet=packet, max_frame=max_frame)
    frames: list[bytes] = []
    fed = 0
    try:
        for chunk in cut(stream, points):
            decoder.receive_data(chunk)
            fed += len(chunk)
            while (frame := decoder.next_frame()) is not None:
                frames.append(frame)
    except RemoteProtocolError:
        assert rejected
        assert frames == expected
        # Rejected as soon as the bad header was complete: the chunk that
        # completed it was the last one fed.
        assert fed - len(chunk) < stop + packet <= fed
        with pytest.raises(RemoteProtocolError):  # and poisoned from then on
            decoder.next_frame()
    else:
        assert not rejected
        assert frames == expected
        assert decoder.buffered == len(stream) - stop
    assert all(len(f) <= max_frame for f in frames)


@given(packet=packets, max_frame=st.integers(min_value=0, max_value=300), size=st.integers(0, 400))
def test_encoder_never_produces_a_frame_over_max_frame(
    packet: int, max_frame: int, size: int
) -> None:
    payload = b"x" * size
    if size > max_frame or size > HEADER_LIMIT[packet]:
        with pytest.raises(LocalProtocolError):
            encode_frame(payload, packet=packet, max_frame=max_frame)
    else:
        frame = encode_frame(payload, packet=packet, max_frame=max_frame)
        assert frame == size.to_bytes(packet, "big") + payload


# ---- JSON values --------------------------------------------------------------------------

# What survives a JSON round trip unchanged: finite floats, 64-bit ints (orjson's
# range), str keys, surrogate-free text, lists rather than tuples.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]))
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.text(alphabet=st.characters(exclude_categories=["Cs"])), inner, max_size=5
        )
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("backend", BACKENDS)
@given(value=json_values)
def test_json_codec_round_trips_json_values(backend: JsonBackend, value: Any) -> None:
    codec = JsonCodec(backend=backend)
    encoded = codec.encode(value)
    assert codec.decode(encoded) == value
    assert json.loads(encoded) == value  # and it is standard JSON any reader accepts


@given(value=json_values)
def test_json_backends_read_each_others_output(value: Any) -> None:
    codecs = [JsonCodec(backend=b) for b in BACKENDS]
    for writer in codecs:
        for reader in codecs:
            assert reader.decode(writer.encode(value)) == value


# ---- envelopes ----------------------------------------------------------------------------

ids = st.integers(min_value=-(2**63), max_value=2**63 - 1)
texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]))
requests = st.builds(Request, ids, texts, json_values)
replies = st.builds(Reply, ids, json_values) | st.builds(
    ErrorReply, ids | st.none(), texts, texts, texts
)
envelopes = st.sampled_from(
    [StandardEnvelope(backend=b) for b in BACKENDS] + [CommandEnvelope(backend=b) for b in BACKENDS]
)


@given(envelope=envelopes, request=requests)
def test_requests_round_trip_through_every_envelope(
    envelope: StandardEnvelope | CommandEnvelope, request: Request
) -> None:
    assert envelope.decode_request(envelope.encode_request(request)) == request


@given(envelope=envelopes, reply=replies)
def test_replies_round_trip_through_every_envelope(
    envelope: StandardEnvelope | CommandEnvelope, reply: Reply | ErrorReply
) -> None:
    assume(not (isinstance(envelope, CommandEnvelope) and reply.id is None))  # ids are ints there
    assert envelope.decode_reply(envelope.encode_reply(reply)) == reply


# Objects shaped like replies, right and wrong: each key present or not, each value
# of the right type or a near miss (a bool or float for an int, null for a str).
near_misses = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(st.none(), max_size=1)
)
id_like = ids | texts | near_misses
str_like = texts | ids | near_misses
error_like = (
    st.fixed_dictionaries(
        {}, optional={"type": str_like, "message": str_like, "traceback": str_like, "x": str_like}
    )
    | json_values
)
reply_like = (
    st.fixed_dictionaries({"id": id_like, "result": json_values})  # the fast path's shape
    | st.fixed_dictionaries({"id": id_like, "error": error_like})
    | st.fixed_dictionaries(
        {}, optional={"id": id_like, "result": json_values, "error": error_like, "x": json_values}
    )
    | json_values
)


@pytest.mark.parametrize("backend", BACKENDS)
@given(obj=reply_like)
@example(obj={"id": True, "result": 1})
@example(obj={"id": 1.0, "result": 1})
def test_fast_decode_agrees_with_the_cattrs_reference(backend: JsonBackend, obj: Any) -> None:
    envelope = StandardEnvelope(backend=backend)
    payload = JsonCodec(backend=backend).encode(obj)
    try:
        expected: Reply | ErrorReply | RemoteProtocolError = StandardEnvelope.structure_reply(
            obj, payload
        )
    except RemoteProtocolError as exc:
        expected = exc
    try:
        got: Reply | ErrorReply | RemoteProtocolError = envelope.decode_reply(payload)
    except RemoteProtocolError as exc:
        got = exc
    if isinstance(expected, RemoteProtocolError):
        assert isinstance(got, RemoteProtocolError)
        assert str(got) == str(expected)
    else:
        assert got == expected


@pytest.mark.parametrize("backend", BACKENDS)
@given(request=requests)
def test_fast_encode_agrees_with_the_cattrs_reference(
    backend: JsonBackend, request: Request
) -> None:
    from nursemaid.protocol._envelope import converter

    envelope = StandardEnvelope(backend=backend)
    codec = JsonCodec(backend=backend)
    assert envelope.encode_request(request) == codec.encode(converter.unstructure(request))
