"""Length-prefixed framing, exactly Erlang's ``{packet, N}`` for N in 1, 2 and 4.

A *frame* is an N-byte big-endian unsigned length followed by that many bytes of
payload. ``{packet, 4}`` is the default; 1 and 2 exist so that existing Erlang port
programs can be driven unchanged.

Rules:
    * Sans-IO: nothing here reads, writes, sleeps or looks at a clock. The caller
      feeds bytes in with :meth:`FrameDecoder.receive_data` and pulls whole frames
      out with :meth:`FrameDecoder.next_frame` (h11's shape).
    * Standard library only (plus :mod:`nursemaid._errors`, itself stdlib-only):
      the far side of a port (``serve``) imports this module, and worker start-up
      time matters. ``tests/unit/test_protocol_imports_no_trio.py`` enforces it.
    * A header announcing more than ``max_frame`` is a
      :class:`~nursemaid.RemoteProtocolError` the moment the header is complete,
      before a single payload byte is awaited: a peer that writes garbage (most
      often a worker that ``print``-ed to stdout) must never make us buffer
      gigabytes. After any error the decoder is *poisoned*: every later call
      raises, because the byte stream can no longer be trusted to be in step.
    * That error's hint is written for the side that reads: a header that looks
      like text is, for a port, a worker that wrote to stdout. A decoder on the
      other side (``serve``'s) sets its own ``_TEXT_HINT``.
    * Going out, :func:`encode_frame` refuses a payload over ``max_frame`` (or over
      what an N-byte header can express) with
      :class:`~nursemaid.LocalProtocolError` before producing anything, so the
      caller has written nothing and its stream stays usable.

Theory of operation:
    The decoder keeps one ``bytearray``. Deleting a prefix of a ``bytearray`` is
    amortised O(1) in CPython (it moves a start offset), so taking frames off the
    front never copies the rest. Once a header is complete its length is parsed
    once, checked against ``max_frame`` and remembered, so feeding a large payload
    in many small chunks costs one length check, not one per chunk.

    Invariant: while the decoder is healthy, ``_need`` is either ``-1`` (no
    complete header at the front of ``_buf``) or the payload length announced by
    the header at the front of ``_buf``, and ``_need <= max_frame``.

    End of file is ``receive_data(b"")``. Frames already buffered can still be
    taken; after that :meth:`~FrameDecoder.next_frame` returns ``None`` for ever.
    Whether EOF cut a frame short is ``at_eof and buffered > 0``; the decoder does
    not raise for it, because what a truncated stream *means* (a crashed worker)
    is the port's business, and the port reports it as ``PortClosed`` with the
    worker's exit status and stderr attached.
"""

from __future__ import annotations

import struct

from nursemaid import _lazy
from nursemaid._errors import LocalProtocolError, RemoteProtocolError, UsageError

# Not `from typing import ...`: serve imports this module, and importing typing
# costs a worker ~4 ms of start-up; type checkers treat this name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar, Final, NoReturn

__all__ = ["DEFAULT_MAX_FRAME", "PACKET_SIZES", "FrameDecoder", "encode_frame"]

DEFAULT_MAX_FRAME: Final = 64 * 1024 * 1024
"""The largest payload accepted in either direction unless told otherwise: 64 MiB."""

PACKET_SIZES: Final = (1, 2, 4)
"""The header sizes, in bytes, that Erlang's ``{packet, N}`` allows and we speak."""

# One precompiled struct per header size: '>' is big-endian, B/H/I unsigned.
_HEADERS: Final[dict[int, struct.Struct]] = {
    1: struct.Struct(">B"),
    2: struct.Struct(">H"),
    4: struct.Struct(">I"),
}
# The largest payload each header can express.
_HEADER_LIMIT: Final[dict[int, int]] = {n: (1 << (8 * n)) - 1 for n in PACKET_SIZES}


