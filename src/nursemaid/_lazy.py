"""Lazy re-exports for package ``__init__`` modules (PEP 562).

Why: a worker program runs ``from nursemaid import serve``, and worker start-up
time matters (``import trio`` alone costs ~120 ms, ``attrs`` + ``cattrs`` ~40 ms,
against ~10 ms for a bare interpreter). So importing ``nursemaid``, or
``nursemaid.workers`` or ``nursemaid.protocol``, imports nothing but this module;
each public name is imported from its private module the first time it is used.

Rules:
    * Each package ``__init__`` lists its exports once, as a mapping from private
      module to names, and repeats them under ``if TYPE_CHECKING:`` as explicit
      ``from ... import X as X`` lines for type checkers.
      ``tests/unit/test_exports.py`` checks that the two agree.
    * Only the standard library is imported here.
"""

from __future__ import annotations

import importlib

# Not `from typing import ...`, nor collections.abc at run time: every worker
# imports this module, and they cost ~4 ms and ~1.7 ms of its start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


def attach(
    package: str, exports: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """Return ``(__getattr__, __dir__, __all__)`` for *package*.

    Args:
        package: the package's ``__name__``.
        exports: private module (absolute, or relative to *package* with a
            leading dot) → the public names it provides.
    """
    where: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported twice")
            where[name] = module
    public = sorted(where)

    def __getattr__(name: str) -> object:
        try:
            module = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module, package), name)
        importlib.import_module(package).__dict__[name] = value  # cache: next access is direct
        return value

    def __dir__() -> list[str]:
        return public

    return __getattr__, __dir__, list(public)


def show_public_module(namespace: Mapping[str, object], package: str) -> None:
    """Give the names *package* exports, where the calling module defines them,
    *package* as their ``__module__`` (Trio's habit), so that reprs, tracebacks and
    the docs show the path users import.

    Each private module calls this at its end. Which names are public is read from
    the package's ``__all__`` (its :func:`attach` table), the one list of them.

    Args:
        namespace: the calling module's ``globals()``.
        package: the public package, already imported (as it always is before
            any of its submodules runs).
    """
    import sys

    here = namespace["__name__"]
    for name in sys.modules[package].__all__:
        obj = namespace.get(name)
        if (isinstance(obj, type) or callable(obj)) and getattr(obj, "__module__", None) == here:
            publish(obj, package, namespace)


def publish(obj: object, package: str, namespace: Mapping[str, object] | None = None) -> None:
    """Show *obj* as *package*'s: set its ``__module__``, after evaluating a class's
    own string annotations where it was defined.

    ``typing.get_type_hints`` (so ``attrs.resolve_types``, cattrs and Sphinx)
    evaluates a class's string annotations in ``sys.modules[cls.__module__]``; once
    that is the public package, names the defining module imported (``Hashable``,
    ``WorkerState``...) are not there. A name imported only for type checkers
    stays a string, as it was.

    Args:
        obj: a class or function.
        package: the public module's name.
        namespace: the defining module's ``globals()`` (default: looked up from
            *obj*'s current ``__module__``).
    """
    if isinstance(obj, type):
        if namespace is None:
            import sys

            namespace = vars(sys.modules[obj.__module__])
        own = obj.__dict__.get("__annotations__")  # noqa: RUF063 (inspect costs a worker)
        if own and any(isinstance(value, str) for value in own.values()):
            scope = dict(namespace)
            resolved: dict[str, object] = {}
            for key, value in own.items():
                if isinstance(value, str):
                    try:  # noqa: SIM105 (as below)
                        value = eval(value, scope)  # our own annotations
                    except Exception:  # a name imported for type checkers only: keep it
                        pass
                resolved[key] = value
            try:  # noqa: SIM105 (as below)
                obj.__annotations__ = resolved
            except (AttributeError, TypeError):  # pragma: no cover - a builtin
                pass
    try:  # noqa: SIM105 (not contextlib: every worker imports this module)
        obj.__module__ = package
    except (AttributeError, TypeError):  # pragma: no cover - a builtin
        pass
