"""The whole exception hierarchy of nursemaid, in one place.

Rules:
    * Every error we raise derives from :class:`NursemaidError`, split by *whose
      fault it is*: misuse by the caller (:class:`UsageError` and its children),
      a peer breaking the wire protocol (:class:`RemoteProtocolError`), us about to
      break it (:class:`LocalProtocolError`), a worker process failing
      (:class:`WorkerError` and its children), supervision outcomes
      (:class:`SupervisorError` and its children), and our own bugs
      (:class:`InternalError`).
    * Messages start lower-case and carry no trailing period.
    * Every error about a worker process carries ``returncode`` (``None`` while
      unknown) and ``stderr_tail`` (a ``str``, possibly empty) as attributes, and its
      message ends with the last stderr lines.

Theory of operation:
    This module imports only the standard library: the far side of a port
    (:func:`nursemaid.serve`) imports it, and worker start-up time matters.
"""

from __future__ import annotations

from nursemaid import _lazy

# Not `from typing import ...`: this module is on every worker's import path and
# importing typing costs a worker ~4 ms of start-up; mypy treats this name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "CheckoutTimeout",
    "ChildAlreadyExists",
    "ChildNotFound",
    "ChildRunning",
    "InternalError",
    "LifecycleError",
    "LocalProtocolError",
    "NursemaidError",
    "PoolClosed",
    "PortClosed",
    "PortOwnershipError",
    "ProtocolError",
    "RemoteError",
    "RemoteProtocolError",
    "RequestTimeout",
    "RestartIntensityExceeded",
    "StartError",
    "SupervisorError",
    "UsageError",
    "WorkerCrashed",
    "WorkerError",
    "format_stderr_tail",
]


def format_stderr_tail(message: str, stderr_tail: str, returncode: int | None = None) -> str:
    """Append the worker's exit status and last stderr lines to *message*.

    The result is the message every worker error shows: what went wrong first,
    then the evidence, so that a worker dying at start-up is never a black box.
    """
    parts = [message]
    if returncode is not None:
        parts.append(f" (returncode {returncode})")
    tail = stderr_tail.rstrip("\n")
    if tail:
        parts.append("\nlast stderr lines:\n" + tail)
    return "".join(parts)


class NursemaidError(Exception):
    """Base class of every error nursemaid raises on purpose.

    Catch this to handle "anything nursemaid reports"; catch a subclass to handle
    one cause. ``KeyboardInterrupt``, ``SystemExit`` and Trio's ``Cancelled`` are
    never wrapped in it.
    """


class UsageError(NursemaidError, RuntimeError):
    """The caller used an object in a way its contract forbids.

    Raised at once, before anything happens, so the object is still usable
    (unless the message says it was already closed).
    """


class PortOwnershipError(UsageError):
    """A task that does not own a port tried to send, receive or transfer it.

    Only the owner task may use a port; ownership moves with :meth:`Port.connect`,
    which only the current owner may call. The port is unaffected and still usable
    by its owner.

    Attributes:
        owner: the task that owns the port (``None`` if it has no owner).
        caller: the task that tried to use it.
    """

    def __init__(self, message: str, *, owner: object = None, caller: object = None) -> None:
        super().__init__(message)
        self.owner = owner
        self.caller = caller


class LifecycleError(NursemaidError, RuntimeError):
    """A worker was asked to make a transition its lifecycle table does not allow.

    The worker's state is left unchanged. Seeing this outside nursemaid's own code
    means a state was driven by hand; inside it, it is a bug: please report it.

    Attributes:
        state: the state the worker was in.
        event: the event that has no transition from that state.
    """

    def __init__(self, message: str, *, state: object = None, event: object = None) -> None:
        super().__init__(message)
        self.state = state
        self.event = event


