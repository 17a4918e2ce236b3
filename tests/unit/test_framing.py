"""Edge cases of ``{packet, N}`` framing (``nursemaid.protocol._framing``)."""

from __future__ import annotations

import pytest

from nursemaid import LocalProtocolError, RemoteProtocolError, UsageError
from nursemaid.protocol._framing import (
    DEFAULT_MAX_FRAME,
    PACKET_SIZES,
    FrameDecoder,
    encode_frame,
)

HEADER_LIMIT = {1: 255, 2: 65535, 4: 2**32 - 1}


def drain(decoder: FrameDecoder) -> list[bytes]:
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


# ---- encoding -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "expected"),
    [(1, b"\x03abc"), (2, b"\x00\x03abc"), (4, b"\x00\x00\x00\x03abc")],
)
def test_header_is_big_endian_unsigned_length_of_packet_bytes(packet: int, expected: bytes) -> None:
    assert encode_frame(b"abc", packet=packet) == expected


def test_default_packet_is_4_and_default_max_frame_is_64_mib() -> None:
    assert encode_frame(b"x") == b"\x00\x00\x00\x01x"
    assert DEFAULT_MAX_FRAME == 64 * 1024 * 1024
    assert PACKET_SIZES == (1, 2, 4)


def test_length_uses_the_high_bytes_of_the_header() -> None:
    assert encode_frame(b"x" * 0x0102, packet=2)[:2] == b"\x01\x02"
    assert encode_frame(b"x" * 0x010203, packet=4)[:4] == b"\x00\x01\x02\x03"


@pytest.mark.parametrize("packet", PACKET_SIZES)
def test_empty_payload_encodes_to_a_bare_zero_header(packet: int) -> None:
    assert encode_frame(b"", packet=packet) == bytes(packet)


@pytest.mark.parametrize("payload", [bytearray(b"ab"), memoryview(b"ab")])
def test_encoder_accepts_any_bytes_like_payload(payload: bytes) -> None:
    assert encode_frame(payload) == b"\x00\x00\x00\x02ab"


def test_payload_of_exactly_max_frame_is_encoded() -> None:
    assert encode_frame(b"x" * 10, max_frame=10) == b"\x00\x00\x00\x0a" + b"x" * 10


def test_payload_over_max_frame_is_a_local_protocol_error_naming_both_sizes() -> None:
    with pytest.raises(LocalProtocolError, match=r"11-byte message: it is over max_frame=10"):
        encode_frame(b"x" * 11, max_frame=10)


@pytest.mark.parametrize("packet", [1, 2])
def test_payload_over_header_capacity_is_a_local_protocol_error(packet: int) -> None:
    limit = HEADER_LIMIT[packet]
    assert len(encode_frame(b"x" * limit, packet=packet)) == packet + limit
    with pytest.raises(LocalProtocolError, match=rf"header holds at most {limit}; use packet=4"):
        encode_frame(b"x" * (limit + 1), packet=packet)


@pytest.mark.parametrize("packet", [0, 3, 8, -4, True, "4", None])
def test_encoder_rejects_packet_sizes_erlang_does_not_have(packet: object) -> None:
    with pytest.raises(ValueError, match=r"packet must be one of \(1, 2, 4\)"):
        encode_frame(b"", packet=packet)  # type: ignore[arg-type]


# ---- decoder construction ---------------------------------------------------------


@pytest.mark.parametrize("packet", [0, 3, 8, True])
def test_decoder_rejects_packet_sizes_erlang_does_not_have(packet: int) -> None:
    with pytest.raises(ValueError, match=r"packet must be one of"):
        FrameDecoder(packet=packet)


def test_decoder_rejects_negative_max_frame() -> None:
    with pytest.raises(ValueError, match=r"max_frame must be >= 0 \(got -1\)"):
        FrameDecoder(max_frame=-1)


