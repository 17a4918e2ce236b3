"""Codecs: how a message becomes a frame's payload and back.

A port's ``codec`` decides what :meth:`Port.send` and :meth:`Port.receive` carry:
``"json"`` (the default) sends any JSON-compatible value as UTF-8 JSON text,
``"raw"`` sends ``bytes`` unchanged. Anything with a ``name``, ``encode`` and
``decode`` (the :class:`Codec` protocol) can stand in for them.

Rules:
    * Errors are named and say which side is at fault. A value we cannot encode is
      :class:`~nursemaid.LocalProtocolError` (nothing was sent). Bytes that do not
      decode are :class:`~nursemaid.RemoteProtocolError`: invalid UTF-8, not JSON,
      nesting too deep; never a bare ``ValueError`` or ``RecursionError``.
    * The JSON we write is strict RFC 8259 JSON that any language can read:
      compact, UTF-8, and no ``NaN``/``Infinity`` (the standard library would
      write them; we refuse). The JSON we read is strict too: ``NaN``,
      ``Infinity`` and ``-Infinity`` literals are rejected.
    * Imports no trio, and no attrs or cattrs either.

Theory of operation:
    The JSON backend was chosen by measurement (``bench/bench_codec.py``; figures
    in ``docs/protocol.md``): through the envelope, a ~100-byte request and reply
    cost 1.5 µs with orjson against 2.6 µs with the standard library (4.4 µs
    before the standard library's path called its C accelerators directly, see
    ``_std_dumps``), of a ~20 µs port round trip. So when orjson is installed
    (the ``nursemaid[orjson]`` extra), ``backend="auto"`` uses it; otherwise the
    standard library. Both backends give the same results and the same error
    messages, because whenever orjson refuses something we ask the standard
    library, which either handles it (integers beyond 64 bits, non-string dict
    keys, lone surrogates in ``\\u`` escapes) or raises the precise error.
    orjson would write ``NaN`` and infinities as ``null`` without a word, and
    cannot be told not to; so a payload it wrote with a ``null`` in it is
    checked for them (a walk in Python, only then: most requests and replies
    carrying no ``null`` pay one substring search), and one that has them gets
    the standard library's refusal, the same error with the same message.

    One admitted difference remains, orjson's own rule, which you accept by
    installing the extra: it *decodes* integers outside -2**63 .. 2**64-1 as
    floats (the standard library keeps them exact).
"""

from __future__ import annotations

import json
import json.encoder
import json.scanner
import math
from collections.abc import Callable
from typing import Any, Final, Literal, Protocol, TypeAlias, runtime_checkable

from nursemaid import _lazy
from nursemaid._errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "JSON",
    "Codec",
    "JsonBackend",
    "JsonCodec",
    "RawCodec",
    "get_codec",
    "json_functions",
]

JSON: TypeAlias = Any
"""A JSON-compatible value: ``None``, ``bool``, ``int``, ``float``, ``str``, or a
``list``/``tuple``/``dict`` (with ``str`` keys) of them."""

JsonBackend: TypeAlias = Literal["auto", "json", "orjson"]
"""Which JSON library to use: ``"auto"`` (orjson when installed, else the standard
library), ``"json"`` (the standard library) or ``"orjson"`` (must be installed)."""

_SNIPPET: Final = 60  # how much of a bad payload an error message shows


def _snippet(data: bytes) -> str:
    shown = bytes(data[:_SNIPPET])
    more = f"... ({len(data)} bytes)" if len(data) > _SNIPPET else ""
    return f"{shown!r}{more}"


# ---- the standard library backend ---------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_std_encoder: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_std_decoder: Final = json.JSONDecoder(parse_constant=_reject_constant)
_std_encode: Final = _std_encoder.encode
_std_decode: Final = _std_decoder.decode


# The reference: JSONEncoder.encode and JSONDecoder.decode, every error translated.
# _std_dumps and _std_loads (below) give exactly their answers, faster.


