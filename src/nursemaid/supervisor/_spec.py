"""Child specs and supervisor flags: the data a supervisor is built from.

Rules:
    * Every default is defined once, in :data:`DEFAULTS` (OTP's ``default_flags``
      and ``default_child_spec``); the classes below refer to it.
    * Specs and flags are frozen and validated when built: a bad value is a
      ``TypeError`` or ``ValueError`` that names the child, the field, the
      offending value and what was expected, before anything runs.
    * Rules that involve both a child and its supervisor (a significant child
      needs ``auto_shutdown`` other than NEVER; ids are unique) are checked by
      :func:`check_specs`, which the supervisor calls for its initial children
      and for every ``start_child``.

Theory of operation:
    A child spec is OTP's ``child_spec()`` map with Trio's start protocol in place
    of ``{M, F, A}``: ``start`` is an async callable taking ``task_status``, the
    same thing ``nursery.start`` accepts. ``type`` only feeds ``count_children``;
    it is inferred from ``start`` (a supervisor's bound ``run`` is a SUPERVISOR).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, Final

import attrs

__all__ = [
    "BRUTAL_KILL",
    "DEFAULTS",
    "DEFAULT_SHUTDOWN",
    "INFINITY",
    "AutoShutdown",
    "ChildSpec",
    "ChildType",
    "Defaults",
    "Restart",
    "Shutdown",
    "Strategy",
    "SupervisorFlags",
    "check_specs",
    "member_repr",
    "shutdown_seconds",
]


def member_repr(member: enum.Enum) -> str:
    """The ``__repr__`` of the supervisor's enums: ``Restart.PERMANENT``, valid Python.

    Not Enum's ``<Restart.PERMANENT: 'permanent'>``: hypothesis failures replay as
    printed, and the repr names the class as users import it.
    """
    return f"{type(member).__name__}.{member.name}"


class Restart(enum.Enum):
    """When a child is restarted after it exits (OTP's ``restart`` key)."""

    PERMANENT = "permanent"
    """Always restarted, whatever the exit."""
    TRANSIENT = "transient"
    """Restarted only after a crash (an exception); a normal return is final."""
    TEMPORARY = "temporary"
    """Never restarted; its spec is dropped when it exits."""

    __repr__ = member_repr


class Strategy(enum.Enum):
    """Which siblings are restarted with a child that must be restarted."""

    ONE_FOR_ONE = "one_for_one"
    """Only the child itself."""
    ONE_FOR_ALL = "one_for_all"
    """Every child: the others are stopped (reverse start order), all start again."""
    REST_FOR_ONE = "rest_for_one"
    """The child and the ones started after it."""

    __repr__ = member_repr


class AutoShutdown(enum.Enum):
    """Whether a supervisor stops itself when significant children exit (OTP 24)."""

    NEVER = "never"
    """Significant children are not allowed; exits never stop the supervisor."""
    ANY_SIGNIFICANT = "any_significant"
    """Stop (normally) when any significant child exits by itself."""
    ALL_SIGNIFICANT = "all_significant"
    """Stop (normally) when a significant child exits and none is left running."""

    __repr__ = member_repr


class ChildType(enum.Enum):
    """What a child is, for ``count_children`` (OTP's ``type`` key)."""

    WORKER = "worker"
    SUPERVISOR = "supervisor"

    __repr__ = member_repr


class Shutdown(enum.Enum):
    """The two shutdown values that are not a number of seconds."""

    BRUTAL_KILL = "brutal_kill"
    """No grace at all: the child is cancelled and gets no time to await."""
    INFINITY = "infinity"
    """Unbounded grace: meant for child supervisors, which bound themselves."""

    def __repr__(self) -> str:
        return self.name


BRUTAL_KILL: Final = Shutdown.BRUTAL_KILL
INFINITY: Final = Shutdown.INFINITY


@attrs.frozen
class Defaults:
    """The default of every option, in one place (read :data:`DEFAULTS`)."""

    restart: Restart = Restart.PERMANENT
    shutdown: float = 5.0
    start_timeout: float = 5.0
    significant: bool = False
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: int = 3
    period: float = 5.0
    auto_shutdown: AutoShutdown = AutoShutdown.NEVER


DEFAULTS: Final = Defaults()
"""Every default: restart PERMANENT, shutdown 5.0 s, start_timeout 5.0 s, not
significant; strategy ONE_FOR_ONE, intensity 3 restarts per period 5.0 s,
auto_shutdown NEVER."""

DEFAULT_SHUTDOWN: Final = DEFAULTS.shutdown
"""A child's shutdown grace in seconds unless its spec says otherwise."""


def shutdown_seconds(shutdown: float | Shutdown) -> float:
    """Return *shutdown* in seconds: 0.0 for BRUTAL_KILL, ``math.inf`` for INFINITY."""
    if shutdown is Shutdown.BRUTAL_KILL:
        return 0.0
    if shutdown is Shutdown.INFINITY:
        return math.inf
    return float(shutdown)


# ---------------------------------------------------------------- validation


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _enum_member(enum_type: type[enum.Enum], what: str, value: object) -> None:
    if not isinstance(value, enum_type):
        members = ", ".join(f"{enum_type.__name__}.{m.name}" for m in enum_type)
        raise TypeError(f"{what} must be one of {members} (got {value!r})")


def _spec_where(spec: object) -> str:
    return f"child spec {getattr(spec, 'id', '?')!r}"


def _check_start(spec: ChildSpec, _: object, value: Any) -> None:
    if not callable(value):
        raise TypeError(
            f"{_spec_where(spec)}: start must be an async callable taking task_status "
            f"(got {value!r})"
        )


def _check_restart(spec: ChildSpec, _: object, value: Any) -> None:
    _enum_member(Restart, f"{_spec_where(spec)}: restart", value)


def _check_shutdown(spec: ChildSpec, _: object, value: Any) -> None:
    if isinstance(value, Shutdown):
        return
    if not _is_number(value) or value < 0:
        raise ValueError(
            f"{_spec_where(spec)}: shutdown must be a number of seconds >= 0, "
            f"BRUTAL_KILL or INFINITY (got {value!r})"
        )


def _check_start_timeout(spec: ChildSpec, _: object, value: Any) -> None:
    if not _is_number(value) or value <= 0:
        raise ValueError(
            f"{_spec_where(spec)}: start_timeout must be a number of seconds > 0 "
            f"(math.inf for none) (got {value!r})"
        )


def _check_type(spec: ChildSpec, _: object, value: Any) -> None:
    _enum_member(ChildType, f"{_spec_where(spec)}: type", value)


def _check_significant(spec: ChildSpec, _: object, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{_spec_where(spec)}: significant must be a bool (got {value!r})")
    if value and spec.restart is Restart.PERMANENT:
        raise ValueError(
            f"child {spec.id!r} must have restart=TRANSIENT or TEMPORARY to be "
            f"significant (got PERMANENT)"
        )


def _check_id(spec: ChildSpec, _: object, value: Any) -> None:
    if not isinstance(value, Hashable):
        raise TypeError(f"child spec id must be hashable (got {value!r})")


def _check_name(spec: ChildSpec, _: object, value: Any) -> None:
    if value is not None and not isinstance(value, Hashable):
        raise TypeError(f"{_spec_where(spec)}: name must be hashable or None (got {value!r})")


def _infer_type(spec: ChildSpec) -> ChildType:
    # Supervisor.run carries this marker; a bound method forwards attribute lookups.
    marked = getattr(spec.start, "_nursemaid_child_type", ChildType.WORKER)
    return marked if isinstance(marked, ChildType) else ChildType.WORKER


StartFunction = Callable[..., Awaitable[Any]]
"""An async callable following Trio's start protocol: ``await start(task_status=...)``."""


@attrs.frozen
class ChildSpec:
    """A *child spec*: the recipe a supervisor uses to start, restart and stop one child.

    Example::

        async def worker(*, task_status=trio.TASK_STATUS_IGNORED):
            conn = await connect()
            task_status.started(conn)      # the child's handle
            await serve(conn)              # returning = a normal exit

        spec = ChildSpec("db", worker, restart=Restart.TRANSIENT, shutdown=2.0)

    Args:
        id: the child's identity within its supervisor (any hashable value).
        start: an async callable following Trio's start protocol: called as
            ``await start(task_status=...)``, it calls ``task_status.started(handle)``
            once it is ready (the handle may be ``None``). Returning means a
            normal exit; raising an ``Exception`` means a crash. A supervisor's
            bound ``run`` is itself a valid ``start``.
        restart: PERMANENT (always restarted, the default), TRANSIENT (only after
            a crash) or TEMPORARY (never; the spec is dropped when it exits).
        shutdown: the grace the child gets inside :func:`shutdown_grace` when it
            is stopped: a number of seconds (5.0 by default), BRUTAL_KILL (none)
            or INFINITY (unbounded, meant for child supervisors).
        type: WORKER or SUPERVISOR, only for ``count_children``; by default
            SUPERVISOR when ``start`` is a supervisor's ``run``, else WORKER.
        significant: whether the child's own exit can stop its supervisor (see
            ``auto_shutdown``); only TRANSIENT and TEMPORARY children may be
            significant. False by default.
        start_timeout: seconds the child has to call ``task_status.started``
            (5.0 by default; ``math.inf`` for none). Not calling it in time is a
            start failure, like raising.
        name: a name to register the child's handle under in its supervision
            tree's registry while it runs (``whereis(name)``), or ``None`` (the
            default) for none.

    Raises:
        TypeError, ValueError: for an invalid field; the message names the
            child, the field and the value.
    """

    id: Hashable = attrs.field(validator=_check_id)
    start: StartFunction = attrs.field(validator=_check_start)
    restart: Restart = attrs.field(default=DEFAULTS.restart, validator=_check_restart)
    shutdown: float | Shutdown = attrs.field(default=DEFAULTS.shutdown, validator=_check_shutdown)
    type: ChildType = attrs.field(
        kw_only=True,
        default=attrs.Factory(_infer_type, takes_self=True),
        validator=_check_type,
    )
    significant: bool = attrs.field(
        kw_only=True, default=DEFAULTS.significant, validator=_check_significant
    )
    start_timeout: float = attrs.field(
        kw_only=True, default=DEFAULTS.start_timeout, validator=_check_start_timeout
    )
    name: Hashable | None = attrs.field(kw_only=True, default=None, validator=_check_name)

    @property
    def shutdown_seconds(self) -> float:
        """``shutdown`` in seconds: 0.0 for BRUTAL_KILL, ``math.inf`` for INFINITY."""
        return shutdown_seconds(self.shutdown)


def _check_strategy(_: object, __: object, value: object) -> None:
    _enum_member(Strategy, "strategy", value)


def _check_intensity(_: object, __: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"intensity must be an int >= 0 (got {value!r})")


def _check_period(_: object, __: object, value: object) -> None:
    if not _is_number(value) or value <= 0:  # type: ignore[operator]
        raise ValueError(f"period must be a number of seconds > 0 (got {value!r})")


def _check_auto_shutdown(_: object, __: object, value: object) -> None:
    _enum_member(AutoShutdown, "auto_shutdown", value)


@attrs.frozen
class SupervisorFlags:
    """A supervisor's options (OTP's ``sup_flags()``), validated together.

    Args:
        strategy: ONE_FOR_ONE (the default), ONE_FOR_ALL or REST_FOR_ONE.
        intensity: restarts tolerated within ``period`` (3 by default); one more
            stops the supervisor with ``RestartIntensityExceeded``.
        period: the intensity window in seconds (5.0 by default).
        auto_shutdown: NEVER (the default), ANY_SIGNIFICANT or ALL_SIGNIFICANT.
        name: shown in logs, events and errors (``None`` by default).
    """

    strategy: Strategy = attrs.field(default=DEFAULTS.strategy, validator=_check_strategy)
    intensity: int = attrs.field(default=DEFAULTS.intensity, validator=_check_intensity)
    period: float = attrs.field(default=DEFAULTS.period, validator=_check_period)
    auto_shutdown: AutoShutdown = attrs.field(
        default=DEFAULTS.auto_shutdown, validator=_check_auto_shutdown
    )
    name: Hashable | None = None


def check_specs(
    specs: Iterable[ChildSpec], auto_shutdown: AutoShutdown, existing: Iterable[Hashable] = ()
) -> tuple[ChildSpec, ...]:
    """Check the rules that involve several specs or the supervisor's flags.

    Args:
        specs: the specs, in start order.
        auto_shutdown: the supervisor's ``auto_shutdown``.
        existing: ids the supervisor already has.

    Returns:
        The specs as a tuple.

    Raises:
        TypeError: for something that is not a :class:`ChildSpec`.
        ValueError: for a duplicate id, or a significant child under
            ``auto_shutdown=NEVER``.
    """
    seen = set(existing)
    result = tuple(specs)
    for spec in result:
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"children must be ChildSpec instances (got {spec!r})")
        if spec.id in seen:
            raise ValueError(f"duplicate child id {spec.id!r}: ids must be unique per supervisor")
        seen.add(spec.id)
        if spec.significant and auto_shutdown is AutoShutdown.NEVER:
            raise ValueError(
                f"child {spec.id!r} is significant but the supervisor has "
                f"auto_shutdown=NEVER; pass auto_shutdown=AutoShutdown.ANY_SIGNIFICANT "
                f"or ALL_SIGNIFICANT, or drop significant=True"
            )
    return result