def _check_options(packet: object, max_frame: object) -> None:
    # Programming misuse: plain ValueError/TypeError, as the contract says.
    if packet not in _HEADERS or isinstance(packet, bool):
        raise ValueError(f"packet must be one of {PACKET_SIZES} (got {packet!r})")
    if not isinstance(max_frame, int) or isinstance(max_frame, bool):
        raise TypeError(f"max_frame must be an int (got {max_frame!r})")
    if max_frame < 0:
        raise ValueError(f"max_frame must be >= 0 (got {max_frame!r})")


def encode_frame(payload: bytes, *, packet: int = 4, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """Return *payload* prefixed with its length as a *packet*-byte big-endian header.

    Example:
        >>> encode_frame(b"hi")
        b'\\x00\\x00\\x00\\x02hi'
        >>> encode_frame(b"hi", packet=1)
        b'\\x02hi'

    Args:
        payload: the bytes to send (``bytes``, ``bytearray`` or ``memoryview``).
        packet: header size in bytes: 1, 2 or 4 (default 4, Erlang's ``{packet, 4}``).
        max_frame: the largest payload allowed (default :data:`DEFAULT_MAX_FRAME`).

    Returns:
        The frame, header and payload, as one ``bytes`` object.

    Raises:
        LocalProtocolError: *payload* is longer than *max_frame*, or longer than a
            *packet*-byte header can express (255 for 1, 65535 for 2). Nothing was
            produced, so a stream the caller writes to is still in step.
        ValueError: *packet* is not 1, 2 or 4, or *max_frame* is negative.
    """
    header = _HEADERS.get(packet)
    if header is None or isinstance(packet, bool):
        raise ValueError(f"packet must be one of {PACKET_SIZES} (got {packet!r})")
    size = len(payload)
    if size > max_frame or size > _HEADER_LIMIT[packet]:
        _check_options(packet, max_frame)
        if size > max_frame:
            raise LocalProtocolError(
                f"cannot send a {size}-byte message: it is over max_frame={max_frame}; "
                f"send smaller messages or raise max_frame on both sides"
            )
        raise LocalProtocolError(
            f"cannot send a {size}-byte message with packet={packet}: a {packet}-byte "
            f"header holds at most {_HEADER_LIMIT[packet]}; use packet=4 for larger messages"
        )
    return header.pack(size) + payload


class FrameDecoder:
    """An incremental decoder for ``{packet, N}`` frames: bytes in, whole frames out.

    Feed it whatever chunks the pipe gives, in order, and take complete frames out;
    a chunk may hold part of a header, several frames, or anything in between.

    Example:
        >>> decoder = FrameDecoder()
        >>> decoder.receive_data(b"\\x00\\x00\\x00\\x02h")
        >>> decoder.next_frame() is None    # need more data
        True
        >>> decoder.receive_data(b"i\\x00\\x00")
        >>> decoder.next_frame()
        b'hi'
        >>> decoder.buffered                # half of the next header
        2

    Args:
        packet: header size in bytes: 1, 2 or 4 (default 4).
        max_frame: the largest payload accepted (default :data:`DEFAULT_MAX_FRAME`).

    Raises:
        ValueError: *packet* is not 1, 2 or 4, or *max_frame* is negative.
        TypeError: *max_frame* is not an int.
    """

    __slots__ = ("_buf", "_eof", "_error", "_header", "_max_frame", "_need", "_packet")

    # What a header that reads as text most likely means, for the side reading it:
    # here a port's, whose peer is a worker; serve's decoder says its own.
    _TEXT_HINT: ClassVar[str] = "the header looks like text: did the worker write to stdout?"

    def __init__(self, *, packet: int = 4, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        _check_options(packet, max_frame)
        self._packet: Final = packet
        self._max_frame: Final = max_frame
        self._header: Final = _HEADERS[packet]
        self._buf = bytearray()
        self._need = -1
        self._eof = False
        self._error: RemoteProtocolError | None = None

    def __repr__(self) -> str:
        state = "poisoned" if self._error is not None else "eof" if self._eof else "open"
        return (
            f"<FrameDecoder packet={self._packet} max_frame={self._max_frame} "
            f"buffered={len(self._buf)} {state}>"
        )

    @property
    def packet(self) -> int:
        """The header size in bytes (1, 2 or 4)."""
        return self._packet

    @property
    def max_frame(self) -> int:
        """The largest payload this decoder accepts."""
        return self._max_frame

    @property
    def at_eof(self) -> bool:
        """Whether end of file was fed in (``receive_data(b"")``)."""
        return self._eof

    @property
    def buffered(self) -> int:
        """How many bytes are held that no returned frame has used yet.

        After :meth:`next_frame` has returned ``None``, these are the bytes of an
        incomplete frame; ``at_eof and buffered > 0`` means the stream ended in the
        middle of one (a truncated frame).
        """
        return len(self._buf)

    def receive_data(self, data: bytes) -> None:
        """Feed the next chunk of the stream; ``b""`` means end of file.

        Args:
            data: the bytes read, in order (``bytes``, ``bytearray`` or ``memoryview``).

        Raises:
            RemoteProtocolError: the decoder was poisoned by an earlier error.
            UsageError: data was fed after end of file (a bug in the caller).
        """
        if self._error is not None:
            self._raise_poisoned()
        if not data:
            self._eof = True
            return
        if self._eof:
            raise UsageError(
                f"frame decoder got {len(data)} more bytes after end of file; "
                f"feed b'' only once, when the stream has ended"
            )
        self._buf += data

    def next_frame(self) -> bytes | None:
        """Take the next complete frame's payload off the front, if there is one.

        Returns:
            The payload of the next frame (possibly ``b""``: empty frames are
            legal), or ``None`` when no complete frame is buffered: either more
            data is needed or, if :attr:`at_eof`, none will come.

        Raises:
            RemoteProtocolError: a complete header announces more than
                ``max_frame``. Raised as soon as the header is complete, whatever
                follows it. The decoder is then poisoned: every later call raises
                again, because the stream is out of step for good.
        """
        if self._error is not None:
            self._raise_poisoned()
        buf = self._buf
        need = self._need
        start = self._packet
        if need < 0:
            if len(buf) < start:
                return None
            (need,) = self._header.unpack_from(buf)
            if need > self._max_frame:
                self._poison(need, bytes(buf[:start]))
            self._need = need
        end = start + need
        if len(buf) < end:
            return None
        if len(buf) == end:
            # The common case on a pipe: the buffer holds exactly this frame. Drop
            # the header (a prefix delete moves an offset) and copy once.
            del buf[:start]
            frame = bytes(buf)
            buf.clear()
        else:
            frame = bytes(buf[start:end])
            del buf[:end]
        self._need = -1
        return frame

    # ---- errors -----------------------------------------------------------------

    def _poison(self, announced: int, header: bytes) -> NoReturn:
        hint = f"the peer is not speaking {{packet, {self._packet}}} framing"
        if all(0x20 <= b < 0x7F for b in header):
            # The classic: a worker print()s to stdout, and "Hell" reads as 1.2 GB.
            hint = self._TEXT_HINT
        self._error = RemoteProtocolError(
            f"incoming frame header {header!r} announces {announced} bytes, more than "
            f"max_frame={self._max_frame}; {hint} (or raise max_frame on both sides)"
        )
        self._buf.clear()
        raise self._error

    def _raise_poisoned(self) -> NoReturn:
        assert self._error is not None
        raise RemoteProtocolError(
            f"frame decoder is unusable after an earlier protocol error: {self._error}"
        ) from self._error


# Show the public path in reprs and tracebacks (Trio's habit).
_lazy.publish(FrameDecoder, "nursemaid.protocol", globals())
