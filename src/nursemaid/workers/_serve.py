"""``serve``: the far side of a port, for a worker program written in Python.

A worker is a plain program that hands :func:`serve` a table of handlers::

    # worker.py
    from nursemaid import serve

    def add(args):
        a, b = args
        return a + b

    if __name__ == "__main__":
        serve({"add": add})

and a Trio program drives it with ``open_port([sys.executable, "worker.py"])``.

Rules:
    * Standard library only: no trio, attrs or cattrs, here or in anything this
      module imports, because a worker's start-up time is a pool's restart time.
      ``from nursemaid import serve`` imports this module and the stdlib-only
      framing and wire-name modules, nothing else.
    * Blocking, one request at a time, in the main thread: read a frame from
      stdin, call its handler, write the reply frame to stdout, repeat. Blocking
      ``os.read``/``os.write`` on pipes is the fastest a Python worker can go.
    * The frame stream is private. Before serving, stdout and stdin are moved to
      private descriptors (not inherited by subprocesses); descriptor 1 and
      ``sys.stdout`` then point at stderr and descriptor 0 and ``sys.stdin`` at
      ``/dev/null``. So a stray ``print`` (or a C library's ``printf``, or a
      subprocess's output) goes to stderr, where the port logs it, and can never
      corrupt a frame; an ``input()`` reads end of file instead of a request.

What ``serve`` does with each input (this is the worker half of
``docs/protocol.md``, and any worker in any language should behave the same):

    ======================================================  ====================================
    input                                                   serve's answer
    ======================================================  ====================================
    ``{"id": i, "op": "ping"}``                             ``{"id": i, "result": "pong"}``
    ``{"id": i, "op": "shutdown"}``                         ``{"id": i, "result": null}``, then
                                                            ``serve`` returns (exit status 0)
    ``{"id": i, "op": op, "args": a}``, ``op`` handled      ``{"id": i, "result": handler(a)}``
    (``args`` absent means ``null``)
    the handler raises an ``Exception`` ``e``               error reply, ``type`` =
                                                            ``type(e).__name__``, ``message`` =
                                                            ``str(e)``, ``traceback`` the
                                                            formatted traceback; keeps serving
    the handler returns a value JSON cannot encode          error reply, type ``TypeError`` or
                                                            ``ValueError``; keeps serving
    the reply would be over ``max_frame``                   error reply, type
                                                            ``LocalProtocolError``; keeps serving
    ``op`` has no handler                                   error reply, type ``UnknownOp``,
                                                            naming the ops it has; keeps serving
    a JSON object whose ``id`` is an int (not a bool) but   error reply to that id, type
    whose ``op`` is missing or not a string                 ``BadRequest``, saying what is
                                                            wrong; keeps serving
    anything else (not UTF-8 JSON, not an object, no        a line on stderr saying what was
    usable ``id``): nobody can be told                      wrong; exit status 2
    a header announcing more than ``max_frame``             a line on stderr; exit status 2
    end of file between frames                              ``serve`` returns (exit status 0)
    end of file in the middle of a frame                    a line on stderr; exit status 2
    stdout closed by the port (``EPIPE`` on a reply)        ``serve`` returns (exit status 0)
    ======================================================  ====================================

    An error reply is ``{"id": i, "error": {"type": t, "message": m, "traceback":
    tb}}``. Keys other than ``id``, ``op`` and ``args`` in a request are ignored
    (so the envelope can grow without breaking old workers). ``KeyboardInterrupt``
    and ``SystemExit`` raised by a handler are not caught: they end the worker, as
    they end any Python program. SIGTERM keeps
    its default action (the process ends at once); the port sends it only after
    closing stdin did not make the worker exit within the grace.

Theory of operation:
    One ``bytearray`` of input goes through the shared
    :class:`~nursemaid.protocol.FrameDecoder` (so both sides agree on framing, to
    the byte), ``json`` parses each request, and each reply is encoded with
    ``json.dumps`` and written whole before the next frame is read.
"""

from __future__ import annotations

import json
import os
import sys

from nursemaid.protocol import _wire as wire
from nursemaid.protocol._framing import DEFAULT_MAX_FRAME, FrameDecoder, encode_frame

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, NoReturn

__all__ = ["serve"]

EXIT_BAD_INPUT = 2
"""Exit status when the input cannot be answered (see the table above)."""

_READ_SIZE = 65536
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def serve(
    handlers: Mapping[str, Callable[[Any], Any]],
    *,
    packet: int = 4,
    max_frame: int = DEFAULT_MAX_FRAME,
) -> None:
    """Answer requests from a port on stdin/stdout until told to stop.

    Each request's ``op`` picks a handler from *handlers*, which is called with the
    request's ``args`` (``None`` when absent) and returns the reply's result; see
    the module documentation for every input and what ``serve`` answers.

    Args:
        handlers: op name → function of one argument returning a JSON-compatible
            value. ``ping`` and ``shutdown`` are built in and cannot be replaced.
        packet: the frame header size, 4 (the default), 2 or 1; must match the port's.
        max_frame: the largest frame accepted or sent (default 64 MiB).

    Returns:
        When the port closes stdin (end of file between frames) or stdout, or
        after answering ``shutdown``. The program then exits with status 0.

    Raises:
        SystemExit: with status 2, after a line on stderr, when the input cannot
            be answered (see the table in the module documentation).
        ValueError: a handler is named ``ping`` or ``shutdown``, or *packet* is
            not 1, 2 or 4.
        TypeError: a handler is not callable, or an op name is not a string.
    """
    table = _check_handlers(handlers)
    decoder = FrameDecoder(packet=packet, max_frame=max_frame)
    in_fd, out_fd = _private_stdio()
    try:
        _loop(table, decoder, in_fd, out_fd, packet, max_frame)
    finally:
        os.close(in_fd)
        os.close(out_fd)


