"""The nursemaid pytest plugin: supervisors, pools and event capture per test, leak-checked.

Installed with nursemaid (entry point ``pytest11``), so its fixtures are available in
any project that has nursemaid installed. They are async fixtures for Trio tests
(pytest-trio: ``trio_mode = true``, or ``@pytest.mark.trio``).

Fixtures:
    ``nursemaid_leak_check``: snapshots this process's descriptors, child processes
        and nursemaid tasks, and fails the test at teardown if any were left behind.
    ``nursemaid_events``: an :class:`EventCapture` that records supervisor events
        and pool transitions, so a test asserts on what happened (the typed form
        of capturing logs).
    ``nursemaid_supervisor``: a running supervisor with no children, under a name
        unique to the test, subscribed to ``nursemaid_events``, stopped and
        leak-checked at teardown.
    ``nursemaid_pool``: a running pool of ``nursemaid_pool_worker`` (default: the
        fault worker) with ``nursemaid_pool_options`` (default ``size=2``), under
        a unique name, recorded by ``nursemaid_events``, closed and leak-checked.
        Override those two fixtures (in a conftest or a module) to pool your own
        worker program or factory.
    ``nursemaid_open_pool``: a factory, ``await nursemaid_open_pool(worker, **options)``,
        for tests that need several pools or options per test; each pool is closed
        and leak-checked at teardown.

Rules:
    No global state: every supervisor and pool is made for one test and named after
    it (``<test name>-<n>``), so tests never share or collide, in any order.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
import trio
import trio.testing

from nursemaid.testing._leaks import child_pids, describe_fds, open_fds
from nursemaid.testing._public import show_public_module

__all__ = [
    "EventCapture",
    "LeakCheck",
    "nursemaid_events",
    "nursemaid_leak_check",
    "nursemaid_open_pool",
    "nursemaid_pool",
    "nursemaid_pool_options",
    "nursemaid_pool_worker",
    "nursemaid_supervisor",
]

E = TypeVar("E")


class EventCapture:
    """Everything the attached supervisors and pools reported, in order.

    Attach sources with :meth:`attach_pool` (every worker
    :class:`~nursemaid.workers.Transition` and
    :class:`~nursemaid.workers.SessionMoved`) and :meth:`attach_supervisor` (every
    :data:`~nursemaid.supervisor.SupervisorEvent`); the fixtures attach theirs.
    Then assert on :attr:`events`, filter with :meth:`of_type`, or wait with
    :meth:`wait_for`::

        async def test_crash_is_restarted(nursemaid_supervisor, nursemaid_events):
            await nursemaid_supervisor.start_child(ChildSpec("w", crashy))
            await nursemaid_events.wait_for(ChildRestarting, child_id="w")
    """

    def __init__(self, nursery: trio.Nursery | None = None) -> None:
        self.events: list[Any] = []
        self._nursery = nursery
        self._changed = trio.Event()

    def record(self, event: object) -> None:
        """Append *event* (subscribe this to any source of events)."""
        self.events.append(event)
        self._changed.set()
        self._changed = trio.Event()

    def attach_pool(self, pool: Any) -> Callable[[], None]:
        """Record every transition and session move of *pool*; returns the unsubscribe."""
        unsubscribe: Callable[[], None] = pool.subscribe(self.record)
        return unsubscribe

    def attach_supervisor(self, supervisor: Any) -> None:
        """Record every event of *supervisor* from now on (needs the fixture's nursery)."""
        if self._nursery is None:
            raise RuntimeError(
                "attach_supervisor needs a nursery to read the events in: "
                "use the nursemaid_events fixture, or EventCapture(nursery)"
            )
        channel = supervisor.subscribe()

        async def drain() -> None:
            with channel:
                async for event in channel:
                    self.record(event)

        self._nursery.start_soon(drain, name="event-capture")

    def of_type(self, kind: type[E], /) -> list[E]:
        """The recorded events that are instances of *kind*, in order."""
        return [event for event in self.events if isinstance(event, kind)]

    def matching(self, kind: type[E], /, **fields: object) -> list[E]:
        """The recorded *kind* events whose attributes equal *fields*."""
        return [
            event
            for event in self.of_type(kind)
            if all(getattr(event, key, _MISSING) == value for key, value in fields.items())
        ]

    async def wait_for(self, kind: type[E], /, **fields: object) -> E:
        """Return the first *kind* event with these attributes, waiting until it happens.

        Bound the wait with your own ``trio.fail_after``; under an autojumping
        ``MockClock`` that costs nothing.
        """
        while True:
            found = self.matching(kind, **fields)
            if found:
                return found[0]
            await self._changed.wait()

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.events.clear()


_MISSING = object()


# ---------------------------------------------------------------------------
# Leak checks
# ---------------------------------------------------------------------------


def _nursemaid_tasks() -> set[trio.lowlevel.Task]:
    """Live tasks started by nursemaid (their names begin with ``nursemaid``)."""
    found: set[trio.lowlevel.Task] = set()
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        if task.name.startswith("nursemaid"):
            found.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return found


class LeakCheck:
    """A snapshot of descriptors, children and nursemaid tasks, to compare at the end."""

    def __init__(self) -> None:
        self.fds = open_fds()
        self.children = child_pids()
        self.tasks = _nursemaid_tasks()

    def problems(self) -> list[str]:
        """What was left behind since the snapshot, one line per kind (empty: nothing)."""
        found = []
        fds = open_fds() - self.fds
        if fds:
            found.append(f"descriptors left open: {describe_fds(fds)}")
        children = child_pids() - self.children
        if children:
            found.append(f"child processes left behind: {sorted(children)}")
        tasks = _nursemaid_tasks() - self.tasks
        if tasks:
            found.append(f"tasks left running: {sorted(task.name for task in tasks)}")
        return found


@pytest.fixture
async def nursemaid_leak_check() -> AsyncIterator[LeakCheck]:
    """Fail the test if it leaves descriptors, child processes or nursemaid tasks behind."""
    check = LeakCheck()
    yield check
    # Give tasks cancelled during teardown their last step before looking.
    await trio.testing.wait_all_tasks_blocked()
    problems = check.problems()
    if problems:
        pytest.fail("nursemaid leak check: " + "; ".join(problems), pytrace=False)


# ---------------------------------------------------------------------------
# Events, supervisors, pools
# ---------------------------------------------------------------------------


@pytest.fixture
async def nursemaid_events() -> AsyncIterator[EventCapture]:
    """An :class:`EventCapture` that the supervisor and pool fixtures report to."""
    async with trio.open_nursery() as nursery:
        yield EventCapture(nursery)
        nursery.cancel_scope.cancel()


_counter = itertools.count()


def _unique_name(request: pytest.FixtureRequest, kind: str) -> str:
    # Unique per test and per object, with no registry to clean up afterwards.
    return f"{kind}:{request.node.name}-{next(_counter)}"


@pytest.fixture
async def nursemaid_supervisor(
    request: pytest.FixtureRequest,
    nursemaid_leak_check: LeakCheck,
    nursemaid_events: EventCapture,
) -> AsyncIterator[Any]:
    """A running supervisor, named after the test, stopped and leak-checked at teardown.

    Start children with ``await nursemaid_supervisor.start_child(spec)``; its events
    go to ``nursemaid_events``.
    """
    from nursemaid.supervisor import open_supervisor

    async with open_supervisor(name=_unique_name(request, "supervisor")) as supervisor:
        nursemaid_events.attach_supervisor(supervisor)
        await trio.testing.wait_all_tasks_blocked()  # the capture is listening
        yield supervisor


@pytest.fixture
def nursemaid_pool_worker() -> Any:
    """What ``nursemaid_pool`` pools: an argv or a worker factory (override it).

    Default: the fault worker, ``python -m nursemaid.testing.fault_worker``.
    """
    from nursemaid.testing._pool_machine import FAULT_WORKER

    return list(FAULT_WORKER)


@pytest.fixture
def nursemaid_pool_options() -> dict[str, Any]:
    """Keyword arguments for ``nursemaid_pool``'s ``open_pool`` (override it).

    Default: ``{"size": 2}``.
    """
    return {"size": 2}


@pytest.fixture
async def nursemaid_open_pool(
    request: pytest.FixtureRequest,
    nursemaid_leak_check: LeakCheck,
    nursemaid_events: EventCapture,
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """A factory: ``pool = await nursemaid_open_pool(worker, size=..., **options)``.

    Each pool is named after the test (unless ``name=`` is given), recorded by
    ``nursemaid_events`` from its first transition, and closed, then leak-checked,
    at teardown.
    """
    from nursemaid.workers import open_pool

    close = trio.Event()

    async def hold_pool(
        worker: Any, options: dict[str, Any], *, task_status: trio.TaskStatus[Any]
    ) -> None:
        # Each pool lives in a task of this fixture's nursery, not in the caller's
        # task: its nursery must nest inside the task that opened it.
        async with open_pool(worker, **options) as pool:
            task_status.started(pool)
            await close.wait()

    async with trio.open_nursery() as nursery:

        async def open_one(worker: Any, **options: Any) -> Any:
            options.setdefault("name", _unique_name(request, "pool"))
            options["subscribers"] = [*options.get("subscribers", ()), nursemaid_events.record]
            return await nursery.start(hold_pool, worker, options)

        yield open_one
        close.set()


@pytest.fixture
async def nursemaid_pool(
    nursemaid_open_pool: Callable[..., Awaitable[Any]],
    nursemaid_pool_worker: Any,
    nursemaid_pool_options: dict[str, Any],
) -> Any:
    """A running pool of ``nursemaid_pool_worker`` with ``nursemaid_pool_options``.

    Named after the test, recorded by ``nursemaid_events``, closed and leak-checked
    at teardown.
    """
    return await nursemaid_open_pool(nursemaid_pool_worker, **nursemaid_pool_options)


show_public_module(globals())