@pytest.mark.parametrize("max_frame", [1.5, "10", None, True])
def test_decoder_rejects_non_int_max_frame(max_frame: object) -> None:
    with pytest.raises(TypeError, match=r"max_frame must be an int"):
        FrameDecoder(max_frame=max_frame)  # type: ignore[arg-type]


def test_decoder_reports_its_options_and_state() -> None:
    decoder = FrameDecoder(packet=2, max_frame=99)
    assert (decoder.packet, decoder.max_frame, decoder.buffered, decoder.at_eof) == (
        2,
        99,
        0,
        False,
    )
    assert repr(decoder) == "<FrameDecoder packet=2 max_frame=99 buffered=0 open>"


# ---- decoding ---------------------------------------------------------------------


@pytest.mark.parametrize("packet", PACKET_SIZES)
def test_one_whole_frame_decodes_to_its_payload(packet: int) -> None:
    decoder = FrameDecoder(packet=packet)
    decoder.receive_data(encode_frame(b"hello", packet=packet))
    assert decoder.next_frame() == b"hello"
    assert decoder.next_frame() is None
    assert decoder.buffered == 0


@pytest.mark.parametrize("packet", PACKET_SIZES)
def test_empty_frames_decode_to_empty_payloads(packet: int) -> None:
    decoder = FrameDecoder(packet=packet)
    decoder.receive_data(bytes(packet) * 3)
    assert drain(decoder) == [b"", b"", b""]


@pytest.mark.parametrize("packet", PACKET_SIZES)
def test_empty_frame_is_accepted_with_max_frame_zero(packet: int) -> None:
    decoder = FrameDecoder(packet=packet, max_frame=0)
    decoder.receive_data(bytes(packet))
    assert decoder.next_frame() == b""


@pytest.mark.parametrize("packet", PACKET_SIZES)
def test_several_frames_in_one_chunk_come_out_in_order(packet: int) -> None:
    decoder = FrameDecoder(packet=packet)
    decoder.receive_data(b"".join(encode_frame(p, packet=packet) for p in [b"a", b"", b"bc"]))
    assert drain(decoder) == [b"a", b"", b"bc"]


@pytest.mark.parametrize("packet", PACKET_SIZES)
def test_frames_fed_one_byte_at_a_time_decode(packet: int) -> None:
    stream = encode_frame(b"abc", packet=packet) + encode_frame(b"", packet=packet)
    decoder = FrameDecoder(packet=packet)
    frames = []
    for i in range(len(stream)):
        decoder.receive_data(stream[i : i + 1])
        frames.extend(drain(decoder))
    assert frames == [b"abc", b""]
    assert decoder.buffered == 0


@pytest.mark.parametrize(("packet", "cut"), [(2, 1), (4, 1), (4, 2), (4, 3)])
def test_header_split_across_chunks_decodes(packet: int, cut: int) -> None:
    frame = encode_frame(b"payload", packet=packet)
    decoder = FrameDecoder(packet=packet)
    decoder.receive_data(frame[:cut])
    assert decoder.next_frame() is None
    assert decoder.buffered == cut
    decoder.receive_data(frame[cut:])
    assert decoder.next_frame() == b"payload"


def test_bytes_after_a_frame_stay_buffered_for_the_next() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame(b"a") + b"\x00\x00")
    assert decoder.next_frame() == b"a"
    assert decoder.next_frame() is None
    assert decoder.buffered == 2


@pytest.mark.parametrize("chunk_type", [bytearray, memoryview])
def test_decoder_accepts_any_bytes_like_chunk(chunk_type: type) -> None:
    decoder = FrameDecoder()
    decoder.receive_data(chunk_type(encode_frame(b"ab")))
    frame = decoder.next_frame()
    assert frame == b"ab"
    assert type(frame) is bytes


@pytest.mark.parametrize("packet", PACKET_SIZES)
def test_frame_of_exactly_max_frame_is_accepted(packet: int) -> None:
    decoder = FrameDecoder(packet=packet, max_frame=200)
    decoder.receive_data(encode_frame(b"x" * 200, packet=packet))
    assert decoder.next_frame() == b"x" * 200


