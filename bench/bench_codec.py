"""How much the request envelope costs, per JSON backend and per path.

Measures one ``encode_request`` plus one ``decode_reply`` of the standard envelope
on a ~100-byte message (the size the port benchmarks use), for:

* nursemaid's ``StandardEnvelope`` (hand-written fast path) on each backend,
* the same structures through nursemaid's strict cattrs converter,
* cattrs' own preconf converters (``cattrs.preconf.json`` / ``cattrs.preconf.orjson``),
  which is the "just use cattrs" baseline the backend choice was made against,
* the bare JSON calls (``JsonCodec``), as the floor.

Run ``python bench/bench_codec.py`` (pin it for steadier figures:
``taskset -c 0 python bench/bench_codec.py``); it prints a markdown table. The
figures it produced when the backend was chosen are in ``docs/protocol.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import timeit
from collections.abc import Callable, Sequence
from functools import partial

from nursemaid.protocol._codec import JsonBackend, JsonCodec
from nursemaid.protocol._envelope import Reply, Request, StandardEnvelope, converter

ARGS = {"text": "x" * 60}
REQUEST = Request(12345, "echo", ARGS)


Case = tuple[str, Callable[[], object], Callable[[], object]]


def _backend_cases(backend: JsonBackend) -> list[Case]:
    envelope = StandardEnvelope(backend=backend)
    codec = JsonCodec(backend=backend)
    reply = envelope.encode_reply(Reply(12345, ARGS))
    request_obj = {"id": 12345, "op": "echo", "args": ARGS}
    preconf = importlib.import_module(f"cattrs.preconf.{backend}").make_converter()

    def preconf_encode() -> object:
        encoded = preconf.dumps(REQUEST)
        return encoded.encode() if isinstance(encoded, str) else encoded

    return [
        (
            f"bare {backend} dumps + loads (floor)",
            partial(codec.encode, request_obj),
            partial(codec.decode, reply),
        ),
        (
            f"StandardEnvelope, {backend} (fast path)",
            partial(envelope.encode_request, REQUEST),
            partial(envelope.decode_reply, reply),
        ),
        (
            f"strict cattrs converter, {backend}",
            lambda: codec.encode(converter.unstructure(REQUEST)),
            lambda: StandardEnvelope.structure_reply(codec.decode(reply), reply),
        ),
        (
            f"cattrs.preconf.{backend} converter",
            preconf_encode,
            partial(preconf.loads, reply, Reply),
        ),
    ]


def _cases() -> list[Case]:
    backends: list[JsonBackend] = ["json"]
    if importlib.util.find_spec("orjson"):
        backends.append("orjson")
    return [case for backend in backends for case in _backend_cases(backend)]


def _best_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print the table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=2_000, help="calls per timing")
    parser.add_argument(
        "--repeat",
        type=int,
        default=60,
        help="timings; the best is kept (many short ones ride out a busy machine)",
    )
    options = parser.parse_args(argv)

    rows = []
    for name, encode, decode in _cases():
        enc = _best_us(encode, options.number, options.repeat)
        dec = _best_us(decode, options.number, options.repeat)
        rows.append((name, enc, dec, enc + dec))
    fastest = min(total for *_, total in rows)

    print(
        "Envelope encode_request + decode_reply, ~100-byte message, "
        f"Python {platform.python_version()}"
    )
    print(f"(best of {options.repeat} x {options.number} calls)\n")
    print("| path | encode µs | decode µs | round trip µs | ratio to fastest |")
    print("|---|---:|---:|---:|---:|")
    for name, enc, dec, total in rows:
        print(f"| {name} | {enc:.2f} | {dec:.2f} | {total:.2f} | {total / fastest:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
