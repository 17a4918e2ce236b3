"""A registry per supervision tree: names → the handles of running children.

Rules:
    * There is no process-wide state. A root supervisor (one not running inside
      a supervised child) creates a :class:`Registry` for its tree each time it
      runs; every supervisor below it shares that one. Two trees (two tests)
      never see each other's names.
    * A child whose spec has a ``name`` is registered when it calls
      ``task_status.started(handle)`` and unregistered the moment its task ends,
      so :func:`whereis` never returns the handle of a dead child.
    * Registering a name that is taken makes ``started`` raise
      ``ChildAlreadyExists``: the child fails to start.
"""

from __future__ import annotations

import contextvars
from collections.abc import Hashable

from nursemaid._errors import ChildAlreadyExists, UsageError

__all__ = ["Registry", "whereis"]


class Registry:
    """The names registered in one supervision tree.

    Don't modify it directly; supervisors register and unregister their children.
    """

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: dict[Hashable, object] = {}

    def whereis(self, name: Hashable) -> object | None:
        """Return the handle registered under *name*, or ``None``."""
        return self._names.get(name)

    def names(self) -> list[Hashable]:
        """Return the registered names, in registration order."""
        return list(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def _register(self, name: Hashable, handle: object) -> None:
        if name in self._names:
            raise ChildAlreadyExists(
                f"name {name!r} is already registered in this supervision tree "
                f"(to {self._names[name]!r}); give each named child a unique name",
                child_id=name,
            )
        self._names[name] = handle

    def _unregister(self, name: Hashable) -> None:
        self._names.pop(name, None)

    def __repr__(self) -> str:
        return f"<Registry {self.names()!r}>"


_current: contextvars.ContextVar[Registry | None] = contextvars.ContextVar(
    "nursemaid_registry", default=None
)


def current_registry() -> Registry | None:
    """The registry of the tree the calling task runs in, or ``None``."""
    return _current.get()


def whereis(name: Hashable) -> object | None:
    """Return the handle registered under *name* in the caller's supervision tree.

    Call it from inside a supervised child (or any task it spawned). From
    outside a tree, use :meth:`Supervisor.whereis` on the root supervisor.

    Returns:
        The handle the child passed to ``task_status.started``, or ``None`` when
        no running child has that name.

    Raises:
        UsageError: when not running inside a supervision tree.
    """
    registry = _current.get()
    if registry is None:
        raise UsageError(
            f"whereis({name!r}) was called outside a supervision tree; "
            f"call supervisor.whereis(name) on the root supervisor instead"
        )
    return registry.whereis(name)
