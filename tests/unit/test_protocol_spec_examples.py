"""The worked example in ``docs/protocol.md`` is what the code really puts on the wire.

Someone writing a worker in another language will copy those bytes, so they are
checked here: each hex dump is one whole frame, and it is exactly what nursemaid
encodes for the request or reply it shows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nursemaid.protocol import FrameDecoder, StandardEnvelope, encode_frame
from nursemaid.protocol import _wire as wire

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DUMP_LINE = re.compile(r"^[0-9a-f]{8}  ((?:[0-9a-f]{2} )*[0-9a-f]{2})\s+\|.*\|$")


def hex_dumps() -> list[bytes]:
    """Every xxd-style block in the spec, as the bytes it shows."""
    blocks, current = [], bytearray()
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        match = DUMP_LINE.match(line)
        if match:
            current += bytes.fromhex(match.group(1))
        elif current:
            blocks.append(bytes(current))
            current = bytearray()
    return blocks


DUMPS = hex_dumps()
ENVELOPE = StandardEnvelope(backend="json")


def test_the_spec_has_the_whole_worked_example() -> None:
    assert len(DUMPS) == 8  # four requests, four replies


@pytest.mark.parametrize("index", range(len(DUMPS)))
def test_each_dump_is_exactly_one_frame(index: int) -> None:
    decoder = FrameDecoder()
    decoder.receive_data(DUMPS[index])
    assert decoder.next_frame() is not None
    assert decoder.buffered == 0


@pytest.mark.parametrize("index", range(0, len(DUMPS), 2))
def test_each_request_dump_is_what_the_port_sends(index: int) -> None:
    payload = DUMPS[index][4:]
    request = ENVELOPE.decode_request(payload)
    assert request.id == index // 2 + 1  # ids count up from 1
    assert encode_frame(ENVELOPE.encode_request(request)) == DUMPS[index]


@pytest.mark.parametrize("index", range(1, len(DUMPS), 2))
def test_each_reply_dump_is_what_serve_sends(index: int) -> None:
    payload = DUMPS[index][4:]
    reply = ENVELOPE.decode_reply(payload)
    assert reply.id == index // 2 + 1
    assert encode_frame(ENVELOPE.encode_reply(reply)) == DUMPS[index]


def test_short_packet_headers_in_the_spec_match_the_encoder() -> None:
    text = SPEC.read_text(encoding="utf-8")
    first = DUMPS[0][4:]
    assert "packet=2: 00 20 7b" in text
    assert encode_frame(first, packet=2)[:3] == bytes.fromhex("00207b")
    assert "packet=1: 20 7b" in text
    assert encode_frame(first, packet=1)[:2] == bytes.fromhex("207b")


def test_the_spec_lists_every_error_type_serve_sends_by_name() -> None:
    # A worker in another language copies this list, and a client matches on it.
    text = SPEC.read_text(encoding="utf-8")
    table = text.split("The error types `serve` sends:", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"^\| `(\w+)`(?: or `(\w+)`)? \|", table, re.MULTILINE))
    names = {name for pair in listed for name in pair if name}
    sent_by_serve = {
        wire.UNKNOWN_OP,
        wire.BAD_REQUEST,
        "LocalProtocolError",
        "TypeError",
        "ValueError",
    }
    assert names == sent_by_serve