def _check_handlers(handlers: Mapping[str, Callable[[Any], Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for op, handler in handlers.items():
        if not isinstance(op, str):
            raise TypeError(f"handler names must be strings (got {op!r})")
        if op in wire.BUILTIN_OPS:
            raise ValueError(
                f"cannot replace the built-in op {op!r}: serve answers "
                f"{sorted(wire.BUILTIN_OPS)} itself; give your handler another name"
            )
        if not callable(handler):
            raise TypeError(f"the handler for op {op!r} must be callable (got {handler!r})")
        table[op] = handler
    return table


def _private_stdio() -> tuple[int, int]:
    """Move the frame pipes to private descriptors; point 0 at /dev/null, 1 at stderr."""
    sys.stdout.flush()
    in_fd = os.dup(0)  # os.dup's copies are not inheritable: subprocesses don't get them
    out_fd = os.dup(1)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    return in_fd, out_fd


def _fatal(message: str) -> NoReturn:
    sys.stderr.write(f"nursemaid.serve: {message}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_BAD_INPUT)


def _loop(
    table: dict[str, Any],
    decoder: FrameDecoder,
    in_fd: int,
    out_fd: int,
    packet: int,
    max_frame: int,
) -> None:
    """Serve until end of file, EPIPE or shutdown (return), or bad input (exit 2)."""
    read, write = os.read, os.write
    loads = json.loads
    receive_data, next_frame = decoder.receive_data, decoder.next_frame
    limit = min(max_frame, (1 << (8 * packet)) - 1)  # beyond it, encode_frame says why
    while True:
        try:
            payload = next_frame()
        except Exception as exc:  # RemoteProtocolError: a header over max_frame
            _fatal(str(exc))
        if payload is None:
            data = read(in_fd, _READ_SIZE)
            if not data:
                if decoder.buffered:
                    _fatal(f"stdin ended in the middle of a frame ({decoder.buffered} bytes of it)")
                return
            receive_data(data)
            continue
        try:
            request = loads(payload)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            _fatal(f"a frame is not a JSON request ({exc}): {bytes(payload[:60])!r}")
        reply, stop = _answer(table, request, payload)
        size = len(reply)
        if size <= limit:
            frame = size.to_bytes(packet, "big") + reply
        else:
            frame = _too_large(request[wire.ID], reply, packet, max_frame)
        try:
            written = write(out_fd, frame)
            while written < len(frame):  # rare: a reply larger than the pipe's buffer
                written += write(out_fd, memoryview(frame)[written:])
        except BrokenPipeError:
            return
        if stop:
            return


def _too_large(request_id: int, reply: bytes, packet: int, max_frame: int) -> bytes:
    """The frame to send instead of a *reply* over max_frame: an error reply, if it fits."""
    try:
        encode_frame(reply, packet=packet, max_frame=max_frame)
    except Exception as exc:  # LocalProtocolError, saying why
        error = _error_reply(request_id, "LocalProtocolError", str(exc), "")
    else:  # pragma: no cover - callers only come here for a reply that does not fit
        raise AssertionError("_too_large called for a reply that fits")
    try:
        return encode_frame(error, packet=packet, max_frame=max_frame)
    except Exception as exc:
        _fatal(f"not even an error reply fits in max_frame={max_frame}: {exc}")


def _answer(table: dict[str, Any], request: Any, payload: bytes) -> tuple[bytes, bool]:
    """Return the reply to *request*, and whether to stop after sending it."""
    if type(request) is not dict:
        _fatal(f"a frame is not a JSON object: {bytes(payload[:60])!r}")
    request_id = request.get(wire.ID)
    if type(request_id) is not int:
        _fatal(f"a request has no usable {wire.ID!r} (an int): {bytes(payload[:60])!r}")
    op = request.get(wire.OP)
    if type(op) is not str:
        what = (
            f"the request has no {wire.OP!r}"
            if op is None
            else f"the request's {wire.OP!r} must be a string (got {op!r})"
        )
        return _error_reply(request_id, wire.BAD_REQUEST, what, ""), False
    handler = table.get(op)
    if handler is None:
        if op == wire.PING:
            return _result_reply(request_id, wire.PONG), False
        if op == wire.SHUTDOWN:
            return _result_reply(request_id, None), True
        known = ", ".join(sorted([*table, *wire.BUILTIN_OPS]))
        message = f"unknown op {op!r}; this worker handles: {known}"
        return _error_reply(request_id, wire.UNKNOWN_OP, message, ""), False
    try:
        result = handler(request.get(wire.ARGS))
    except Exception as exc:
        import traceback  # only when needed: it is not free to import

        return _error_reply(request_id, type(exc).__name__, str(exc), traceback.format_exc()), False
    try:
        return _result_reply(request_id, result), False
    except (TypeError, ValueError, RecursionError) as exc:
        message = f"the handler for {op!r} returned a value JSON cannot encode: {exc}"
        return _error_reply(request_id, type(exc).__name__, message, ""), False


def _result_reply(request_id: int, result: Any) -> bytes:
    return _dumps({wire.ID: request_id, wire.RESULT: result}).encode()


def _error_reply(request_id: int, type_name: str, message: str, traceback: str) -> bytes:
    return _dumps(
        {
            wire.ID: request_id,
            wire.ERROR: {
                wire.ERROR_TYPE: type_name,
                wire.ERROR_MESSAGE: message,
                wire.ERROR_TRACEBACK: traceback,
            },
        }
    ).encode()