def _reference_dumps(value: JSON) -> bytes:
    try:
        return _std_encode(value).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        # TypeError: not serializable; ValueError: NaN, circular reference;
        # UnicodeEncodeError (a ValueError): a lone surrogate in a str.
        raise LocalProtocolError(
            f"cannot encode message as JSON: {exc}\n"
            f"Expected: None, bool, int, finite float, str, or lists and str-keyed dicts of them\n"
            f"Got: {value!r:.200}"
        ) from exc


def _reference_loads(data: bytes) -> JSON:
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(
            f"payload is not valid UTF-8 ({exc.reason} at byte {exc.start}): {_snippet(data)}"
        ) from None
    try:
        return _std_decode(text)
    except json.JSONDecodeError as exc:
        raise RemoteProtocolError(
            f"payload is not JSON ({exc.msg} at byte {exc.pos}): {_snippet(data)}"
        ) from None
    except ValueError as exc:  # a NaN/Infinity literal, from _reject_constant
        raise RemoteProtocolError(f"payload is not JSON ({exc}): {_snippet(data)}") from None
    except RecursionError:
        raise RemoteProtocolError(
            f"payload is JSON nested too deeply to decode: {_snippet(data)}"
        ) from None


# The shortcut. encode() and decode() spend more time around json's C accelerators
# than in them: decode() runs two whitespace regexes, encode() builds a new C
# encoder per call. For the payloads a port sees (UTF-8, no whitespace around the
# value) we call the accelerators, built once, directly: about half the cost
# (bench/bench_codec.py; docs/protocol.md has the figures). Anything they do not
# take cleanly goes to the reference above, which accepts it or raises exactly
# the error it always did; tests/property/test_json_shortcut.py holds the two equal.
# serve does the same on the worker's side (workers/_serve.py, _json_functions).


