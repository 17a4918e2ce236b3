"""The restart strategy as a pure function: who stops, who starts, in which order.

Rules:
    * :func:`plan_restart` takes the children in start order (as
      :class:`Sibling` views), the strategy and the id of the child to restart,
      and returns a :class:`RestartPlan`. No I/O, no clock.
    * The *affected* children: ONE_FOR_ONE, the child alone; ONE_FOR_ALL, every
      child; REST_FOR_ONE, the child and every child after it in start order.
    * ``stop``: the affected children that are running, except the one being
      restarted (it has already exited), in *reverse* start order.
    * ``drop``: the affected TEMPORARY siblings; they are stopped and their
      specs dropped, never restarted.
    * ``start``: every other affected child, in start order, *including* those
      that were not running (stopped with ``terminate_child``, or a transient that
      exited normally): OTP's ``restart_multiple_children`` starts the whole
      affected list again.
    * If a start fails, the children after it in ``start`` stay stopped; the
      supervisor marks the failed one as restarting and tries again later with
      a fresh plan for *that* child (OTP's ``try_again_restart``).

Theory of operation:
    Read alongside OTP's ``restart/3`` clauses for ``one_for_one``,
    ``rest_for_one`` (``split_child``) and ``one_for_all``
    (``restart_multiple_children`` over ``terminate_children`` and
    ``start_children``). The diagrams in the docs are drawn from this function
    (see :mod:`nursemaid.supervisor._diagram`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import attrs

from nursemaid.supervisor._spec import Restart, Strategy

__all__ = ["RestartPlan", "Sibling", "affected", "plan_restart", "shutdown_order"]


@attrs.frozen
class Sibling:
    """What the strategy needs to know about one child."""

    id: Hashable
    restart: Restart
    running: bool


@attrs.frozen
class RestartPlan:
    """The actions of one restart, each a tuple of child ids in execution order."""

    stop: tuple[Hashable, ...]
    """Stop these, in this order (reverse start order)."""
    drop: tuple[Hashable, ...]
    """Then drop these specs (temporary siblings; a subset of what was stopped)."""
    start: tuple[Hashable, ...]
    """Then start these, in this order (start order)."""


def affected(
    strategy: Strategy, order: Sequence[Hashable], child: Hashable
) -> tuple[Hashable, ...]:
    """Return the children a restart of *child* involves, in start order.

    Raises:
        ValueError: if *child* is not in *order*.
    """
    index = list(order).index(child)
    if strategy is Strategy.ONE_FOR_ONE:
        return (child,)
    if strategy is Strategy.REST_FOR_ONE:
        return tuple(order[index:])
    if strategy is Strategy.ONE_FOR_ALL:
        return tuple(order)
    raise ValueError(f"strategy must be a Strategy member (got {strategy!r})")


def plan_restart(strategy: Strategy, siblings: Sequence[Sibling], child: Hashable) -> RestartPlan:
    """Plan the restart of *child* (which has exited) under *strategy*.

    Args:
        strategy: the supervisor's strategy.
        siblings: every child of the supervisor, in start order (*child* included).
        child: the id of the child to restart.

    Returns:
        The plan: which to stop (reverse start order), which of those to drop,
        which to start (start order).
    """
    by_id = {s.id: s for s in siblings}
    involved = affected(strategy, [s.id for s in siblings], child)
    others = [by_id[i] for i in involved if i != child]
    stop = tuple(s.id for s in reversed(others) if s.running)
    drop = tuple(s.id for s in reversed(others) if s.restart is Restart.TEMPORARY)
    start = tuple(i for i in involved if i == child or by_id[i].restart is not Restart.TEMPORARY)
    return RestartPlan(stop=stop, drop=drop, start=start)


def shutdown_order(siblings: Sequence[Sibling]) -> tuple[Hashable, ...]:
    """The running children in the order a stopping supervisor stops them (reverse start)."""
    return tuple(s.id for s in reversed(siblings) if s.running)


def strategy_diagram(format: str) -> str:
    """Render the before/after picture of every strategy as Mermaid or DOT text.

    The same as :func:`nursemaid.supervisor._diagram.strategy_diagrams`; here so
    that ``python -m nursemaid diagram supervisor`` finds it beside the table.
    """
    from nursemaid.supervisor._diagram import strategy_diagrams

    return strategy_diagrams(format)
