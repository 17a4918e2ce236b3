"""Show ``nursemaid.testing`` as the module of its public names (Trio's habit).

Each private module of the package calls ``show_public_module(globals())`` at its
end, so reprs, tracebacks and the docs say ``nursemaid.testing.TrioStateMachine``,
the path users import. Which names are public is read from the package's lazy table
(its ``__all__``), the one list of them: nothing to keep in step here.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping

PUBLIC_MODULE = "nursemaid.testing"


def show_public_module(namespace: Mapping[str, object]) -> None:
    """Give the exported classes and functions a module defines the public ``__module__``.

    Args:
        namespace: the calling module's ``globals()``.
    """
    # The package is fully imported before any of its submodules runs.
    exported: list[str] = sys.modules[PUBLIC_MODULE].__all__
    here = namespace["__name__"]
    for name in exported:
        obj = namespace.get(name)
        if (isinstance(obj, type) or callable(obj)) and getattr(obj, "__module__", None) == here:
            with contextlib.suppress(AttributeError, TypeError):
                obj.__module__ = PUBLIC_MODULE