def _make_c_encoder() -> Callable[[Any, int], Any] | None:
    """The C encoder encode() would build for _std_encoder, built once; else None."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the accelerator
        return None
    enc = _std_encoder
    try:
        encode = make(
            None,  # markers: no circular-reference check (a cycle is a RecursionError)
            enc.default,  # raises TypeError naming the type, as encode()'s does
            json.encoder.encode_basestring,  # ensure_ascii=False, as encode()
            None,  # indent
            enc.key_separator,
            enc.item_separator,
            enc.sort_keys,
            enc.skipkeys,
            enc.allow_nan,
        )
        probe = {"id": 1, "result": [1, 2.5, None, True, "é\n", {"k": "v"}]}
        if "".join(encode(probe, 0)) != _std_encode(probe):
            return None  # pragma: no cover - another interpreter's accelerator
    except Exception:  # pragma: no cover - another interpreter's signature
        return None
    return encode  # type: ignore[no-any-return]


_c_encode: Final = _make_c_encoder()
_scan: Final = json.scanner.make_scanner(_std_decoder)  # type: ignore[arg-type]


def _std_dumps(value: JSON) -> bytes:
    if _c_encode is None:  # pragma: no cover - CPython always has the accelerator
        return _reference_dumps(value)
    try:
        return "".join(_c_encode(value, 0)).encode()
    except (TypeError, ValueError, RecursionError):
        # Not serializable, NaN, a lone surrogate (UnicodeEncodeError), or a cycle
        # (the shortcut has no circular-reference check): the reference's error.
        return _reference_dumps(value)


def _std_loads(data: bytes) -> JSON:
    try:
        text = data.decode() if type(data) is bytes else bytes(data).decode()
        value, end = _scan(text, 0)
    except (ValueError, StopIteration, RecursionError):
        # Not UTF-8 (UnicodeDecodeError), not JSON at byte 0 (StopIteration, or
        # JSONDecodeError), a NaN literal, nested too deeply: the reference's error.
        return _reference_loads(data)
    if end != len(text):  # whitespace or more data after the value
        return _reference_loads(data)
    return value


# ---- the orjson backend -------------------------------------------------------------

_isfinite: Final = math.isfinite


def _has_non_finite(value: object) -> bool:
    """Whether *value* holds a ``NaN`` or an infinity (in a value, not a dict key).

    Only called on what orjson has just encoded, so *value* is acyclic and at
    most orjson's 254 levels deep: the recursion is bounded. (orjson refuses
    non-str dict keys without ``OPT_NON_STR_KEYS``, so a float key never gets here.)
    Exact types first, scalars skipped inline: this runs on every orjson payload
    that has a ``null`` in it.
    """
    kind = type(value)
    if kind is dict:
        items: Any = value.values()  # type: ignore[attr-defined]
    elif kind is list or kind is tuple:
        items = value
    elif kind is float:
        return not _isfinite(value)  # type: ignore[arg-type]
    elif isinstance(value, float):  # subclasses, as orjson encodes them
        return not _isfinite(value)
    elif isinstance(value, dict):
        items = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return False
    for item in items:
        kind = type(item)
        if kind is str or kind is int or item is None or kind is bool:
            continue
        if kind is float:
            if not _isfinite(item):
                return True
        elif _has_non_finite(item):
            return True
    return False


def _orjson_functions() -> tuple[Callable[[JSON], bytes], Callable[[bytes], JSON]]:
    import orjson  # the optional extra: nursemaid[orjson]

    dumps = orjson.dumps
    loads = orjson.loads
    # Hand dataclasses and datetimes to `default` (which refuses them) instead of
    # letting orjson encode them natively, so both backends accept the same values.
    option = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME

    def orjson_dumps(value: JSON) -> bytes:
        try:
            out = dumps(value, option=option)
        except TypeError:
            return _std_dumps(value)  # handles it exactly, or raises the precise error
        # orjson writes NaN and infinities as null and has no option to refuse
        # them; the standard library refuses them. So a payload with a null in it
        # is checked for them (one C substring search on every payload, a walk of
        # the value only on those with a null), and one that has them goes to the
        # standard library, which raises its precise error.
        if out.find(b"null") != -1 and _has_non_finite(value):  # find: faster than `in`
            return _std_dumps(value)
        return out

    def orjson_loads(data: bytes) -> JSON:
        try:
            return loads(data)
        except ValueError:  # orjson.JSONDecodeError
            return _std_loads(data)  # handles it exactly, or raises the precise error

    return orjson_dumps, orjson_loads


def json_functions(
    backend: JsonBackend = "auto",
) -> tuple[str, Callable[[JSON], bytes], Callable[[bytes], JSON]]:
    """Return ``(name, dumps, loads)`` for a JSON backend.

    ``dumps(value) -> bytes`` raises :class:`~nursemaid.LocalProtocolError`;
    ``loads(bytes) -> value`` raises :class:`~nursemaid.RemoteProtocolError`.

    Args:
        backend: ``"auto"`` (default: orjson if installed, else the standard
            library), ``"json"`` or ``"orjson"``.

    Raises:
        ValueError: *backend* is not one of those names.
        ImportError: ``backend="orjson"`` and orjson is not installed (install
            ``nursemaid[orjson]``).
    """
    if backend == "json":
        return "json", _std_dumps, _std_loads
    if backend == "orjson":
        return ("orjson", *_orjson_functions())
    if backend == "auto":
        try:
            return ("orjson", *_orjson_functions())
        except ImportError:
            return "json", _std_dumps, _std_loads
    raise ValueError(f"JSON backend must be 'auto', 'json' or 'orjson' (got {backend!r})")


# ---- codecs -------------------------------------------------------------------------


@runtime_checkable
class Codec(Protocol):
    """What a port needs to turn messages into frame payloads and back.

    Implement it to carry something other than JSON (say msgpack) through
    :meth:`Port.send` and :meth:`Port.receive`; pass the object as
    ``open_port(..., codec=...)``.

    """

    @property
    def name(self) -> str:
        """A short name for logs and reprs (``"json"``, ``"raw"``)."""
        ...

    def encode(self, value: Any) -> bytes:
        """Return the payload for *value*.

        Must raise :class:`~nursemaid.LocalProtocolError` for a value it cannot
        encode (the port then writes nothing and stays usable).
        """
        ...

    def decode(self, data: bytes) -> Any:
        """Return the value a payload carries.

        Must raise :class:`~nursemaid.RemoteProtocolError` for bytes that do not
        decode (the port then closes: its peer is not speaking the protocol).
        """
        ...


class JsonCodec:
    """Messages are JSON-compatible values, sent as compact UTF-8 JSON text.

    Example:
        >>> codec = JsonCodec(backend="json")
        >>> codec.encode({"text": "héllo", "n": [1, 2]})
        b'{"text":"h\\xc3\\xa9llo","n":[1,2]}'
        >>> codec.decode(b'{"ok": true}')
        {'ok': True}

    Tuples encode as arrays and so decode as lists; dict keys that are not strings
    become strings, as JSON requires.

    Args:
        backend: ``"auto"`` (default: orjson when the ``nursemaid[orjson]`` extra is
            installed, else the standard library), ``"json"`` or ``"orjson"``.
    """

    __slots__ = ("_dumps", "_loads", "backend")

    name: Final = "json"

    def __init__(self, *, backend: JsonBackend = "auto") -> None:
        self.backend, self._dumps, self._loads = json_functions(backend)

    def __repr__(self) -> str:
        return f"JsonCodec(backend={self.backend!r})"

    def encode(self, value: JSON) -> bytes:
        """Return *value* as UTF-8 JSON.

        Raises:
            LocalProtocolError: *value* is not JSON-compatible (a set, an object,
                a lone surrogate, a circular reference, ``NaN`` or an infinity),
                on either backend.
        """
        return self._dumps(value)

    def decode(self, data: bytes) -> JSON:
        """Return the value UTF-8 JSON *data* encodes.

        Raises:
            RemoteProtocolError: *data* is not valid UTF-8, not JSON, or nested too
                deeply.
        """
        return self._loads(data)


class RawCodec:
    """Messages are ``bytes``, sent unchanged: the payload is the message.

    Example:
        >>> RawCodec().encode(b"\\x00\\x01")
        b'\\x00\\x01'
    """

    __slots__ = ()

    name: Final = "raw"

    def __repr__(self) -> str:
        return "RawCodec()"

    def encode(self, value: bytes) -> bytes:
        """Return *value* (``bytes``, ``bytearray`` or ``memoryview``) as ``bytes``.

        Raises:
            LocalProtocolError: *value* is not bytes-like (a ``str`` must be encoded
                first: the raw codec does not guess a text encoding).
        """
        if type(value) is bytes:
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise LocalProtocolError(
            f"the raw codec sends bytes only\nExpected: bytes, bytearray or memoryview\n"
            f"Got: {value!r:.200}"
            + (" (encode the str first, e.g. value.encode())" if isinstance(value, str) else "")
        )

    def decode(self, data: bytes) -> bytes:
        """Return *data* as ``bytes``: every payload is a valid raw message."""
        return bytes(data)


CODECS: Final[dict[str, type[JsonCodec] | type[RawCodec]]] = {"json": JsonCodec, "raw": RawCodec}
"""The codecs known by name."""


def get_codec(codec: str | Codec) -> Codec:
    """Return the codec *codec* names, or *codec* itself if it already is one.

    Args:
        codec: ``"json"`` (a :class:`JsonCodec` with the ``"auto"`` backend),
            ``"raw"`` (a :class:`RawCodec`), or any object following :class:`Codec`.

    Raises:
        ValueError: an unknown codec name.
        TypeError: neither a name nor a :class:`Codec`.
    """
    if isinstance(codec, str):
        try:
            return CODECS[codec]()
        except KeyError:
            raise ValueError(
                f"unknown codec {codec!r}; use one of {sorted(CODECS)} or pass a Codec object"
            ) from None
    if isinstance(codec, Codec):
        return codec
    raise TypeError(
        f"codec must be a name or a Codec (an object with name, encode and decode); got {codec!r}"
    )


# Show the public path in reprs and tracebacks (Trio's habit).
for _public in (Codec, JsonCodec, RawCodec):
    _lazy.publish(_public, "nursemaid.protocol", globals())
del _public
