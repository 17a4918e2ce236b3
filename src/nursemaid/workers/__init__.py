"""nursemaid.workers: see the package's modules; this file only re-exports, lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nursemaid._lazy import attach

if TYPE_CHECKING:
    pass

__getattr__, __dir__, __all__ = attach(__name__, {})
