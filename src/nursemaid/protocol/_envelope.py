"""Envelopes: the id-carrying messages of :meth:`Port.request`, and their wire shapes.

:class:`Request`, :class:`Reply` and :class:`ErrorReply` are frozen attrs classes;
an *envelope* (the :class:`Envelope` protocol) turns requests into payloads and
payloads into replies. Two ship with nursemaid:

* :class:`StandardEnvelope` (what ``serve`` speaks)::

      {"id": 7, "op": "add", "args": [1, 2]}
      {"id": 7, "result": 3}
      {"id": 7, "error": {"type": "ZeroDivisionError", "message": "...", "traceback": "..."}}

* :class:`CommandEnvelope`, for existing workers that speak::

      {"id": 7, "command": "add", "args": [1, 2]}
      {"id": 7, "success": true, "result": 3}
      {"id": 7, "success": false, "error": "division by zero"}

``docs/protocol.md`` is the specification.

Rules:
    * Bad input is never silent. A payload that is not valid UTF-8, not JSON, not a
      JSON object, lacks a field, or has a field of the wrong type (a ``true`` or
      ``"7"`` where an int id belongs) raises
      :class:`~nursemaid.RemoteProtocolError` naming the field, with
      ``Expected:`` / ``Got:`` lines. Unknown extra keys are ignored, so a
      worker may add fields without breaking older ports.
    * A reply carries exactly one of ``result`` and ``error``; both or neither is
      malformed.
    * Whether a reply's id belongs to a waiting request is the port's question,
      not the envelope's: :meth:`Envelope.decode_reply` returns whatever well-formed
      reply arrived, and its ``id`` is all the port needs.

Theory of operation:
    The cattrs :data:`converter` (strict: no ``int("7")``, no ``True`` for an
    int) defines the structures. The hot path, a well-formed request going out
    and a well-formed reply coming back, is hand-written because the port's round
    trip budget is a few microseconds and cattrs costs more than that
    (``bench/bench_codec.py``: on a ~100-byte envelope the cattrs path costs
    about 1.6 µs more per round trip on either backend: 3.1 against 1.5 µs with
    orjson, 4.3 against 2.6 µs with the standard library's json). Anything the
    fast path does not recognise at a glance (error replies, extra keys, wrong
    types) falls through to the cattrs converter, which either structures it or
    produces the error. A property test
    (``tests/property/test_framing_properties.py``) checks that the two paths
    agree on arbitrary objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar

import attrs
import cattrs

from nursemaid import _lazy
from nursemaid._errors import RemoteProtocolError
from nursemaid.protocol import _wire as w
from nursemaid.protocol._codec import JSON, JsonBackend, json_functions

__all__ = [
    "CommandEnvelope",
    "Envelope",
    "ErrorReply",
    "Reply",
    "Request",
    "StandardEnvelope",
    "converter",
    "get_envelope",
]

# ---- the messages -------------------------------------------------------------------


@attrs.frozen
class Request:
    """A request: ask the worker to run *op* with *args*; the reply carries *id* back.

    Attributes:
        id: chosen by the requesting side, unique among its requests in flight
            (a port counts up from 1).
        op: the operation's name.
        args: its argument, any JSON-compatible value (default ``None``).
    """

    id: int
    op: str
    args: JSON = None


@attrs.frozen
class Reply:
    """A successful reply to the request with the same *id*.

    Attributes:
        id: the id of the request answered.
        result: the handler's return value, any JSON-compatible value.
    """

    id: int
    result: JSON = None


@attrs.frozen
class ErrorReply:
    """The worker could not answer the request with the same *id*: its handler
    raised, the op is unknown, or the request was malformed.

    Attributes:
        id: the id of the request answered; ``None`` only when the worker could not
            read the request's id.
        type: the name of the error on the far side: an exception class's name
            (``"ValueError"``) or one of ``serve``'s own, ``"UnknownOp"``,
            ``"BadRequest"`` and ``"LocalProtocolError"``.
        message: the exception's message.
        traceback: the far side's formatted traceback (default empty).
    """

    id: int | None
    type: str
    message: str
    traceback: str = ""


# ---- the cattrs converter: the reference structures -----------------------------------


@attrs.frozen
class _WireError:
    type: str
    message: str
    traceback: str = ""


@attrs.frozen
class _WireErrorReply:
    id: int | None
    error: _WireError


@attrs.frozen
class _WireCommandRequest:
    id: int
    command: str
    args: JSON = None


@attrs.frozen
class _WireCommandReply:
    id: int
    success: bool
    result: JSON = None
    error: JSON = None


_T = TypeVar("_T")


def _exactly(cls: type[_T]) -> Callable[[object, object], _T]:
    # cattrs' default int hook is int(value): it would take "7", 7.9 or true as an
    # id. On the wire that is bad input, so the type must be exactly right.
    def structure(value: object, _: object) -> _T:
        if type(value) is not cls:
            raise TypeError(f"expected {cls.__name__}, got {value!r:.60}")
        return value

    return structure


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    for cls in (int, str, bool):
        conv.register_structure_hook(cls, _exactly(cls))
    conv.register_unstructure_hook(
        ErrorReply,
        lambda e: {
            w.ID: e.id,
            w.ERROR: {
                w.ERROR_TYPE: e.type,
                w.ERROR_MESSAGE: e.message,
                w.ERROR_TRACEBACK: e.traceback,
            },
        },
    )

    def structure_error_reply(obj: object, _: object) -> ErrorReply:
        wire = conv.structure(obj, _WireErrorReply)
        return ErrorReply(wire.id, wire.error.type, wire.error.message, wire.error.traceback)

    conv.register_structure_hook(ErrorReply, structure_error_reply)
    return conv


converter: Final = _make_converter()
"""The strict cattrs converter for :class:`Request`, :class:`Reply` and
:class:`ErrorReply` in the standard envelope's wire shapes (``converter.structure(
{"id": 1, "result": 2}, Reply)``). Types must match exactly: no ``"7"`` or ``true``
for an int."""


def _format_cattrs_exception(exc: BaseException, type_: object) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, TypeError) and str(exc).startswith("expected "):
        return f"wrong type: {exc}"
    return cattrs.v.format_exception(exc, type_)  # type: ignore[arg-type]


def _snippet(payload: bytes) -> str:
    return f"{bytes(payload[:200])!r}" + ("..." if len(payload) > 200 else "")


# Who sent what, for the error messages: replies come from a worker, requests from
# the port (decode_request is the worker's side).
_REPLY: Final = "reply from worker"
_ERROR_REPLY: Final = "error reply from worker"
_REQUEST: Final = "request from port"


def _malformed(what: str, expected: str, problems: str, payload: bytes) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"malformed {what}: {problems}\nExpected: {expected}\nGot: {_snippet(payload)}"
    )


def _structure(obj: object, cls: type[_T], what: str, expected: str, payload: bytes) -> _T:
    try:
        return converter.structure(obj, cls)
    except (cattrs.BaseValidationError, KeyError, TypeError, ValueError) as exc:
        problems = "; ".join(
            cattrs.transform_error(exc, path="$", format_exception=_format_cattrs_exception)
        )
        raise _malformed(what, expected, problems, payload) from None


def _check_object(obj: object, what: str, expected: str, payload: bytes) -> dict[str, Any]:
    if type(obj) is not dict:
        raise _malformed(what, expected, f"not a JSON object but {type(obj).__name__}", payload)
    return obj


def _check_request(request: Request) -> None:
    # Cheap guards for our own caller's mistakes; a worker would answer BadRequest.
    if type(request.id) is not int:
        raise TypeError(f"request id must be an int (got {request.id!r})")
    if type(request.op) is not str:
        raise TypeError(f"request op must be a str (got {request.op!r})")


# Module globals, not `w.X` attribute lookups, on the hot path.
_ID: Final = w.ID
_OP: Final = w.OP
_ARGS: Final = w.ARGS
_RESULT: Final = w.RESULT

# ---- the pluggable envelope -------------------------------------------------------------


class Envelope(Protocol):
    """How :meth:`Port.request` wraps a request and unwraps its reply: the
    pluggable *envelope adapter*.

    Implement it to drive a worker that speaks some other id-carrying dialect;
    pass it as ``open_port(..., envelope=...)``. The port allocates ids and
    matches replies to requests; the envelope only translates.

    """

    @property
    def ping_op(self) -> str:
        """The op a liveness check (a pool's init handshake) sends, with no args.

        Any :class:`Reply` to it means "alive"; an :class:`ErrorReply` means not.
        """
        ...

    def encode_request(self, request: Request) -> bytes:
        """Return the payload for *request* (not yet framed).

        Raises:
            LocalProtocolError: ``request.args`` cannot be encoded (nothing is sent).
        """
        ...

    def decode_reply(self, payload: bytes) -> Reply | ErrorReply:
        """Return the reply a payload carries, whatever its id.

        Returns:
            :class:`Reply` for a success, :class:`ErrorReply` for a failure. The
            port checks the id: one no request is waiting for is a protocol
            error, unless it answers a request that was abandoned (cancelled or
            timed out), whose late reply is discarded.

        Raises:
            RemoteProtocolError: the payload is not a well-formed reply (invalid
                UTF-8, not JSON, not an object, a missing or wrongly typed field).
                The message names what was wrong.
        """
        ...


_REQUEST_SHAPE: Final = '{"id": int, "op": str, "args": any JSON (optional)}'
_REPLY_SHAPE: Final = (
    '{"id": int, "result": any JSON} or '
    '{"id": int | null, "error": {"type": str, "message": str, "traceback": str (optional)}}'
)


class StandardEnvelope:
    """The envelope ``serve`` speaks: ``{id, op, args}`` → ``{id, result}`` or
    ``{id, error: {type, message, traceback}}``, as UTF-8 JSON.

    Example:
        >>> envelope = StandardEnvelope(backend="json")
        >>> envelope.encode_request(Request(1, "add", [1, 2]))
        b'{"id":1,"op":"add","args":[1,2]}'
        >>> envelope.decode_reply(b'{"id":1,"result":3}')
        Reply(id=1, result=3)
        >>> envelope.decode_reply(b'{"id":1,"error":{"type":"E","message":"m"}}')
        ErrorReply(id=1, type='E', message='m', traceback='')

    Args:
        backend: the JSON library: ``"auto"`` (default: orjson if installed, else
            the standard library), ``"json"`` or ``"orjson"``.
    """

    __slots__ = ("_dumps", "_loads", "backend")

    ping_op: Final = w.PING

    def __init__(self, *, backend: JsonBackend = "auto") -> None:
        self.backend, self._dumps, self._loads = json_functions(backend)

    def __repr__(self) -> str:
        return f"StandardEnvelope(backend={self.backend!r})"

    # -- the port's side: the hot path --

    def encode_request(self, request: Request) -> bytes:
        """Return ``{"id", "op", "args"}`` as UTF-8 JSON.

        Raises:
            LocalProtocolError: ``request.args`` is not JSON-compatible.
            TypeError: ``request.id`` is not an int or ``request.op`` not a str.
        """
        _check_request(request)
        return self._dumps({_ID: request.id, _OP: request.op, _ARGS: request.args})

    def decode_reply(self, payload: bytes) -> Reply | ErrorReply:
        """Return the :class:`Reply` or :class:`ErrorReply` *payload* carries.

        Raises:
            RemoteProtocolError: *payload* is not a well-formed reply; the message
                names what was wrong.
        """
        obj = self._loads(payload)
        # Fast path: exactly {"id": <int>, "result": ...}. Anything else goes the
        # reference way below, which the property tests hold equal to this.
        if type(obj) is dict and len(obj) == 2:
            try:
                reply_id = obj[_ID]
                result = obj[_RESULT]
            except KeyError:
                pass
            else:
                if type(reply_id) is int:
                    return Reply(reply_id, result)
        return self.structure_reply(obj, payload)

    @staticmethod
    def structure_reply(obj: object, payload: bytes = b"") -> Reply | ErrorReply:
        """Return the reply the decoded JSON *obj* describes, through :data:`converter`.

        This is the reference for :meth:`decode_reply`. *payload* is only quoted in
        error messages.

        Raises:
            RemoteProtocolError: *obj* is not a well-formed reply.
        """
        reply = _check_object(obj, _REPLY, _REPLY_SHAPE, payload)
        has_result, has_error = w.RESULT in reply, w.ERROR in reply
        if has_result == has_error:
            which = "both 'result' and" if has_result else "neither 'result' nor"
            raise _malformed(_REPLY, _REPLY_SHAPE, f"it has {which} 'error'", payload)
        if has_result:
            return _structure(reply, Reply, _REPLY, _REPLY_SHAPE, payload)
        return _structure(reply, ErrorReply, _ERROR_REPLY, _REPLY_SHAPE, payload)

    # -- the worker's side, for tests and pure-Python fakes (serve has its own) --

    def decode_request(self, payload: bytes) -> Request:
        """Return the :class:`Request` *payload* carries (the worker's side).

        This is the strict reading, with this envelope's JSON backend: exactly
        what a port sends. ``serve`` does not use it and is more lenient, as
        ``docs/protocol.md`` describes: it answers a request whose ``id`` it can
        read but whose ``op`` is missing or not a string with a ``BadRequest``
        error reply, where this method raises; and it reads what
        :func:`json.loads` reads (a byte order mark, UTF-16, ``NaN``), which a
        port never sends and this method refuses.

        Raises:
            RemoteProtocolError: *payload* is not a well-formed request; the
                message names what was wrong.
        """
        obj = _check_object(self._loads(payload), _REQUEST, _REQUEST_SHAPE, payload)
        return _structure(obj, Request, _REQUEST, _REQUEST_SHAPE, payload)

    def encode_reply(self, reply: Reply | ErrorReply) -> bytes:
        """Return *reply* in its wire shape as UTF-8 JSON (the worker's side).

        Raises:
            LocalProtocolError: ``reply.result`` is not JSON-compatible.
        """
        return self._dumps(converter.unstructure(reply))


_COMMAND_REQUEST_SHAPE: Final = '{"id": int, "command": str, "args": any JSON (optional)}'
_COMMAND_REPLY_SHAPE: Final = (
    '{"id": int, "success": true, "result": any JSON} or '
    '{"id": int, "success": false, "error": str or {"type"?, "message"?, "traceback"?}}'
)


class CommandEnvelope:
    """An envelope for workers that speak ``{id, command, args}`` and answer
    ``{id, success: true, result}`` or ``{id, success: false, error}``.

    The ``error`` of a failure may be a string (the message; the type is then
    ``"Error"``), an object with optional ``type``, ``message`` and
    ``traceback`` strings, or any other JSON value (its JSON text becomes the
    message).

    Example:
        >>> envelope = CommandEnvelope(backend="json")
        >>> envelope.encode_request(Request(3, "echo", "hi"))
        b'{"id":3,"command":"echo","args":"hi"}'
        >>> envelope.decode_reply(b'{"id":3,"success":false,"error":"boom"}')
        ErrorReply(id=3, type='Error', message='boom', traceback='')

    Args:
        ping_op: the command a liveness check sends (default ``"ping"``).
        backend: the JSON library, as for :class:`StandardEnvelope`.
    """

    __slots__ = ("_dumps", "_loads", "backend", "ping_op")

    def __init__(self, *, ping_op: str = w.PING, backend: JsonBackend = "auto") -> None:
        if type(ping_op) is not str:
            raise TypeError(f"ping_op must be a str (got {ping_op!r})")
        self.ping_op = ping_op
        self.backend, self._dumps, self._loads = json_functions(backend)

    def __repr__(self) -> str:
        return f"CommandEnvelope(ping_op={self.ping_op!r}, backend={self.backend!r})"

    def encode_request(self, request: Request) -> bytes:
        """Return ``{"id", "command", "args"}`` as UTF-8 JSON.

        Raises:
            LocalProtocolError: ``request.args`` is not JSON-compatible.
            TypeError: ``request.id`` is not an int or ``request.op`` not a str.
        """
        _check_request(request)
        return self._dumps({w.ID: request.id, w.COMMAND: request.op, w.ARGS: request.args})

    def decode_reply(self, payload: bytes) -> Reply | ErrorReply:
        """Return the :class:`Reply` or :class:`ErrorReply` *payload* carries.

        Raises:
            RemoteProtocolError: *payload* is not a well-formed command reply.
        """
        obj = _check_object(self._loads(payload), _REPLY, _COMMAND_REPLY_SHAPE, payload)
        if type(obj.get(w.ID)) is int and obj.get(w.SUCCESS) is True:  # fast path
            return Reply(obj[w.ID], obj.get(w.RESULT))
        wire = _structure(obj, _WireCommandReply, _REPLY, _COMMAND_REPLY_SHAPE, payload)
        # Well-formed and not taken by the fast path: so it is a failure.
        assert wire.success is False
        return self._error_reply(wire.id, wire.error, payload)

    def _error_reply(self, reply_id: int, error: JSON, payload: bytes) -> ErrorReply:
        if isinstance(error, str):
            return ErrorReply(reply_id, "Error", error)
        if type(error) is dict:
            fields = {}
            for key, default in (
                (w.ERROR_TYPE, "Error"),
                (w.ERROR_MESSAGE, None),
                (w.ERROR_TRACEBACK, ""),
            ):
                value = error.get(key, default)
                if value is not None and type(value) is not str:
                    raise _malformed(
                        _REPLY,
                        _COMMAND_REPLY_SHAPE,
                        f"wrong type: expected str, got {value!r:.60} @ $.error.{key}",
                        payload,
                    )
                fields[key] = value
            message = fields[w.ERROR_MESSAGE]
            if message is None:
                message = self._dumps(error).decode("utf-8")
            error_type = fields[w.ERROR_TYPE]
            return ErrorReply(
                reply_id,
                "Error" if error_type is None else error_type,
                message,
                fields[w.ERROR_TRACEBACK] or "",
            )
        return ErrorReply(reply_id, "Error", self._dumps(error).decode("utf-8"))

    def decode_request(self, payload: bytes) -> Request:
        """Return the :class:`Request` *payload* carries (the worker's side).

        Raises:
            RemoteProtocolError: *payload* is not a well-formed command request.
        """
        obj = _check_object(self._loads(payload), _REQUEST, _COMMAND_REQUEST_SHAPE, payload)
        wire = _structure(obj, _WireCommandRequest, _REQUEST, _COMMAND_REQUEST_SHAPE, payload)
        return Request(wire.id, wire.command, wire.args)

    def encode_reply(self, reply: Reply | ErrorReply) -> bytes:
        """Return *reply* as a command reply in UTF-8 JSON (the worker's side).

        Raises:
            LocalProtocolError: ``reply.result`` is not JSON-compatible.
        """
        if isinstance(reply, Reply):
            return self._dumps({w.ID: reply.id, w.SUCCESS: True, w.RESULT: reply.result})
        return self._dumps(
            {w.ID: reply.id, w.SUCCESS: False, w.ERROR: converter.unstructure(reply)[w.ERROR]}
        )


def get_envelope(envelope: Envelope | None) -> Envelope:
    """Return *envelope*, or a :class:`StandardEnvelope` when it is ``None``.

    Raises:
        TypeError: *envelope* lacks ``ping_op``, ``encode_request`` or ``decode_reply``.
    """
    if envelope is None:
        return StandardEnvelope()
    missing = [
        name
        for name in ("ping_op", "encode_request", "decode_reply")
        if not hasattr(envelope, name)
    ]
    if missing:
        raise TypeError(
            f"envelope must follow the Envelope protocol; {envelope!r} lacks {', '.join(missing)}"
        )
    return envelope


# Show the public path in reprs and tracebacks (Trio's habit). Resolve the attrs
# classes' string annotations first: they name this module's globals, which cattrs
# could no longer find through the public module.
for _message in (Request, Reply, ErrorReply):
    attrs.resolve_types(_message)
for _public in (Request, Reply, ErrorReply, Envelope, StandardEnvelope, CommandEnvelope):
    _lazy.publish(_public, "nursemaid.protocol", globals())
del _message, _public