@pytest.mark.parametrize("packet", PACKET_SIZES)
def test_header_announcing_max_frame_plus_one_is_rejected_before_the_payload(packet: int) -> None:
    decoder = FrameDecoder(packet=packet, max_frame=200)
    decoder.receive_data((201).to_bytes(packet, "big"))  # header only: no payload yet
    with pytest.raises(RemoteProtocolError, match=r"announces 201 bytes, more than max_frame=200"):
        decoder.next_frame()


def test_oversized_header_is_rejected_once_its_last_byte_arrives() -> None:
    decoder = FrameDecoder(max_frame=1000)
    decoder.receive_data(b"\xff\xff\xff")
    assert decoder.next_frame() is None
    decoder.receive_data(b"\xff")
    with pytest.raises(RemoteProtocolError, match=str(2**32 - 1)):
        decoder.next_frame()
    assert decoder.buffered == 0  # nothing of the bad stream is kept


def test_oversized_text_header_suggests_a_stray_print() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"Hello, world\n")
    with pytest.raises(RemoteProtocolError, match=r"b'Hell'.*did the worker write to stdout"):
        decoder.next_frame()


def test_oversized_binary_header_names_the_framing() -> None:
    decoder = FrameDecoder(packet=2, max_frame=10)
    decoder.receive_data(b"\x01\x00")
    with pytest.raises(RemoteProtocolError, match=r"not speaking \{packet, 2\} framing"):
        decoder.next_frame()


def test_poisoned_decoder_raises_on_every_later_call() -> None:
    decoder = FrameDecoder(max_frame=1)
    decoder.receive_data(b"\x00\x00\x00\x02ab")
    with pytest.raises(RemoteProtocolError) as first:
        decoder.next_frame()
    for call in (decoder.next_frame, lambda: decoder.receive_data(b"\x00"), decoder.next_frame):
        with pytest.raises(RemoteProtocolError, match=r"unusable after an earlier") as later:
            call()
        assert later.value.__cause__ is first.value
    assert "poisoned" in repr(decoder)


def test_poisoned_decoder_rejects_even_end_of_file() -> None:
    decoder = FrameDecoder(max_frame=0)
    decoder.receive_data(b"\x00\x00\x00\x01")
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()
    with pytest.raises(RemoteProtocolError):
        decoder.receive_data(b"")


def test_protocol_error_is_a_worker_error_without_process_details() -> None:
    # The port re-raises it with returncode and stderr attached; the decoder knows neither.
    decoder = FrameDecoder(max_frame=0)
    decoder.receive_data(b"\x00\x00\x00\x01")
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_frame()
    assert (info.value.returncode, info.value.stderr_tail) == (None, "")


# ---- end of file --------------------------------------------------------------------


def test_eof_on_a_frame_boundary_leaves_nothing_buffered() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame(b"a"))
    decoder.receive_data(b"")
    assert decoder.at_eof
    assert decoder.next_frame() == b"a"  # frames before EOF can still be taken
    assert decoder.next_frame() is None
    assert decoder.buffered == 0
    assert "eof" in repr(decoder)


def test_eof_mid_header_shows_as_buffered_bytes_at_eof() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"\x00\x00")
    decoder.receive_data(b"")
    assert decoder.next_frame() is None
    assert (decoder.at_eof, decoder.buffered) == (True, 2)


def test_eof_mid_payload_shows_as_buffered_bytes_at_eof() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"\x00\x00\x00\x05abc")
    assert decoder.next_frame() is None
    decoder.receive_data(b"")
    assert decoder.next_frame() is None
    assert (decoder.at_eof, decoder.buffered) == (True, 7)


def test_eof_may_be_fed_twice() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"")
    decoder.receive_data(b"")
    assert decoder.at_eof


def test_data_after_eof_is_a_usage_error() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"")
    with pytest.raises(UsageError, match=r"3 more bytes after end of file"):
        decoder.receive_data(b"abc")
