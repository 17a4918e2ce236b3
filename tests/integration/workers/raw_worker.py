"""A framed worker written WITHOUT nursemaid: what an existing Erlang port program does.

Standard library only, blocking ``os.read``/``os.write`` on fds 0 and 1. The first
argument picks a behaviour; ``--packet N`` picks the header size (default 4).

    echo        write every frame back unchanged, until end of file
    oversized   after one frame, write a header announcing 2**31 bytes
    garbage     after one frame, print text to stdout (a worker that forgot the framing)
    truncated   after one frame, write half a frame, a line on stderr, and exit 3
    wrong-id    answer each JSON request with a reply whose id is the request's + 1000
    not-json    answer each frame with a frame that is not JSON
    null-id     answer each frame with an error reply whose id is null (it "could not
                read the request")
    bytewise    answer each JSON request {id, args} with {id, result: args}, written
                one byte per os.write (so the port sees frames in pieces)
    stubborn    ignore SIGTERM; echo frames; at end of file, keep running
    lingering   echo frames; at end of file, keep running (SIGTERM ends it)
    no-read     never read stdin (so writes to it fill the pipe); reply to nothing
    close-stdout  after one frame, close stdout and keep running (SIGTERM ends it)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def read_exactly(n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = os.read(0, n - len(buf))
        if not chunk:
            return buf or None
        buf += chunk
    return buf


def read_frame(packet: int) -> bytes | None:
    header = read_exactly(packet)
    if header is None or len(header) < packet:
        return None
    body = read_exactly(int.from_bytes(header, "big"))
    return body if body is not None else b""


def write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def frame(payload: bytes, packet: int) -> bytes:
    return len(payload).to_bytes(packet, "big") + payload


def run_forever() -> None:
    while True:
        time.sleep(3600)


def main() -> int:
    mode = sys.argv[1]
    packet = int(sys.argv[sys.argv.index("--packet") + 1]) if "--packet" in sys.argv else 4
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode == "no-read":
        run_forever()
    while True:
        payload = read_frame(packet)
        if payload is None:
            if mode in ("stubborn", "lingering"):
                run_forever()
            return 0
        if mode in ("echo", "stubborn", "lingering"):
            write_all(frame(payload, packet))
        elif mode == "oversized":
            write_all((2**31).to_bytes(4, "big"))
        elif mode == "garbage":
            write_all(b"Hello from a worker that forgot its framing\n")
        elif mode == "truncated":
            write_all(frame(b"x" * 100, packet)[: packet + 10])
            sys.stderr.write("raw_worker: giving up half-way through a frame\n")
            return 3
        elif mode == "wrong-id":
            request = json.loads(payload)
            reply = {"id": request["id"] + 1000, "result": None}
            write_all(frame(json.dumps(reply).encode(), packet))
        elif mode == "bytewise":
            request = json.loads(payload)
            reply = json.dumps({"id": request["id"], "result": request.get("args")})
            for byte in frame(reply.encode(), packet):
                os.write(1, bytes([byte]))
        elif mode == "null-id":
            error = {"type": "BadRequest", "message": "cannot read that", "traceback": ""}
            write_all(frame(json.dumps({"id": None, "error": error}).encode(), packet))
        elif mode == "not-json":
            write_all(frame(b"this is not json", packet))
        elif mode == "close-stdout":
            os.close(1)
            run_forever()
        else:
            sys.stderr.write(f"raw_worker: unknown mode {mode!r}\n")
            return 2


if __name__ == "__main__":
    sys.exit(main())
