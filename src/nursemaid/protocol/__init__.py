"""nursemaid.protocol: the sans-IO wire protocol of ports — framing, envelopes, codecs.

Nothing here imports trio, and this file only re-exports, lazily (see
:mod:`nursemaid._lazy`): ``import nursemaid.protocol`` costs next to nothing, and the
far side of a port can use the framing without loading attrs or cattrs.
"""

from __future__ import annotations

from nursemaid._lazy import attach

# Not `from typing import ...`: serve imports this package, and importing typing
# costs a worker ~4 ms of start-up; type checkers treat this name as True.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from nursemaid.protocol._codec import JSON as JSON
    from nursemaid.protocol._codec import Codec as Codec
    from nursemaid.protocol._codec import JsonCodec as JsonCodec
    from nursemaid.protocol._codec import RawCodec as RawCodec
    from nursemaid.protocol._codec import get_codec as get_codec
    from nursemaid.protocol._envelope import CommandEnvelope as CommandEnvelope
    from nursemaid.protocol._envelope import Envelope as Envelope
    from nursemaid.protocol._envelope import ErrorReply as ErrorReply
    from nursemaid.protocol._envelope import Reply as Reply
    from nursemaid.protocol._envelope import Request as Request
    from nursemaid.protocol._envelope import StandardEnvelope as StandardEnvelope
    from nursemaid.protocol._framing import DEFAULT_MAX_FRAME as DEFAULT_MAX_FRAME
    from nursemaid.protocol._framing import PACKET_SIZES as PACKET_SIZES
    from nursemaid.protocol._framing import FrameDecoder as FrameDecoder
    from nursemaid.protocol._framing import encode_frame as encode_frame

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "nursemaid.protocol._codec": ("JSON", "Codec", "JsonCodec", "RawCodec", "get_codec"),
        "nursemaid.protocol._envelope": (
            "CommandEnvelope",
            "Envelope",
            "ErrorReply",
            "Reply",
            "Request",
            "StandardEnvelope",
        ),
        "nursemaid.protocol._framing": (
            "DEFAULT_MAX_FRAME",
            "PACKET_SIZES",
            "FrameDecoder",
            "encode_frame",
        ),
    },
)
