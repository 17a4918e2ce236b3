"""Coverage-guided fuzzing of the protocol layer with atheris (not part of CI).

The same claims as ``tests/property/test_protocol_fuzz.py``, driven by libFuzzer's
coverage feedback instead of hypothesis: whatever bytes arrive, the frame decoder
and the envelopes raise nothing but :class:`~nursemaid.RemoteProtocolError`.

Run it (atheris is not a dependency; ``pip install atheris`` first)::

    python tests/fuzz/fuzz_protocol.py -max_total_time=60
    python tests/fuzz/fuzz_protocol.py some/corpus/dir -runs=100000

Any other exception escaping is a crash: libFuzzer stops and saves the input as
``crash-<hash>``, which you can replay with ``python tests/fuzz/fuzz_protocol.py
crash-<hash>``.
"""

from __future__ import annotations

import contextlib
import sys

import atheris  # type: ignore[import-not-found]

with atheris.instrument_imports():
    from nursemaid import RemoteProtocolError
    from nursemaid.protocol._codec import JsonCodec
    from nursemaid.protocol._envelope import CommandEnvelope, StandardEnvelope
    from nursemaid.protocol._framing import FrameDecoder

BACKENDS = ["json", "orjson"]
ENVELOPES = [StandardEnvelope(backend=b) for b in BACKENDS] + [  # type: ignore[arg-type]
    CommandEnvelope(backend=b)  # type: ignore[arg-type]
    for b in BACKENDS
]
CODECS = [JsonCodec(backend=b) for b in BACKENDS]  # type: ignore[arg-type]


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    packet = fdp.PickValueInList([1, 2, 4])
    max_frame = fdp.ConsumeIntInRange(0, 4096)
    decoder = FrameDecoder(packet=packet, max_frame=max_frame)
    rest = fdp.ConsumeBytes(fdp.remaining_bytes())
    # Feed the stream in chunks whose sizes come from the input itself.
    position = 0
    try:
        while position < len(rest):
            step = 1 + rest[position] % 17
            decoder.receive_data(rest[position : position + step])
            position += step
            while (frame := decoder.next_frame()) is not None:
                assert len(frame) <= max_frame
                for envelope in ENVELOPES:
                    with contextlib.suppress(RemoteProtocolError):
                        envelope.decode_reply(frame)
        decoder.receive_data(b"")
    except RemoteProtocolError:
        pass
    # And the whole input as one payload, for the JSON decoders.
    for codec in CODECS:
        with contextlib.suppress(RemoteProtocolError):
            codec.decode(rest)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