class WorkerError(NursemaidError):
    """Base class of errors about one worker process.

    Attributes:
        returncode: the process's exit status, ``None`` while unknown or still
            running (negative: killed by that signal, as in :mod:`subprocess`).
        stderr_tail: the last lines the process wrote to stderr (may be empty).
        pid: the process id, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        returncode: int | None = None,
        stderr_tail: str = "",
        pid: int | None = None,
    ) -> None:
        super().__init__(format_stderr_tail(message, stderr_tail, returncode))
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.pid = pid


class PortClosed(WorkerError):
    """The port was closed, or its process exited, so nothing more can pass.

    The port is not usable afterwards; leave its ``async with`` block (which reaps
    the process) and open a new one.
    """


class WorkerCrashed(PortClosed):
    """A worker process died on its own while a request to it was in flight.

    Its port closed under the caller, so this is a :class:`PortClosed` too: code that
    catches ``PortClosed`` also catches it. ``PortClosed`` alone means the port was
    already closed (by us, or by an earlier crash) before the call began.

    The worker is gone; a pool replaces it. The request that was in flight was not
    answered and may or may not have taken effect.
    """


class ProtocolError(NursemaidError):
    """Bytes on the wire broke the framed protocol: a bad header, an oversized or
    malformed frame, an invalid envelope.

    Read :class:`RemoteProtocolError` (the peer broke it: the port is closed) and
    :class:`LocalProtocolError` (we were about to break it: nothing was written and
    the port stays usable).
    """


class RemoteProtocolError(ProtocolError, WorkerError):
    """The worker sent something the protocol forbids.

    Raised for a header announcing more than ``max_frame``, a frame that does not
    decode, an envelope with missing or wrongly typed fields, or a reply whose id
    no request is waiting for. The port is closed at once, because its byte stream
    can no longer be trusted to be in step.
    """


class LocalProtocolError(ProtocolError, UsageError):
    """We were asked to send something the protocol cannot carry.

    For example a message over ``max_frame``, or a value the codec cannot encode.
    Raised before a byte is written: the port stays usable.
    """


class RemoteError(NursemaidError):
    """The worker's handler raised; the worker answered with an error reply.

    The worker is fine and keeps serving: a pool does not remove it.

    Attributes:
        type: the name of the exception type on the far side.
        message: its message.
        traceback: the far side's formatted traceback (may be empty).
        op: the operation that failed, when known.
    """

    def __init__(
        self, type: str, message: str, traceback: str = "", *, op: str | None = None
    ) -> None:
        where = f" in op {op!r}" if op is not None else ""
        super().__init__(f"worker raised {type}{where}: {message}")
        self.type = type
        self.message = message
        self.traceback = traceback
        self.op = op


class RequestTimeout(NursemaidError, TimeoutError):
    """A request got no reply within its timeout.

    The port stays usable: the late reply, if it ever comes, is discarded and never
    handed to a later request. A pool removes a worker whose lease ended this way.
    """


class CheckoutTimeout(NursemaidError, TimeoutError):
    """No worker became free for this client within its checkout timeout.

    The waiter has left the queue; the pool is unaffected.
    """


class PoolClosed(NursemaidError):
    """The pool is closed (or closing) and takes no more checkouts."""


class SupervisorError(NursemaidError):
    """Base class of supervision outcomes."""


class StartError(SupervisorError, WorkerError):
    """A child (or a pool's worker) failed to start.

    For a supervisor's initial children, the ones already started were stopped
    in reverse order first. When the child is a worker process, ``returncode`` and
    ``stderr_tail`` say why it did not come up.

    Attributes:
        child_id: the id of the child that failed to start (``None`` if not a child).
        reason: the exception that caused the failure, if any (also ``__cause__``).
    """

    def __init__(
        self,
        message: str,
        *,
        child_id: object = None,
        reason: BaseException | None = None,
        returncode: int | None = None,
        stderr_tail: str = "",
        pid: int | None = None,
    ) -> None:
        super().__init__(message, returncode=returncode, stderr_tail=stderr_tail, pid=pid)
        self.child_id = child_id
        self.reason = reason


class RestartIntensityExceeded(SupervisorError):
    """More than ``intensity`` restarts happened within ``period`` seconds.

    Every child was stopped in reverse start order before this was raised; the
    supervisor's ``run`` has ended. A parent supervisor treats it as its child's crash.

    Attributes:
        supervisor: the supervisor's name (or ``None``).
        intensity: the allowed number of restarts.
        period: the window, in seconds.
        restarts: the timestamps (Trio clock) of the restarts in the window.
        child_id: the child whose exit, or failed restart, tipped the balance.
        reason: that child's exception if it crashed (``None`` after a normal
            exit), or, when its restart failed, what the failed start raised
            (also ``__cause__``).
    """

    def __init__(
        self,
        message: str,
        *,
        supervisor: object = None,
        intensity: int = 0,
        period: float = 0.0,
        restarts: tuple[float, ...] = (),
        child_id: object = None,
        reason: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.supervisor = supervisor
        self.intensity = intensity
        self.period = period
        self.restarts = restarts
        self.child_id = child_id
        self.reason = reason


class ChildNotFound(SupervisorError, LookupError):
    """No child with this id is known to the supervisor. Nothing changed.

    Attributes:
        child_id: the id that was looked up.
    """

    def __init__(self, message: str, *, child_id: object = None) -> None:
        super().__init__(message)
        self.child_id = child_id


class ChildAlreadyExists(SupervisorError):
    """A child with this id is already known (running or not). Nothing changed.

    Attributes:
        child_id: the id in conflict.
    """

    def __init__(self, message: str, *, child_id: object = None) -> None:
        super().__init__(message)
        self.child_id = child_id


class ChildRunning(SupervisorError):
    """The operation needs a stopped child, and this one is running. Nothing changed.

    Attributes:
        child_id: the id of the running child.
    """

    def __init__(self, message: str, *, child_id: object = None) -> None:
        super().__init__(message)
        self.child_id = child_id


class InternalError(NursemaidError):
    """Something that should never happen did: please file a bug.

    The object that raised it should be treated as broken.
    """


def _fix_module(namespace: dict[str, Any]) -> None:
    # Show the public path in tracebacks and reprs (Trio's habit).
    for name in __all__:
        obj = namespace[name]
        if isinstance(obj, type):
            _lazy.publish(obj, "nursemaid", namespace)


_fix_module(globals())
