"""In-process pool workers: the same pool logic, with handlers called in this process.

Use :class:`InProcessWorkers` to pool resources that live in the Trio process
itself (connections, parsers, models) or as a fast, faithful stand-in for
external workers in tests: a worker answers ``ping``, turns a handler's
exception into :class:`~nursemaid.RemoteError` (as :func:`~nursemaid.serve`
does) and can be made to crash on demand.

Example::

    workers = InProcessWorkers({"add": lambda args: args[0] + args[1]})
    async with open_pool(workers, size=2) as pool:
        assert await pool.execute("add", [1, 2]) == 3
"""

from __future__ import annotations

import inspect
import math
import traceback
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from nursemaid import _lazy
from nursemaid._errors import PortClosed, RemoteError, RequestTimeout, UsageError, WorkerCrashed

__all__ = ["InProcessWorker", "InProcessWorkers"]

Handler = Callable[[Any], Any]


def _remote_error(op: str, exc: Exception) -> RemoteError:
    """The error reply an in-process handler's exception stands for."""
    return RemoteError(
        type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)), op=op
    )


class InProcessWorker:
    """One in-process worker: a handler table plus a life that can end.

    Attributes:
        worker_id: the pool's id for it.
        returncode: ``None`` while alive; the status given to :meth:`crash` after.
        abandoned_requests: requests whose handler was interrupted by a timeout
            or a cancellation. It never goes down: an interrupted handler may
            have left the resource half-way, so a lease that ends with this
            non-zero removes the worker (as a port's late reply still to come
            does; see :attr:`Port.abandoned_requests <nursemaid.Port.abandoned_requests>`).
    """

    def __init__(self, worker_id: int, handlers: Mapping[str, Handler], ping_op: str) -> None:
        self.worker_id = worker_id
        self._handlers = handlers
        self._ping_op = ping_op
        self._exited = trio.Event()
        self.returncode: int | None = None
        self._stderr = ""
        self._life_scopes: set[trio.CancelScope] = set()
        self._ending = "crashed"
        self.abandoned_requests = 0

    def __repr__(self) -> str:
        alive = "alive" if self.returncode is None else f"exited {self.returncode}"
        return f"<InProcessWorker {self.worker_id} {alive}>"

    async def request(
        self,
        op: str,
        args: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the Port contract's signature)
    ) -> Any:
        """Call the handler for *op* with *args*; ``ping`` answers ``"pong"``.

        Raises:
            RemoteError: the handler raised, or *op* is unknown (the worker lives on).
            WorkerCrashed: the worker crashed (:meth:`crash`) during this request,
                as a port's request does when its process dies under it.
            PortClosed: the worker had already exited, or was closed during the
                request.
            RequestTimeout: an ``async`` handler took longer than *timeout*, or
                the time ran out before the handler was called (then it is not
                called, and nothing is owed). A plain handler, once called,
                runs to its end and its result is returned.
        """
        if self.returncode is not None:
            raise PortClosed(
                f"in-process worker {self.worker_id} has exited",
                returncode=self.returncode,
                stderr_tail=self._stderr,
            )
        handler = self._handlers.get(op)
        if handler is None:
            if op == self._ping_op:
                await trio.lowlevel.checkpoint()
                return "pong"
            await trio.lowlevel.checkpoint()
            raise RemoteError("UnknownOp", f"no handler for op {op!r}", op=op)
        return await self._run(op, lambda: handler(args), timeout)

    async def _request_then_yield(self, op: str, args: Any) -> tuple[Any, bool]:
        """``request(op, args)`` for the pool's ``execute``: return ``(result, waited)``.

        A plain handler's value is returned without the request's closing
        schedule point (*waited* false): ``execute`` takes it after the checkin,
        as it does for a port (docs/pool.md, "The schedule point comes after the
        checkin"). Unlike a port, an in-process worker has no ``_owes_turn``, so
        ``execute`` takes that schedule point after every such call, not at most
        once per 0.25 ms: property tests run pools of these, and each schedule
        point is an interleaving for them to explore. Anything that awaits goes
        through :meth:`request`'s machinery.
        """
        handler = self._handlers.get(op)
        if handler is None or self.returncode is not None:
            return await self.request(op, args), True
        try:
            result = handler(args)
        except Exception as exc:
            await trio.lowlevel.checkpoint()
            raise _remote_error(op, exc) from None
        if inspect.isawaitable(result):
            return await self._run(op, lambda: result, None, called=True), True
        return result, False

    async def _run(
        self,
        op: str,
        call: Callable[[], Any],
        timeout: float | None,  # noqa: ASYNC109 (request's own, passed on)
        *,
        called: bool = False,
    ) -> Any:
        """Finish *call* (the handler, called or to be called) as the worker's request.

        *called*: the handler has been called already (*call* returns the
        awaitable it gave). Otherwise a handler is not called once the time is up
        or the caller is cancelled, as a port writes nothing then.
        """
        with trio.move_on_after(timeout if timeout is not None else math.inf) as scope:
            if not called:
                await trio.lowlevel.checkpoint_if_cancelled()
            with trio.CancelScope() as life:
                self._life_scopes.add(life)
                try:
                    called = True
                    result = await self._call(call, op)
                except trio.Cancelled:
                    if not life.cancel_called:  # a timeout or the caller's cancellation
                        self.abandoned_requests += 1
                    raise
                except RemoteError:
                    if not life.cancel_called:
                        raise
                    # The handler crashed its worker, then raised: the crash is the news.
                else:
                    if not life.cancel_called:
                        return result
                finally:
                    self._life_scopes.discard(life)
            error = WorkerCrashed if self._ending == "crashed" else PortClosed
            raise error(
                f"in-process worker {self.worker_id} {self._ending} during op {op!r}",
                returncode=self.returncode,
                stderr_tail=self._stderr,
            )
        assert scope.cancelled_caught
        if not called:
            raise RequestTimeout(
                f"in-process worker {self.worker_id}: {op!r} was not run: its timeout of "
                f"{timeout:g} s ran out first; the worker is still usable"
            )
        raise RequestTimeout(f"in-process worker {self.worker_id}: no reply to {op!r} in time")

    async def _call(self, call: Callable[[], Any], op: str) -> Any:
        try:
            result = call()
            if inspect.isawaitable(result):
                return await result
        except Exception as exc:
            # A plain handler that raised has finished, as has one that returned:
            # their schedule point cannot be a cancel point (a Cancelled would say
            # the call did not happen, and count it abandoned).
            await trio.lowlevel.cancel_shielded_checkpoint()
            raise _remote_error(op, exc) from None
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result

    async def wait_exited(self) -> int:
        """Wait until :meth:`crash` is called; return the status it was given."""
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    def stderr_tail(self) -> str:
        """What :meth:`crash` was told to leave as the worker's last words."""
        return self._stderr

    def crash(self, returncode: int = 1, stderr: str = "") -> None:
        """Make the worker die now: requests in flight fail with WorkerCrashed, later
        ones with PortClosed (both carry *returncode* and *stderr*)."""
        if self.returncode is not None:
            return
        self.returncode = returncode
        self._stderr = stderr
        for scope in self._life_scopes:
            scope.cancel()
        self._exited.set()


