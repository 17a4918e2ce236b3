"""A real ``serve`` worker answers the worked example of ``docs/protocol.md`` byte for byte.

The unit test ``tests/unit/test_protocol_spec_examples.py`` checks the spec's
bytes against the encoder; this one checks them against the worker runtime, so
the specification, the port side and ``serve`` cannot drift apart.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from nursemaid.protocol import ErrorReply, FrameDecoder, StandardEnvelope

SPEC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DUMP_LINE = re.compile(r"^[0-9a-f]{8}  ((?:[0-9a-f]{2} )*[0-9a-f]{2})\s+\|.*\|$")


def hex_dumps() -> list[bytes]:
    """Every xxd-style block in the spec, as the bytes it shows."""
    blocks, current = [], bytearray()
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        if match := DUMP_LINE.match(line):
            current += bytes.fromhex(match.group(1))
        elif current:
            blocks.append(bytes(current))
            current = bytearray()
    return blocks


DUMPS = hex_dumps()

WORKER = (
    "from nursemaid import serve\n"
    "serve({'add': lambda a: a[0] + a[1], 'div': lambda a: a[0] / a[1]})\n"
)


@pytest.mark.slow  # a real interpreter start
def test_serve_answers_the_worked_example_with_the_documented_bytes() -> None:
    # The spec's four requests in one write; stdout must be its four replies (the
    # error reply's traceback aside: the spec leaves it empty for brevity).
    done = subprocess.run(
        [sys.executable, "-c", WORKER],
        input=b"".join(DUMPS[0::2]),
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr  # `shutdown` ends it cleanly
    decoder = FrameDecoder()
    decoder.receive_data(done.stdout)
    decoder.receive_data(b"")
    frames = [decoder.next_frame() for _ in range(4)]
    assert decoder.next_frame() is None
    assert decoder.buffered == 0
    expected = [dump[4:] for dump in DUMPS[1::2]]
    assert [frames[0], frames[1], frames[3]] == [expected[0], expected[1], expected[3]]
    assert frames[2] is not None
    error = StandardEnvelope(backend="json").decode_reply(frames[2])
    assert isinstance(error, ErrorReply)
    assert (error.id, error.type, error.message) == (3, "ZeroDivisionError", "division by zero")
    assert "ZeroDivisionError" in error.traceback
