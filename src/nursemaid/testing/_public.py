"""Show ``nursemaid.testing`` as the module of its public names (Trio's habit).

Each private module of the package calls :func:`show_public_module` at its end with
the names the package exports from it, so reprs, tracebacks and the docs say
``nursemaid.testing.TrioStateMachine``, the path users import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

PUBLIC_MODULE = "nursemaid.testing"


def show_public_module(namespace: Mapping[str, object], names: Iterable[str]) -> None:
    """Set ``__module__`` of each class and function among *names* to the public path."""
    for name in names:
        obj = namespace[name]
        if isinstance(obj, type) or callable(obj):
            with contextlib.suppress(AttributeError, TypeError):
                obj.__module__ = PUBLIC_MODULE