class InProcessWorkers:
    """A :class:`~nursemaid.workers.WorkerFactory` of in-process workers.

    Args:
        handlers: op name → function called with the request's ``args``; it may be
            async. Its exceptions become :class:`~nursemaid.RemoteError`.
        ping_op: the handshake op (default ``"ping"``; answered ``"pong"`` unless
            *handlers* has its own, which may fail or hang to test start-up).
        on_open: called with each new :class:`InProcessWorker` before its
            handshake (a test's hook to keep hold of the workers).
    """

    def __init__(
        self,
        handlers: Mapping[str, Handler] | None = None,
        *,
        ping_op: str = "ping",
        on_open: Callable[[InProcessWorker], object] | None = None,
    ) -> None:
        if handlers is not None and not isinstance(handlers, Mapping):
            raise UsageError(
                f"handlers must be a mapping of op name to function (got {handlers!r})"
            )
        self.handlers: Mapping[str, Handler] = dict(handlers or {})
        self.ping_op = ping_op
        self._on_open = on_open

    def __repr__(self) -> str:
        return f"InProcessWorkers({sorted(self.handlers)!r}, ping_op={self.ping_op!r})"

    def open_worker(self, worker_id: int) -> AbstractAsyncContextManager[InProcessWorker]:
        """Create one worker; leaving the context marks it gone."""
        return self._open(worker_id)

    @asynccontextmanager
    async def _open(self, worker_id: int) -> AsyncIterator[InProcessWorker]:
        worker = InProcessWorker(worker_id, self.handlers, self.ping_op)
        if self._on_open is not None:
            self._on_open(worker)
        await trio.lowlevel.checkpoint()
        try:
            yield worker
        finally:
            if worker.returncode is None:
                worker._ending = "was closed"
                worker.crash(0)


_lazy.show_public_module(globals(), "nursemaid.workers")
