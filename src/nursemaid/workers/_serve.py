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
                                                            ``ValueError`` (also for a value
                                                            nested too deeply); keeps serving
    the reply would be over ``max_frame``                   error reply, type
                                                            ``LocalProtocolError`` (an error
                                                            reply keeps its own type), without
                                                            traceback, its message cut to fit
                                                            if need be; keeps serving. If not
                                                            even an empty message fits: a line
                                                            on stderr; exit status 2
    ``op`` has no handler                                   error reply, type ``UnknownOp``,
                                                            naming the ops it has; keeps serving
    a JSON object whose ``id`` is an int (not a bool) but   error reply to that id, type
    whose ``op`` is missing or not a string                 ``BadRequest``, saying what is
                                                            wrong; keeps serving
    anything else (not JSON, not an object, no usable       a line on stderr saying what was
    ``id``, an empty frame): nobody can be told             wrong; exit status 2
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
    the byte), the standard library's ``json`` parses each request, and each
    reply is encoded by it and written whole before the next frame is read.

    JSON is the worker's largest cost per request, so ``serve`` calls ``json``'s C
    scanner and encoder directly (``_json_functions``), with ``json.loads`` and
    ``JSONEncoder.encode`` themselves as the fallback for anything unusual: the
    same answers as the plain calls, at a third of the cost (about 1.5 µs instead
    of 4.5 µs for a ~100-byte request and reply). orjson was measured here too
    and left out: it would save another ~0.5 µs a request (no measurable change
    in a port's round trip) but ``import orjson`` adds 10-20 ms to every worker's
    start-up, and it changes two answers (``NaN`` sent as ``null``, integers
    beyond 64 bits read as floats). ``bench/bench_ports.py`` has the figures.
"""

from __future__ import annotations

import os
import sys

from nursemaid import _lazy
from nursemaid.protocol import _wire as wire
from nursemaid.protocol._framing import DEFAULT_MAX_FRAME, FrameDecoder, encode_frame

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import Any, NoReturn

    Loads = Callable[[bytes], Any]
    Dumps = Callable[[Any], bytes]

__all__ = ["serve"]

EXIT_BAD_INPUT = 2
"""Exit status when the input cannot be answered (see the table above)."""

_READ_SIZE = 65536
# The hot path's field names as module constants (one lookup each, not two).
_ID = wire.ID
_OP = wire.OP
_ARGS = wire.ARGS
_RESULT = wire.RESULT


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
    decoder = _RequestDecoder(packet=packet, max_frame=max_frame)
    loads, dumps = _json_functions()
    in_fd, out_fd = _private_stdio()
    try:
        _loop(table, decoder, in_fd, out_fd, packet, max_frame, loads, dumps)
    finally:
        os.close(in_fd)
        os.close(out_fd)


# ---- JSON ---------------------------------------------------------------------------


def _json_functions() -> tuple[Loads, Dumps]:
    """The standard library's json, through its C scanner and encoder directly.

    ``json.loads`` and ``JSONEncoder.encode`` spend more time around their C
    accelerators than in them: encoding detection and two whitespace regexes per
    decode, a new C encoder per encode. For the frames a port sends (UTF-8, no
    surrounding whitespace) we call the accelerators ourselves, which costs a
    third as much; anything else goes to ``json.loads`` / ``encode`` themselves,
    which accept it or raise exactly the error they always did. So the answers
    are the same as with the plain calls.
    """
    import json
    import json.encoder
    import json.scanner

    std_loads = json.loads
    encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
    std_encode = encoder.encode
    # json.loads' own decoder settings: strict strings, NaN and Infinity read.
    scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]

    def loads(payload: bytes) -> Any:
        try:
            text = payload.decode()
            value, end = scan(text, 0)
        except (ValueError, StopIteration):  # not UTF-8, or not JSON from byte 0
            return std_loads(payload)
        if end != len(text):  # trailing whitespace, or extra data
            return std_loads(payload)
        return value

    def std_dumps(value: Any) -> bytes:
        return std_encode(value).encode()

    fast_encode = _c_encoder(
        getattr(json.encoder, "c_make_encoder", None),
        json.encoder.encode_basestring_ascii,
        encoder,
    )
    if fast_encode is None:  # pragma: no cover - CPython always has the accelerator
        return loads, std_dumps

    def dumps(value: Any) -> bytes:
        try:
            return "".join(fast_encode(value, 0)).encode()
        except (TypeError, ValueError, RecursionError):
            # The fast encoder skips the circular-reference check (a cycle is a
            # RecursionError to it): let encode() raise the precise error.
            return std_dumps(value)

    return loads, dumps


def _c_encoder(
    c_make_encoder: Any, encode_string: Any, encoder: Any
) -> Callable[[Any, int], Any] | None:
    """The C encoder ``encode()`` would build, built once; ``None`` if unavailable."""
    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        return None
    try:
        encode = c_make_encoder(
            None,  # markers: no circular-reference check (see dumps)
            encoder.default,  # raises TypeError naming the type
            encode_string,  # ensure_ascii=True, as encode()
            None,  # indent
            ":",
            ",",
            False,  # sort_keys
            False,  # skipkeys
            False,  # allow_nan
        )
        probe = {"id": 1, "result": [1, 2.5, None, True, "é\n", {"k": "v"}]}
        if "".join(encode(probe, 0)) != encoder.encode(probe):
            return None  # pragma: no cover - another interpreter's accelerator
    except Exception:  # pragma: no cover - another interpreter's signature
        return None
    return encode  # type: ignore[no-any-return]


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
    in_fd = os.dup(0)  # os.dup's copies are not inheritable: subprocesses don't get them
    out_fd = os.dup(1)
    os.dup2(2, 1)
    # Only now: what the program printed before serve() and Python still buffers
    # goes to stderr with the rest, not into the frame stream.
    sys.stdout.flush()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    return in_fd, out_fd


class _RequestDecoder(FrameDecoder):
    """The shared frame decoder, with a hint that fits the worker's side.

    Text where a request header belongs was not written by the worker: whatever
    feeds its stdin (most often a person running the worker by hand) wrote it.
    """

    __slots__ = ()
    _TEXT_HINT = (
        "the header looks like text: is something other than a port writing "
        "text to this worker's stdin?"
    )


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
    loads: Loads,
    dumps: Dumps,
) -> None:
    """Serve until end of file, EPIPE or shutdown (return), or bad input (exit 2)."""
    read, write = os.read, os.write
    limit = min(max_frame, (1 << (8 * packet)) - 1)  # beyond it, encode_frame says why
    while True:
        data = read(in_fd, _READ_SIZE)
        if not data:
            if decoder.buffered:
                _fatal(f"stdin ended in the middle of a frame ({decoder.buffered} bytes of it)")
            return
        # Most reads are exactly one whole frame: then the decoder, being empty,
        # would only copy it in and out again (read alongside the port's
        # _read_reply, which does the same).
        size = len(data) - packet
        if (
            0 <= size <= max_frame
            and int.from_bytes(data[:packet], "big") == size
            and not decoder.buffered
        ):
            payloads: Iterable[bytes] = (data[packet:],)
        else:
            decoder.receive_data(data)
            payloads = _frames(decoder)
        for payload in payloads:
            try:
                request = loads(payload)
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError too
                _fatal(f"a frame is not a JSON request ({exc}): {bytes(payload[:60])!r}")
            reply, stop = _answer(table, request, payload, dumps)
            size = len(reply)
            if size <= limit:
                frame = size.to_bytes(packet, "big") + reply
            else:
                frame = _too_large(request[wire.ID], reply, packet, max_frame, dumps)
            try:
                written = write(out_fd, frame)
                while written < len(frame):  # rare: a reply larger than the pipe's buffer
                    written += write(out_fd, memoryview(frame)[written:])
            except BrokenPipeError:
                return
            if stop:
                return


def _frames(decoder: FrameDecoder) -> Iterator[bytes]:
    """The decoder's complete frames, one at a time (so each is answered before a
    bad header after it ends the worker)."""
    while True:
        try:
            payload = decoder.next_frame()
        except Exception as exc:  # RemoteProtocolError: a header over max_frame
            _fatal(str(exc))
        if payload is None:
            return
        yield payload


def _too_large(request_id: int, reply: bytes, packet: int, max_frame: int, dumps: Dumps) -> bytes:
    """The frame to send instead of a *reply* over max_frame: an error reply that fits.

    An error reply (a traceback makes one long, under packet 1 or 2 especially)
    keeps its error; a result reply becomes a ``LocalProtocolError`` saying why.
    Either way the traceback is left out and the message cut if need be. Only
    when not even the error with an empty message fits does the worker give up.
    """
    limit = min(max_frame, (1 << (8 * packet)) - 1)
    error = _error_of(reply)
    if error is None:
        try:
            encode_frame(reply, packet=packet, max_frame=max_frame)
        except Exception as exc:  # LocalProtocolError, saying why
            error = ("LocalProtocolError", str(exc))
        else:  # pragma: no cover - callers only come here for a reply that does not fit
            raise AssertionError("_too_large called for a reply that fits")
    fitted = _fit_error(request_id, *error, limit, dumps)
    if fitted is None:
        _fatal(
            f"not even an error reply with an empty message fits in max_frame={max_frame} "
            f"(packet={packet}): a {len(reply)}-byte reply to request {request_id} is lost; "
            f"raise max_frame on both sides"
        )
    return len(fitted).to_bytes(packet, "big") + fitted


def _error_of(reply: bytes) -> tuple[str, str] | None:
    """The type and message of *reply* if it is an error reply, else None."""
    import json  # imported already by _json_functions: free here

    try:
        error = json.loads(reply)[wire.ERROR]
        type_name, message = error[wire.ERROR_TYPE], error[wire.ERROR_MESSAGE]
    except (ValueError, KeyError, TypeError):
        return None  # a result reply
    if type(type_name) is not str or type(message) is not str:
        return None  # pragma: no cover - serve's own error replies always hold strings
    return type_name, message


def _fit_error(
    request_id: int, type_name: str, message: str, limit: int, dumps: Dumps
) -> bytes | None:
    """An error reply without traceback in at most *limit* bytes, its message cut
    as little as it must be; None if not even an empty message fits."""

    def reply(text: str) -> bytes | None:
        fitted = _error_reply(dumps, request_id, type_name, text, "")
        return fitted if len(fitted) <= limit else None

    whole = reply(message)
    if whole is not None:
        return whole
    # The longest prefix that fits with the marker after it. Every character
    # takes at least one byte, so no prefix longer than *limit* can fit, and a
    # longer prefix never takes fewer bytes: a binary search finds it.
    best, low, high = None, 0, min(len(message), limit)
    while low <= high:
        middle = (low + high) // 2
        fitted = reply(message[:middle] + _CUT if middle else _CUT.lstrip())
        if fitted is None:
            high = middle - 1
        else:
            best, low = fitted, middle + 1
    return best if best is not None else reply("")


_CUT = " [cut to fit the frame]"


def _answer(
    table: dict[str, Any], request: Any, payload: bytes, dumps: Dumps
) -> tuple[bytes, bool]:
    """Return the reply to *request*, and whether to stop after sending it."""
    if type(request) is not dict:
        _fatal(f"a frame is not a JSON object: {bytes(payload[:60])!r}")
    request_id = request.get(_ID)
    if type(request_id) is not int:
        _fatal(f"a request has no usable {wire.ID!r} (an int): {bytes(payload[:60])!r}")
    op = request.get(_OP)
    if type(op) is not str:
        what = (
            f"the request has no {wire.OP!r}"
            if _OP not in request
            else f"the request's {wire.OP!r} must be a string (got {op!r:.60})"
        )
        return _error_reply(dumps, request_id, wire.BAD_REQUEST, what, ""), False
    handler = table.get(op)
    if handler is None:
        if op == wire.PING:
            return _result_reply(dumps, request_id, wire.PONG), False
        if op == wire.SHUTDOWN:
            return _result_reply(dumps, request_id, None), True
        known = ", ".join(sorted([*table, *wire.BUILTIN_OPS]))
        message = f"unknown op {op!r}; this worker handles: {known}"
        return _error_reply(dumps, request_id, wire.UNKNOWN_OP, message, ""), False
    try:
        result = handler(request.get(_ARGS))
    except Exception as exc:
        import traceback  # only when needed: it is not free to import

        return _error_reply(
            dumps, request_id, type(exc).__name__, str(exc), traceback.format_exc()
        ), False
    try:
        return dumps({_ID: request_id, _RESULT: result}), False  # _result_reply, inline
    except (TypeError, ValueError, RecursionError) as exc:
        message = f"the handler for {op!r} returned a value JSON cannot encode: {exc}"
        type_name = type(exc).__name__
        if isinstance(exc, RecursionError):  # a value is what is wrong: ValueError
            message = f"the handler for {op!r} returned a value nested too deeply to encode"
            type_name = "ValueError"
        return _error_reply(dumps, request_id, type_name, message, ""), False


def _result_reply(dumps: Dumps, request_id: int, result: Any) -> bytes:
    return dumps({wire.ID: request_id, wire.RESULT: result})


def _error_reply(
    dumps: Dumps, request_id: int, type_name: str, message: str, traceback: str
) -> bytes:
    return dumps(
        {
            wire.ID: request_id,
            wire.ERROR: {
                wire.ERROR_TYPE: type_name,
                wire.ERROR_MESSAGE: message,
                wire.ERROR_TRACEBACK: traceback,
            },
        }
    )


_lazy.show_public_module(globals(), "nursemaid.workers")
