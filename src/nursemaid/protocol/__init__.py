"""nursemaid.protocol: the sans-IO wire protocol of ports — framing, envelopes, codecs.

Nothing here imports trio, and this file only re-exports, lazily (see
:mod:`nursemaid._lazy`): ``import nursemaid.protocol`` costs next to nothing, and the
far side of a port can use the framing without loading attrs or cattrs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nursemaid._lazy import attach

if TYPE_CHECKING:
    from nursemaid.protocol._framing import DEFAULT_MAX_FRAME as DEFAULT_MAX_FRAME
    from nursemaid.protocol._framing import PACKET_SIZES as PACKET_SIZES
    from nursemaid.protocol._framing import FrameDecoder as FrameDecoder
    from nursemaid.protocol._framing import encode_frame as encode_frame

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "nursemaid.protocol._framing": (
            "DEFAULT_MAX_FRAME",
            "PACKET_SIZES",
            "FrameDecoder",
            "encode_frame",
        ),
    },
)
