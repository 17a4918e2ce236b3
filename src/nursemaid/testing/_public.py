"""Show ``nursemaid.testing`` as the module of its public names (Trio's habit).

Each private module of the package calls ``show_public_module(globals())`` at its
end, so reprs, tracebacks and the docs say ``nursemaid.testing.TrioStateMachine``,
the path users import. Which names are public is read from the package's lazy table
(its ``__all__``), the one list of them: nothing to keep in step here.
"""

from __future__ import annotations

from collections.abc import Mapping

from nursemaid import _lazy

PUBLIC_MODULE = "nursemaid.testing"


def show_public_module(namespace: Mapping[str, object]) -> None:
    """Give the exported classes and functions a module defines the public ``__module__``.

    Args:
        namespace: the calling module's ``globals()``.
    """
    _lazy.show_public_module(namespace, PUBLIC_MODULE)
