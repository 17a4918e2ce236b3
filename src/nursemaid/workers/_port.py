"""Ports: one Trio task's handle on one external worker process, speaking frames.

A *port* is an external program started without a shell, whose stdin and stdout
carry length-prefixed frames (Erlang's ``{packet, N}``), whose stderr is captured,
and which one task — its *owner* — talks to. It is Erlang's port, made explicit::

    async with open_port([sys.executable, "worker.py"]) as port:
        assert await port.request("add", [1, 2]) == 3

Rules:
    * One owner. The task that opens a port owns it. Only the owner may
      ``send``, ``receive``, ``request`` or ``connect``; any other task gets
      :class:`~nursemaid.PortOwnershipError` at once, before anything is written
      or read. Ownership moves only with :meth:`Port.connect`, called by the
      owner (the pool uses the internal ``_transfer``, which skips that check).
    * Named errors, never a silent hang. A worker that goes away under a call
      (exits, closes its stdout, or stops reading its stdin while ``send``,
      ``receive`` or ``request`` is using the port) raises
      :class:`~nursemaid.WorkerCrashed` in that call and closes the port; any
      call on a port already closed (by us, or by an earlier crash) raises plain
      :class:`~nursemaid.PortClosed`. A peer breaking the protocol raises
      :class:`~nursemaid.RemoteProtocolError` and closes the port (its byte stream
      can no longer be trusted); a message we cannot send raises
      :class:`~nursemaid.LocalProtocolError` before a byte is written and the port
      stays usable. Every error about the worker carries ``returncode`` and
      ``stderr_tail`` and its message ends with the last stderr lines.
    * In step or closed. Cancellation (or a timeout) never leaves the stream out
      of step: a reply that has not arrived is *abandoned* — its id is remembered
      and its late reply is discarded when it comes (by ``request`` or
      ``receive``), never handed to anyone — and a frame cut off half-written
      closes the port, because the far side would read the next frame's header
      from the middle of this one.
    * Nothing leaks. Leaving ``open_port``'s block closes stdin and stdout, waits up
      to the grace, sends SIGTERM (after logging a warning), waits up to the grace
      again, sends SIGKILL (warning first), and always reaps the process. That
      work is shielded from cancellation, so it completes even when the enclosing
      scope is cancelled. The grace is the enclosing supervised child's shutdown
      (:func:`nursemaid.supervisor.current_shutdown`), else ``open_port``'s
      ``shutdown`` argument.
    * POSIX only: the port drives the pipes' file descriptors directly (Trio's
      ``FdStream``), which Windows does not have.

Theory of operation:
    The hot path is :meth:`Port.request`, and it runs entirely in the calling
    task: there is no reader task and no channel, so a round trip costs no task
    switch beyond the one wait for the reply. It writes the frame with one
    ``os.write`` on the (non-blocking) stdin pipe, then reads stdout at once, and
    only if nothing is there waits for it to become readable; reads take up to
    64 KiB into the :class:`FrameDecoder` (a read that is exactly one frame skips
    it). Reading first pays off because the kernel usually runs the worker as
    soon as our write wakes it, so on one core the reply is often already there:
    a read that succeeds costs far less than a trip through epoll. Every call
    is a cancel point (``checkpoint_if_cancelled()`` on entry). A call that
    waited has had its schedule point; one that never blocked takes a
    ``cancel_shielded_checkpoint()`` only if no call on the port has given
    Trio's scheduler a turn in the last 0.25 ms (:meth:`Port._owes_turn`).

    Two small background tasks live in ``open_port``'s own nursery and never
    raise: one reads stderr into a bounded tail (and logs each line), one waits
    for the process to exit (which also reaps it). Neither touches the frame
    stream.

    Invariant: while the port is OPEN, every byte on stdin belongs to a whole
    frame or to the one frame being written by the owner, and the decoder holds
    only bytes that arrived on stdout in order. Anything that breaks this moves
    the port to CLOSED first.
"""

from __future__ import annotations

import codecs
import contextlib
import enum
import logging
import os
import signal
import struct
import subprocess
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, Literal, NoReturn, cast

import trio

from nursemaid import _lazy
from nursemaid._errors import (
    LocalProtocolError,
    PortClosed,
    PortOwnershipError,
    RemoteError,
    RemoteProtocolError,
    RequestTimeout,
    StartError,
    WorkerCrashed,
)
from nursemaid._validate import check_seconds, check_timeout
from nursemaid.protocol import _wire as wire
from nursemaid.protocol._codec import Codec, JsonBackend, get_codec, json_functions
from nursemaid.protocol._envelope import (
    Envelope,
    Reply,
    Request,
    StandardEnvelope,
    get_envelope,
)
from nursemaid.protocol._framing import DEFAULT_MAX_FRAME, FrameDecoder, encode_frame
from nursemaid.supervisor import current_shutdown
from nursemaid.supervisor._grace import until_killed
from nursemaid.supervisor._spec import DEFAULT_SHUTDOWN

__all__ = ["STDERR_LOG_LEVEL", "STDERR_TAIL_LINES", "Port", "open_port"]

STDERR_TAIL_LINES: Final = 40
"""How many of the worker's last stderr lines a port keeps (and errors show)."""
STDERR_LINE_CHARS: Final = 2000
"""A longer stderr line is cut to this many characters (a worker that writes
megabytes without a newline must not grow the tail without bound)."""
STDERR_LOG_LEVEL: Final = logging.WARNING
"""The level of the log record for each stderr line: visible with Python's default
logging set-up, because a worker's stderr is where it explains why it failed.
Quieten one port with ``logging.getLogger("nursemaid.port.NAME").setLevel(...)``."""
EXIT_STATUS_WAIT: Final = 1.0
"""After the worker closes its end of a pipe under a call, how long the call waits
for the exit status and the rest of stderr before raising
:class:`~nursemaid.WorkerCrashed`, so that the error can show them. A worker that
exits at once costs only as long as it takes to reap it; one that closed its
pipe but keeps running makes the error wait this long, then carry
``returncode=None``."""
PROTOCOL_ERROR_WAIT: Final = 0.25
"""After the worker breaks the protocol under a call, how long the call waits for
its exit status and the rest of stderr before raising
:class:`~nursemaid.RemoteProtocolError`. The port closes the worker's pipes, which
tells a well-behaved worker to exit at once, and a worker usually explains on
stderr just before it writes garbage. Shorter than ``EXIT_STATUS_WAIT``: a worker
that wrote garbage may well be stuck, and its caller should not wait long for it."""
STDERR_DRAIN: Final = 0.5
"""After the process is reaped, how long closing waits for stderr's end of file
(a grandchild may keep the pipe open; its output after that is not read)."""
_READ_SIZE: Final = 65536
# The yield before a wait (Port._read_after_yield; docs/performance.md, "How a
# request waits"): give up after this many misses in a row, then probe once every
# _YIELD_PROBE chances, doubling after each failed probe up to _YIELD_PROBE_MAX.
# A yield that kept us off the CPU for longer than _YIELD_SLOW_NS handed it to
# some other process for a time slice: that is a miss even if the reply came.
_YIELD_MISSES: Final = 3
_YIELD_PROBE: Final = 64
_YIELD_PROBE_MAX: Final = 65536
_YIELD_SLOW_NS: Final = 50_000
# A call that never had to wait gives Trio's scheduler a turn only if no call on
# this port has in the last _TURN_EVERY_NS: Trio's own docs leave when a
# checkpoint switches tasks to a scheduling policy, and this is a policy of the
# kind python-trio/trio#1757 proposes (Port._owes_turn; docs/ports.md).
_TURN_EVERY_NS: Final = 250_000

_HELD_OPEN: Final = (
    ", with its stdout still open (a process it started holds it) and nothing more on it"
)
_HEADERS: Final = {1: struct.Struct(">B"), 2: struct.Struct(">H"), 4: struct.Struct(">I")}
_ID: Final = wire.ID
_OP: Final = wire.OP
_ARGS: Final = wire.ARGS
_RESULT: Final = wire.RESULT

_current_task = trio.lowlevel.current_task
_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled
_cancel_shielded_checkpoint = trio.lowlevel.cancel_shielded_checkpoint
_wait_readable = trio.lowlevel.wait_readable
_wait_writable = trio.lowlevel.wait_writable
_sched_yield = os.sched_yield
_ns = time.perf_counter_ns


class PortState(enum.Enum):
    """Whether frames can still pass. ``OPEN`` → ``CLOSED`` only, never back."""

    OPEN = "open"
    CLOSED = "closed"


class Port:
    """A handle on one worker process speaking ``{packet, N}`` frames; see :func:`open_port`.

    Don't construct it directly: ``open_port`` starts the process and the tasks
    that look after it, and closes everything when its block ends.

    Attributes:
        name: the port's name (the ``name`` given to ``open_port``, else one taken
            from argv). Its stderr is logged under ``nursemaid.port.<name>``.
        pid: the worker's process id.
        argv: the command line the worker was started with.
        packet: the frame header size in bytes (1, 2 or 4).
        max_frame: the largest payload accepted in either direction.
    """

    __slots__ = (
        "__weakref__",
        "_abandoned",
        "_closed_how",
        "_codec",
        "_decode_reply",
        "_decoder",
        "_dumps",
        "_encode_request",
        "_envelope",
        "_exited",
        "_fast_limit",
        "_loads",
        "_logger",
        "_misses",
        "_next_id",
        "_own_group",
        "_owner",
        "_pack_header",
        "_probe_every",
        "_process",
        "_reason",
        "_skipped",
        "_state",
        "_stderr",
        "_stderr_done",
        "_stderr_scope",
        "_stdin",
        "_stdin_fd",
        "_stdout",
        "_stdout_fd",
        "_turn_ns",
        "argv",
        "max_frame",
        "name",
        "packet",
        "pid",
    )

    def __init__(
        self,
        process: trio.Process,
        *,
        argv: tuple[str, ...],
        name: str,
        codec: Codec,
        envelope: Envelope,
        packet: int,
        max_frame: int,
        owner: trio.lowlevel.Task,
        own_group: bool = False,
    ) -> None:
        self._process = process
        # Whether the worker leads a process group of its own: then signals go to
        # the group, and what is left of it once the worker exits is killed.
        self._own_group = own_group
        # On Unix, open_process gives FdStreams; we use their descriptors directly.
        self._stdin = cast(trio.lowlevel.FdStream, process.stdin)
        self._stdout = cast(trio.lowlevel.FdStream, process.stdout)
        self._stdin_fd: int = self._stdin.fileno()
        self._stdout_fd: int = self._stdout.fileno()
        self.argv = argv
        self.name = name
        self.pid: int = process.pid
        self.packet = packet
        self.max_frame = max_frame
        self._codec = codec
        self._envelope = envelope
        self._encode_request = envelope.encode_request
        self._decode_reply = envelope.decode_reply
        # Hot path: with the standard envelope, build the request's JSON directly
        # instead of through a Request object (read alongside
        # StandardEnvelope.encode_request; tests/unit/test_port.py holds the two
        # byte-for-byte equal), and frame it with one struct.pack when it is within
        # max_frame and the header's range (else encode_frame raises the error).
        self._dumps: Callable[[Any], bytes] | None = None
        self._loads: Callable[[bytes], Any] | None = None
        if type(envelope) is StandardEnvelope:
            _, self._dumps, self._loads = json_functions(cast(JsonBackend, envelope.backend))
        self._pack_header = _HEADERS[packet].pack
        self._fast_limit = min(max_frame, (1 << (8 * packet)) - 1)
        self._decoder = FrameDecoder(packet=packet, max_frame=max_frame)
        self._owner: trio.lowlevel.Task | None = owner
        self._state = PortState.OPEN
        self._reason = ""
        # What closed the port when a call of the owner's closed it (so a timeout
        # that cut that call short can name it; `_reason` says the rest): the
        # worker lost, or a frame cut off half-written.
        self._closed_how: Literal["lost", "cut", "protocol"] | None = None
        self._next_id = 1
        self._misses = 0  # yields in a row that did not bring the reply
        self._skipped = 0  # chances to yield passed up since the last try
        self._probe_every = _YIELD_PROBE  # chances between tries, once given up
        # When a call on this port last went through a schedule point (a wait, or
        # the checkpoint _owes_turn asked for); perf_counter_ns.
        self._turn_ns = -_TURN_EVERY_NS  # the first call that never waits owes one
        # Invariant: ids of requests whose frame was fully written but whose
        # caller stopped waiting (cancelled or timed out). Each is removed when
        # its late reply arrives and is discarded.
        self._abandoned: set[int] = set()
        self._exited = trio.Event()
        self._stderr_done = trio.Event()
        self._stderr_scope = trio.CancelScope(shield=True)
        self._stderr = StderrTail()
        self._logger = logging.getLogger(f"nursemaid.port.{name}")

    def __repr__(self) -> str:
        owner = self._owner.name if self._owner is not None else None
        return f"<Port {self.name!r} pid={self.pid} owner={owner!r} {self._state.value}>"

    # ---- public, synchronous -----------------------------------------------------

    @property
    def owner(self) -> trio.lowlevel.Task | None:
        """The task that may use this port (``None`` only if it was given away to none)."""
        return self._owner

    @property
    def returncode(self) -> int | None:
        """The worker's exit status, ``None`` while it runs (negative: killed by that signal)."""
        return self._status()

    def _status(self) -> int | None:
        """The exit status, read without reaping the worker.

        In a group of its own, only :meth:`_watch_exit` reaps it, after killing
        what is left of the group: until then the zombie keeps its pid, and so the
        group's id, ours. (Trio's ``Process.returncode`` polls, which reaps.)
        """
        if not self._own_group or self._exited.is_set():
            return self._process.returncode
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self._process.returncode
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    @property
    def state(self) -> PortState:
        """``OPEN`` while frames can pass, ``CLOSED`` after (see :attr:`close_reason`)."""
        return self._state

    @property
    def close_reason(self) -> str:
        """Why the port is closed (empty while it is open)."""
        return self._reason

    @property
    def abandoned_requests(self) -> int:
        """How many requests were abandoned (cancelled or timed out) and not yet answered.

        Their late replies are discarded when they arrive; until then the worker is
        still busy with work nobody waits for. A pool reads this at checkin and
        removes such a worker rather than lend it to the next client.
        """
        return len(self._abandoned)

    @property
    def codec(self) -> Codec:
        """The codec :meth:`send` and :meth:`receive` use."""
        return self._codec

    def stderr_tail(self) -> str:
        """Return the last lines the worker wrote to stderr (at most ``STDERR_TAIL_LINES``).

        Complete lines end with a newline; a last line still being written has none.
        """
        return self._stderr.text()

    def connect(self, task: trio.lowlevel.Task) -> None:
        """Give this port to *task*: from now on only *task* may use it.

        This is the one way ownership moves, and only the current owner may do
        it, so it is always visible in the code that does it. Example::

            async def client(port, handed_over, task_status=trio.TASK_STATUS_IGNORED):
                task_status.started(trio.lowlevel.current_task())
                await handed_over.wait()  # not the owner before connect()
                ...  # uses the port

            handed_over = trio.Event()
            task = await nursery.start(client, port, handed_over)
            port.connect(task)   # the opener hands the port over
            handed_over.set()

        Args:
            task: the new owner (a :class:`trio.lowlevel.Task`).

        Raises:
            PortOwnershipError: the calling task is not the owner. Nothing changed.
            TypeError: *task* is not a Trio task.
        """
        caller = _current_task()
        if caller is not self._owner:
            raise self._ownership_error("connect", caller)
        if not isinstance(task, trio.lowlevel.Task):
            raise TypeError(
                f"port.connect() needs a trio.lowlevel.Task (got {task!r}); "
                f"get one with trio.lowlevel.current_task() in the new owner"
            )
        self._owner = task
        self._logger.debug(
            "pid %d: ownership moved from task %r to task %r", self.pid, caller.name, task.name
        )

    def _transfer(self, task: trio.lowlevel.Task | None) -> None:
        # For the pool only: move ownership without checking the caller, so that a
        # checkout hands an idle port to the client task (and checkin takes it
        # back) without an extra task switch. Read alongside workers/_pool.py.
        self._owner = task

    # ---- public, async -------------------------------------------------------------

    # The contract's timeout is not just a cancel scope: it raises RequestTimeout.
    async def request(
        self,
        op: str,
        args: Any = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        """Send request *op* with *args* and return the result of its reply.

        The request goes out in the port's envelope (``{"id", "op", "args"}`` by
        default) with a fresh id, and the reply with the same id is the answer.

        Args:
            op: the operation's name, as the worker's handler table knows it.
            args: a JSON-compatible value (``None`` when absent).
            timeout: seconds to wait for the reply, a number ``>= 0`` (``None``,
                the default: no limit beyond the caller's own cancel scopes).

        Returns:
            The reply's ``result``.

        Raises:
            RemoteError: the worker answered with an error reply (its handler
                raised, or it does not know *op*). The port is fine.
            RequestTimeout: no reply within *timeout*. The port is fine; the late
                reply will be discarded when it comes (if the time ran out before
                the request was written, nothing was sent, and the error says so;
                if it ran out with the frame half-written, the port is closed, and
                the error says that).
            LocalProtocolError: *args* cannot be encoded, or the request is over
                ``max_frame``. Nothing was written; the port is fine.
            WorkerCrashed: the worker exited (or closed its stdout, or stopped
                reading its stdin) before answering. The port is now closed. (Also
                when *timeout* ran out while the port waited for the exit status:
                then ``returncode`` may be ``None``.)
            PortClosed: the port was already closed when the call began.
            RemoteProtocolError: the worker sent something that is not a valid
                reply, or a reply to an id nobody asked for. The port is closed.
            PortOwnershipError: the calling task is not the port's owner.
            ValueError: *timeout* is negative, ``NaN`` or not a number. Nothing
                was written.

        Cancelling the caller while it waits for the reply abandons the request
        (as a timeout does) and leaves the port usable. Cancelling it in the
        middle of writing a frame too large for the pipe closes the port.
        """
        if timeout is not None:
            check_timeout(timeout)  # ValueError before anything is written
        request_id, frame = self._prepare(op, args)
        if timeout is None:
            ok, value, waited = await self._round_trip(request_id, op, frame)
            if self._owes_turn(waited):
                await _cancel_shielded_checkpoint()
        else:
            with trio.move_on_after(timeout):
                ok, value, waited = await self._round_trip(request_id, op, frame)
                if self._owes_turn(waited):
                    await _cancel_shielded_checkpoint()
                if ok:
                    return value
                raise RemoteError(value.type, value.message, value.traceback, op=op)
            if self._state is not PortState.OPEN:
                raise self._closed_under_timeout(op, request_id, timeout)
            if request_id not in self._abandoned:  # the time ran out before the write
                raise RequestTimeout(
                    f"request {op!r} (id {request_id}) to port {self.name!r} (pid {self.pid}) "
                    f"was not sent: its timeout of {timeout:g} s ran out first; the port is "
                    f"still usable"
                )
            raise RequestTimeout(
                f"request {op!r} (id {request_id}) to port {self.name!r} (pid {self.pid}) got "
                f"no reply within {timeout:g} s; the port is still usable and the late "
                f"reply will be discarded"
            )
        if ok:
            return value
        raise RemoteError(value.type, value.message, value.traceback, op=op)

    async def _request_then_yield(self, op: str, args: Any) -> tuple[Any, bool]:
        """``request(op, args)`` for the pool's ``execute``, which checks the worker in
        before the call's schedule point: return ``(result, waited)``.

        When *waited* is false the call has not been a schedule point, and
        ``execute`` decides after the checkin whether it takes one (the pool's
        rule, then :meth:`_owes_turn`; docs/pool.md, "The schedule point comes
        after the checkin"). An error reply that did not wait takes its schedule
        point before it is raised, whatever the interval: a client that loops on
        errors then never holds a worker others queue for.
        """
        request_id, frame = self._prepare(op, args)
        ok, value, waited = await self._round_trip(request_id, op, frame)
        if ok:
            return value, waited
        if not waited:
            self._turn_ns = _ns()
            await _cancel_shielded_checkpoint()
        raise RemoteError(value.type, value.message, value.traceback, op=op)

    def _owe_turn(self) -> None:
        """Make the next call that does not wait give Trio's scheduler a turn.

        The pool calls this when it leases the port to a client that might hold
        up another one (docs/pool.md, "The schedule point comes after the
        checkin").
        """
        self._turn_ns = -_TURN_EVERY_NS

    def _owes_turn(self, waited: bool) -> bool:
        """After a call: whether it must still give Trio's scheduler a turn.

        A call that waited (for the pipe) has had its schedule point. One that
        did not takes a ``cancel_shielded_checkpoint()`` only if no call on this
        port has gone through a schedule point in the last ``_TURN_EVERY_NS``;
        else it returns without one. Its ``checkpoint_if_cancelled()`` on entry
        still made it a cancel point.

        Why this is sound: trio's docs say a checkpoint is where "the scheduler
        checks its scheduling policy to see if it's a good time to switch to
        another task" and reserve the right to switch less often than at every
        one; python-trio/trio#1757 proposes a policy of this kind for Trio. A
        schedule point costs a pass of Trio's run loop (an ``epoll_wait`` and a
        task switch), about a fifth of a round trip on one core; here it is paid
        once per 0.25 ms instead of once per call.

        Why the bound holds: ``_turn_ns`` is taken only as a call on this port
        gives up the CPU, or as a call that came back from a wait returns; and
        only one task of this port's thread runs at a time. So the task running
        now began its step after the record, or at most one call before it.
        Schedule points that do not go through this port only make the record
        older, which brings the next turn sooner. A task whose calls never wait
        therefore holds the run loop at most ``_TURN_EVERY_NS`` plus a call or
        two, and a deadline or a cancel reaches it at most that late.
        """
        now = _ns()
        if waited:
            self._turn_ns = now
            return False
        if now - self._turn_ns < _TURN_EVERY_NS:
            return False
        self._turn_ns = now
        return True

    def _prepare(self, op: str, args: Any) -> tuple[int, bytes]:
        """Check the caller and the port, take the next id; return it and the framed request."""
        caller = _current_task()
        if caller is not self._owner:
            raise self._ownership_error("request", caller)
        if self._state is not PortState.OPEN:
            raise self._closed_error()
        request_id = self._next_id
        self._next_id = request_id + 1
        dumps = self._dumps
        if dumps is not None and type(op) is str:  # the standard envelope, inline
            payload = dumps({_ID: request_id, _OP: op, _ARGS: args})  # LocalProtocolError
        else:
            payload = self._encode(request_id, op, args)
        size = len(payload)
        if size <= self._fast_limit:
            return request_id, self._pack_header(size) + payload
        return request_id, encode_frame(payload, packet=self.packet, max_frame=self.max_frame)

    def _encode(self, request_id: int, op: str, args: Any) -> bytes:
        dumps = self._dumps
        if dumps is not None:
            if type(op) is not str:
                raise TypeError(f"request op must be a str (got {op!r})")
            return dumps({_ID: request_id, _OP: op, _ARGS: args})  # LocalProtocolError
        try:
            return self._encode_request(Request(request_id, op, args))
        except LocalProtocolError:
            raise
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(
                f"cannot encode request {op!r}: {exc}; args must be JSON-compatible"
            ) from exc

    async def send(self, message: Any) -> None:
        """Encode *message* with the port's codec and write it as one frame.

        Args:
            message: a JSON-compatible value (``codec="json"``) or ``bytes``
                (``codec="raw"``, sent unchanged).

        Raises:
            LocalProtocolError: the codec cannot encode *message*, or it is over
                ``max_frame``. Nothing was written; the port is fine.
            WorkerCrashed: the worker stopped reading its stdin (it exited, most
                likely). The port is now closed.
            PortClosed: the port was already closed when the call began.
            PortOwnershipError: the calling task is not the port's owner.
        """
        caller = _current_task()
        if caller is not self._owner:
            raise self._ownership_error("send", caller)
        if self._state is not PortState.OPEN:
            raise self._closed_error()
        try:
            payload = self._codec.encode(message)
        except LocalProtocolError:
            raise
        except (TypeError, ValueError) as exc:
            raise LocalProtocolError(
                f"cannot encode {type(message).__name__} with codec {self._codec.name!r}: {exc}"
            ) from exc
        frame = encode_frame(payload, packet=self.packet, max_frame=self.max_frame)
        await _checkpoint_if_cancelled()
        if self._owes_turn(await self._write(frame)):
            await _cancel_shielded_checkpoint()

    async def receive(self) -> Any:
        """Wait for the next frame and return it decoded with the port's codec.

        This is the message level, under requests: the next frame, whatever it
        is, with one exception. While requests are abandoned (cancelled or timed
        out, see :attr:`abandoned_requests`), a frame that the port's envelope
        reads as a reply to one of their ids is that request's late reply: it is
        discarded, as ``request`` discards it, and ``receive`` waits for the next
        frame. So ``receive`` never returns the answer to an abandoned request,
        and mixing it with ``request`` on one port is safe. (A worker must not
        reuse an id it was asked with for anything but that id's one reply; the
        wire protocol already says so.)

        Raises:
            WorkerCrashed: the worker closed its stdout (it exited, most likely),
                in the middle of a frame or between frames. The port is now closed.
            PortClosed: the port was already closed when the call began.
            RemoteProtocolError: the frame header announces more than ``max_frame``
                or the payload does not decode. The port is closed.
            PortOwnershipError: the calling task is not the port's owner.
        """
        caller = _current_task()
        if caller is not self._owner:
            raise self._ownership_error("receive", caller)
        if self._state is not PortState.OPEN:
            raise self._closed_error()
        await _checkpoint_if_cancelled()
        waited = False
        decoder = self._decoder
        while True:
            try:
                payload = decoder.next_frame()
            except RemoteProtocolError as exc:
                await self._fail_protocol(exc)
            if payload is not None:
                if self._abandoned and self._is_late_reply(payload):
                    continue
                break
            if await self._fill("while receive() waited for a message"):
                waited = True
        if self._owes_turn(waited):
            await _cancel_shielded_checkpoint()
        try:
            return self._codec.decode(payload)
        except RemoteProtocolError as exc:
            await self._fail_protocol(exc)
        except (TypeError, ValueError) as exc:
            await self._fail_protocol(
                RemoteProtocolError(
                    f"cannot decode a {len(payload)}-byte frame with codec "
                    f"{self._codec.name!r}: {exc}"
                )
            )

    def _is_late_reply(self, payload: bytes) -> bool:
        """Whether *payload* is the late reply to an abandoned request; if so, forget its id.

        Anything the envelope does not read as a reply is a message, not a late reply.
        """
        try:
            reply_id = self._decode_reply(payload).id
        except RemoteProtocolError:
            return False
        if reply_id not in self._abandoned:
            return False
        self._abandoned.discard(reply_id)
        self._logger.debug(
            "pid %d: receive() discarded the late reply to abandoned request id %d",
            self.pid,
            reply_id,
        )
        return True

    async def wait_exited(self) -> int:
        """Wait until the worker process has exited (and been reaped); return its status.

        Any task may call this, owner or not: it neither sends nor receives.
        A pool uses it to notice an idle worker dying.
        """
        await self._exited.wait()
        returncode = self._process.returncode
        assert returncode is not None
        return returncode

    # ---- the frame stream (owner's task only) -------------------------------------

    # The request hot path: request() -> _round_trip(), with the write, the wait
    # and the read inline (no helper coroutine per step), and with
    # the standard envelope a reply {"id": n, "result": ...} read straight from the
    # decoded JSON (read alongside StandardEnvelope.decode_reply's own fast path;
    # anything else goes through decode_reply itself).

    async def _round_trip(self, request_id: int, op: str, frame: bytes) -> tuple[bool, Any, bool]:
        """Write *frame*, then return ``(True, result, waited)`` or ``(False,
        ErrorReply, waited)`` for *request_id*'s reply.

        *waited*: whether the call went through a schedule point (a wait for the
        pipe). When it did not, the caller decides whether it owes one
        (:meth:`_owes_turn`) and takes it after this returns, outside the
        ``try`` that abandons the id on the way out: the reply has been read by
        then.
        """
        await _checkpoint_if_cancelled()
        try:
            written = os.write(self._stdin_fd, frame)
        except BlockingIOError:
            written = 0
        except OSError as exc:  # BrokenPipeError: the worker exited or closed stdin
            await self._lost(f"the worker stopped reading its stdin ({exc.strerror})")
        if written != len(frame):
            await self._write_rest(frame, written)
        # The whole frame is out: from here on, giving up means abandoning the id.
        # Then read the reply, inline (one coroutine layer less on the hot path).
        try:
            decoder = self._decoder
            fd = self._stdout_fd
            loads = self._loads
            packet = self.packet
            max_frame = self.max_frame
            waited = False
            while True:
                # Invariant: the port is OPEN here, so the decoder is not poisoned and
                # an empty one has nothing to give: ask it only when it holds bytes.
                payload = None
                held = decoder.buffered
                if held:
                    try:
                        payload = decoder.next_frame()
                    except RemoteProtocolError as exc:
                        await self._fail_protocol(exc)
                if payload is None:
                    # Read first, wait only if nothing is there: on one core the worker
                    # usually runs (and answers) as soon as our write wakes it, and a
                    # read that succeeds is far cheaper than a trip through epoll.
                    # Else yield the CPU once and read again (_read_after_yield).
                    data: bytes | None
                    try:
                        data = os.read(fd, _READ_SIZE)
                    except BlockingIOError:
                        data = None if waited else self._read_after_yield(fd)
                    if data is None:
                        if self._exited.is_set():  # and no end of file: see _watch_exit
                            await self._lost(
                                f"the worker exited while request {op!r} (id {request_id}) "
                                f"waited for its reply{_HELD_OPEN}"
                            )
                        try:
                            await _wait_readable(fd)
                        except trio.ClosedResourceError:
                            if self._state is not PortState.OPEN:  # closed by another task
                                raise self._closed_error() from None
                            # Else _watch_exit woke us: read what the worker left.
                        waited = True
                        continue
                    if not data:
                        await self._end_of_file(
                            f"while request {op!r} (id {request_id}) waited for its reply"
                        )
                    # Most reads are exactly one whole frame: then the decoder, being
                    # empty, would only copy it in and out again.
                    size = len(data) - packet
                    if (
                        size < 0
                        or size > max_frame
                        or held
                        or int.from_bytes(data[:packet], "big") != size
                    ):
                        decoder.receive_data(data)
                        continue
                    payload = data[packet:]
                reply: Any = None  # stays None when the fast path read the reply's id
                reply_id: Any = None
                if loads is not None:
                    try:
                        obj = loads(payload)
                    except RemoteProtocolError as exc:
                        await self._fail_protocol(exc)
                    if type(obj) is dict and len(obj) == 2 and _RESULT in obj:
                        reply_id = obj.get(_ID)
                        if type(reply_id) is int and reply_id == request_id:
                            return True, obj[_RESULT], waited
                if type(reply_id) is not int:  # not the plain shape: the envelope decides
                    try:
                        reply = self._decode_reply(payload)
                    except RemoteProtocolError as exc:
                        await self._fail_protocol(exc)
                    reply_id = reply.id
                    if reply_id == request_id:
                        if type(reply) is Reply:
                            return True, reply.result, waited
                        return False, reply, waited
                if reply_id in self._abandoned:
                    self._abandoned.discard(reply_id)
                    self._logger.debug(
                        "pid %d: discarded the late reply to abandoned request id %d",
                        self.pid,
                        reply_id,
                    )
                    continue
                if reply_id is None:
                    await self._fail_protocol(
                        RemoteProtocolError(
                            f"the worker could not read a request and answered "
                            f"{getattr(reply, 'type', '?')}: {getattr(reply, 'message', '')}"
                        )
                    )
                await self._fail_protocol(
                    RemoteProtocolError(
                        f"got a reply with id {reply_id!r} while waiting for id {request_id} "
                        f"(request {op!r}); no request with that id is waiting or abandoned"
                    )
                )
        except BaseException:
            if self._state is PortState.OPEN:
                self._abandoned.add(request_id)
            raise

    def _read_after_yield(self, fd: int) -> bytes | None:
        """Before a wait for stdout: give up the CPU once, then read; ``None`` if still nothing.

        Our write has just woken the worker. When it shares our CPU (a busy
        machine, or everything pinned to one core) it usually sits runnable
        behind us, and after one ``sched_yield`` its answer is there: reading it
        then is far cheaper than a trip through Trio's epoll wait. When it runs
        on another CPU the yield brings nothing (a miss), and when another
        process takes the CPU we gave up, the yield costs that process's whole
        time slice, and every task of ours waits with it: that is a miss too,
        whatever the read finds. After ``_YIELD_MISSES`` misses in a row the port
        stops yielding, and tries again once every ``_probe_every`` chances
        (doubling after each failed try) in case that changed.
        Read alongside docs/performance.md ("How a request waits").
        """
        if self._misses >= _YIELD_MISSES:
            self._skipped += 1
            if self._skipped < self._probe_every:
                return None
            self._skipped = 0
        start = _ns()
        _sched_yield()
        slow = _ns() - start > _YIELD_SLOW_NS
        data: bytes | None
        try:
            data = os.read(fd, _READ_SIZE)
        except OSError:  # EAGAIN; any other error, the read after the wait reports
            data = None
        if data is not None and not slow:
            self._misses = 0
            self._probe_every = _YIELD_PROBE
            return data
        if self._misses >= _YIELD_MISSES:  # a failed try: wait longer for the next
            self._probe_every = min(2 * self._probe_every, _YIELD_PROBE_MAX)
        self._misses = _YIELD_MISSES if slow else self._misses + 1
        return data

    async def _fill(self, what: str) -> bool:
        """Feed the decoder one read of stdout, waiting if need be; return whether it waited."""
        fd = self._stdout_fd
        waited = False
        while True:
            data: bytes | None
            try:
                data = os.read(fd, _READ_SIZE)
            except BlockingIOError:
                data = None if waited else self._read_after_yield(fd)
            except OSError as exc:  # pragma: no cover - a pipe gives EOF, not errors
                await self._lost(f"reading its stdout failed ({exc}) {what}")
            if data is not None:
                break
            if self._exited.is_set():  # and no end of file: see _watch_exit
                await self._lost(f"the worker exited {what}{_HELD_OPEN}")
            try:
                await _wait_readable(fd)
            except trio.ClosedResourceError:
                if self._state is not PortState.OPEN:
                    # Another task (the one leaving open_port's block) closed the port.
                    raise self._closed_error() from None
                # Else _watch_exit woke us: read what the worker left.
            waited = True
        if not data:
            await self._end_of_file(what)
        self._decoder.receive_data(data)
        return waited

    async def _end_of_file(self, what: str) -> NoReturn:
        self._decoder.receive_data(b"")
        partial = self._decoder.buffered
        if partial:
            await self._lost(
                f"the worker closed its stdout in the middle of a frame "
                f"({partial} bytes of it received) {what}"
            )
        await self._lost(f"the worker closed its stdout {what}")

    async def _write(self, frame: bytes) -> bool:
        """Write *frame* whole; return whether it had to wait (i.e. it yielded)."""
        try:
            written = os.write(self._stdin_fd, frame)
        except BlockingIOError:
            written = 0
        except OSError as exc:  # BrokenPipeError: the worker exited or closed stdin
            await self._lost(f"the worker stopped reading its stdin ({exc.strerror})")
        if written == len(frame):
            return False
        return await self._write_rest(frame, written)

    async def _write_rest(self, frame: bytes, written: int) -> bool:
        fd = self._stdin_fd
        size = len(frame)
        view = memoryview(frame)
        try:
            while written < size:
                try:
                    await _wait_writable(fd)
                except trio.ClosedResourceError:
                    raise self._closed_error() from None
                try:
                    written += os.write(fd, view[written:])
                except BlockingIOError:
                    continue
                except OSError as exc:
                    await self._lost(f"the worker stopped reading its stdin ({exc.strerror})")
        except BaseException:
            # Only if we cut it: a worker lost under the write (_lost) closed the
            # port already, and is "lost", its own fault, not the caller's.
            if 0 < written < size and self._state is PortState.OPEN:
                self._closed_how = "cut"
                self._break(
                    f"a write was interrupted after {written} of the {size} bytes of a frame, "
                    f"so the stream is out of step"
                )
            raise
        finally:
            view.release()
        return True

    # ---- errors and closing ----------------------------------------------------

    def _label(self) -> str:
        return f"port {self.name!r} (pid {self.pid})"

    def _ownership_error(self, what: str, caller: trio.lowlevel.Task) -> PortOwnershipError:
        owner = self._owner
        owner_name = repr(owner.name) if owner is not None else "no task"
        return PortOwnershipError(
            f"task {caller.name!r} called {what}() on {self._label()}, which is owned by "
            f"{owner_name}; only the owner may use a port: have the owner call "
            f"port.connect(task) to hand it over",
            owner=owner,
            caller=caller,
        )

    def _closed_error(self) -> PortClosed:
        return PortClosed(
            f"{self._label()} is closed: {self._reason}",
            returncode=self._status(),
            stderr_tail=self.stderr_tail(),
            pid=self.pid,
        )

    def _break(self, reason: str) -> None:
        """Move to CLOSED and close our pipe ends; the worker sees end of file."""
        if self._state is PortState.CLOSED:
            return
        self._state = PortState.CLOSED
        self._reason = reason
        self._abandoned.clear()
        self._stdin.close()
        self._stdout.close()

    async def _fail_protocol(self, exc: RemoteProtocolError) -> NoReturn:
        """The worker broke the protocol under this call: close, wait for its
        evidence, raise.

        As :meth:`_lost` does, waits (up to ``PROTOCOL_ERROR_WAIT``) for the exit
        status and the end of stderr (closing the pipes tells a ``serve`` worker to exit):
        a worker usually explains on stderr just before it writes garbage, and
        without the wait that line was in the error only now and then.
        """
        self._break(f"the worker broke the protocol: {exc.args[0] if exc.args else exc}")
        self._closed_how = "protocol"  # the worker's fault: a pool counts it as a failure
        with trio.move_on_after(PROTOCOL_ERROR_WAIT):
            await self._exited.wait()
            await self._stderr_done.wait()
        raise RemoteProtocolError(
            f"{self._label()}: {exc.args[0] if exc.args else exc}; the port is closed",
            returncode=self._status(),
            stderr_tail=self.stderr_tail(),
            pid=self.pid,
        ) from exc

    async def _lost(self, reason: str) -> NoReturn:
        """The worker went away under this call: close, wait for its evidence, raise.

        Waits up to ``EXIT_STATUS_WAIT`` for the exit status and the end of stderr,
        so that the error carries them. The port is CLOSED before the wait, so a
        cancellation during it leaves nothing out of step (the caller just gets
        ``Cancelled`` instead of the error).
        """
        self._closed_how = "lost"
        self._break(reason)
        with trio.move_on_after(EXIT_STATUS_WAIT):
            await self._exited.wait()
            await self._stderr_done.wait()
        raise self._crashed_error(reason)

    def _crashed_error(self, reason: str, note: str = "") -> WorkerCrashed:
        return WorkerCrashed(
            f"{self._label()} lost its worker: {reason}; the port is closed{note}",
            returncode=self._status(),
            stderr_tail=self.stderr_tail(),
            pid=self.pid,
        )

    def _closed_under_timeout(self, op: str, request_id: int, timeout: float) -> Exception:
        """The error for a request whose *timeout* ran out after the port closed
        under it: what closed it, named, rather than a bare PortClosed."""
        if self._closed_how == "lost":  # the timeout cut the wait for its exit status
            return self._crashed_error(
                self._reason,
                f" (the request's timeout of {timeout:g} s ran out before its exit status came)",
            )
        if self._closed_how == "protocol":  # the timeout cut the wait for its exit status
            return RemoteProtocolError(
                f"{self._label()}: {self._reason}; the port is closed (the request's "
                f"timeout of {timeout:g} s ran out before its exit status came)",
                returncode=self._status(),
                stderr_tail=self.stderr_tail(),
                pid=self.pid,
            )
        if self._closed_how == "cut":
            return RequestTimeout(
                f"request {op!r} (id {request_id}) to {self._label()} ran out of its "
                f"timeout of {timeout:g} s while writing its frame, so the port is closed: "
                f"{self._reason}"
            )
        return self._closed_error()  # closed by another task (open_port's block ended)

    async def _close(self, grace: float) -> None:
        """Close stdin/stdout, then escalate to SIGTERM and SIGKILL; always reap.

        Call shielded: it must complete.
        """
        self._break("its open_port() block has ended")
        logger = self._logger
        signal_sent = "stdin close"
        # A supervisor that ran out of time kills its children: then the graces
        # end at once, and the worker gets SIGKILL (until_killed).
        with until_killed() as killed:
            if grace > 0:
                with trio.move_on_after(grace):
                    await self._exited.wait()
                if not self._exited.is_set() and not killed.cancel_called:
                    logger.warning(
                        "worker pid %d ignored stdin close for %s s; sending SIGTERM",
                        self.pid,
                        _seconds(grace),
                    )
                    signal_sent = "SIGTERM"
                    self._signal(signal.SIGTERM)
                    with trio.move_on_after(grace):
                        await self._exited.wait()
        if not self._exited.is_set():
            if killed.cancel_called:
                logger.warning(
                    "worker pid %d: its supervisor, out of shutdown time, killed the "
                    "child during the grace after %s; sending SIGKILL",
                    self.pid,
                    signal_sent,
                )
            elif grace > 0:
                logger.warning(
                    "worker pid %d ignored SIGTERM for %s s; sending SIGKILL",
                    self.pid,
                    _seconds(grace),
                )
            self._signal(signal.SIGKILL)
        await self._exited.wait()  # the watcher reaps it (after killing what is left of its group)
        with trio.move_on_after(STDERR_DRAIN):
            await self._stderr_done.wait()

    # ---- background tasks (open_port's nursery; they never raise) -------------------

    # Both are shielded from the caller's cancellation: while the port closes (and
    # it closes *because* of a cancellation, often) they must keep reaping and
    # draining stderr, or a worker blocked writing to a full stderr pipe could
    # never exit. _watch_exit ends when the process is reaped; _read_stderr at end
    # of file, or when open_port cancels its scope once closing is done.

    def _signal(self, signum: int) -> None:
        """Send *signum* to the worker, and to its process group when it has one.

        Never once the worker is reaped: its pid, and its group's id, may be
        another process's by then.
        """
        if self._exited.is_set():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if not self._own_group:
                self._process.send_signal(signum)  # does nothing once reaped
                return
            # Not reaped (only _watch_exit reaps, and sets _exited at once): the
            # zombie, if it has exited, keeps the pid and the group's id ours.
            os.killpg(self.pid, signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signum)  # the worker itself, should it have left its group

    @trio.lowlevel.enable_ki_protection
    async def _wait_unreaped(self) -> bool:
        """Wait until the worker exits, without reaping it; False if that cannot be done."""
        try:
            fd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfd on this system
            return False
        try:
            await trio.lowlevel.wait_readable(fd)
        finally:
            os.close(fd)
        return True

    # KI-protected: a Ctrl-C landing here instead of in the main task would end
    # the watcher before _exited is set, and _close waits for it, shielded.
    @trio.lowlevel.enable_ki_protection
    async def _watch_exit(self) -> None:
        with trio.CancelScope(shield=True):
            unreaped = self._own_group and await self._wait_unreaped()
            if unreaped:
                # The worker is gone, and with it whatever could end the processes
                # it started: end them now, so none outlives its port. Before the
                # reap, while the zombie keeps the group's id ours.
                self._signal(signal.SIGKILL)
            await self._process.wait()
        if self._own_group and not unreaped:
            # No pidfd: after the reap, as best we can (the group's id stays ours
            # while any of its processes lives; only an empty group's can be reused).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        self._exited.set()
        if self._state is PortState.OPEN:
            # Wake a call waiting to read stdout: it reads what the worker left,
            # and if that is nothing and no end of file either (a process the
            # worker started holds the pipe open), it knows the worker is gone
            # instead of waiting for as long as that process lives.
            trio.lowlevel.notify_closing(self._stdout_fd)
        self._logger.debug("pid %d exited with status %s", self.pid, self._process.returncode)

    async def _read_stderr(self) -> None:
        stream = self._process.stderr
        assert stream is not None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with self._stderr_scope:
            while True:
                try:
                    data = await stream.receive_some(_READ_SIZE)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    data = b""
                if not data:
                    self._take_stderr(decoder.decode(b"", final=True), final=True)
                    break
                self._take_stderr(decoder.decode(data), final=False)
        self._stderr_done.set()

    def _take_stderr(self, text: str, *, final: bool) -> None:
        lines = self._stderr.feed(text, final=final)
        logger = self._logger
        for line in lines:
            logger.log(STDERR_LOG_LEVEL, "pid %d stderr: %s", self.pid, line)


class StderrTail:
    """The last lines of a stream of text, bounded in lines and in line length.

    Pure: :meth:`feed` takes decoded text as it arrives and returns the lines it
    completed (for logging); :meth:`text` is the tail so far.

    Invariant: at most *max_lines* complete lines are kept, each at most
    *line_chars* characters plus a marker saying how much was cut; the line still
    being written is kept apart and is never longer than *line_chars*.
    """

    __slots__ = ("_line_chars", "_lines", "_pending")

    def __init__(
        self, max_lines: int = STDERR_TAIL_LINES, line_chars: int = STDERR_LINE_CHARS
    ) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._line_chars = line_chars
        self._pending = ""

    def feed(self, text: str, *, final: bool = False) -> list[str]:
        """Add *text*; return the lines it completed. *final*: the stream ended."""
        *lines, pending = (self._pending + text).split("\n")
        if pending and (final or len(pending) > self._line_chars):
            lines.append(pending)  # no newline coming (or none in sight): a line anyway
            pending = ""
        self._pending = pending
        out = []
        limit = self._line_chars
        for line in lines:
            line = line.removesuffix("\r")
            if len(line) > limit:
                line = f"{line[:limit]}... [{len(line) - limit} more characters]"
            self._lines.append(line)
            out.append(line)
        return out

    def text(self) -> str:
        """The kept lines, each ending with a newline, then the unfinished line."""
        return "".join(line + "\n" for line in self._lines) + self._pending


def _seconds(value: float) -> str:
    return f"{value:g}"


def _default_name(argv: Sequence[str]) -> str:
    # "python worker.py" is better named "worker" than "python"; "python -m pkg.mod"
    # is named "pkg.mod". Anything else by its program's base name.
    program = os.path.basename(argv[0])
    if program.startswith("python"):
        rest = list(argv[1:])
        while rest:
            arg = rest.pop(0)
            if arg == "-m" and rest:
                return rest[0]
            if arg in ("-c", "-"):
                break
            if not arg.startswith("-"):
                return os.path.splitext(os.path.basename(arg))[0]
    return program or "worker"


def _check_argv(argv: Sequence[str | os.PathLike[str]]) -> tuple[str, ...]:
    if isinstance(argv, (str, bytes)):
        raise TypeError(
            f"argv must be a list of arguments, not a string (got {argv!r}); nursemaid "
            f"never runs a shell: write [program, arg, ...]"
        )
    args = tuple(os.fspath(arg) for arg in argv)
    if not args:
        raise ValueError("argv must name a program to run (got an empty sequence)")
    return args


@asynccontextmanager
async def open_port(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    codec: str | Codec = "json",
    packet: int = 4,
    max_frame: int = DEFAULT_MAX_FRAME,
    envelope: Envelope | None = None,
    shutdown: float = DEFAULT_SHUTDOWN,
    name: str | None = None,
    process_group: bool = True,
) -> AsyncIterator[Port]:
    """Start *argv* as a worker process and yield a :class:`Port` to it.

    Example::

        async with open_port([sys.executable, "worker.py"]) as port:
            print(await port.request("add", [1, 2]))

    The program is started directly (never through a shell) with stdin, stdout
    and stderr as pipes. The calling task is the port's first owner. When the
    block ends — normally, by an exception, or by cancellation — the port closes
    the worker's stdin and stdout, waits up to the grace for it to exit, sends
    SIGTERM (logging a warning), waits up to the grace again, sends SIGKILL
    (warning first), and reaps it. That closing is shielded: it completes even
    when the enclosing scope is cancelled, in at most twice the grace. The
    worker leads a process group of its own, so the signals reach the processes
    it started too, and whatever is left of the group when the worker exits
    (closed, or crashed) gets SIGKILL: nothing it started outlives the port.

    Args:
        argv: the program and its arguments.
        env: the worker's environment (default: this process's).
        cwd: the worker's working directory (default: this process's).
        codec: how :meth:`Port.send` and :meth:`Port.receive` turn messages into
            frames: ``"json"`` (the default), ``"raw"`` (``bytes`` unchanged) or a
            :class:`~nursemaid.protocol.Codec`.
        packet: the frame header size in bytes: 4 (the default), 2 or 1, as
            Erlang's ``{packet, N}``.
        max_frame: the largest payload accepted in either direction (default
            64 MiB).
        envelope: how :meth:`Port.request` wraps requests and reads replies
            (default: the standard ``{"id", "op", "args"}`` envelope).
        shutdown: the grace in seconds, used when not running inside a
            supervised child (default 5.0); inside one, the child's own shutdown
            value is used instead (0 for ``BRUTAL_KILL``: SIGKILL at once).
        name: the port's name, for its logger ``nursemaid.port.<name>`` and its
            errors (default: taken from *argv*, e.g. ``worker`` for
            ``python worker.py``). Keep names few and stable (one per kind of
            worker, not per process): each distinct name is a logger for life.
        process_group: start the worker in a process group of its own (the
            default), as above; a terminal's Ctrl-C then reaches this process
            only, which closes the port. ``False``: the worker shares this
            process's group, the signals go to the worker alone, and processes
            it started are its own business.

    Yields:
        The :class:`Port`.

    Raises:
        StartError: the program could not be started (not found, not executable);
            the OS error is its ``reason`` and ``__cause__``.
        ValueError: *packet* is not 1, 2 or 4, or *max_frame* or *shutdown* is
            negative.
        TypeError: *argv* is a string (write a list: there is no shell).
    """
    args = _check_argv(argv)
    FrameDecoder(packet=packet, max_frame=max_frame)  # ValueError/TypeError before spawning
    check_seconds(shutdown, "shutdown")
    codec_obj = get_codec(codec)
    envelope_obj = get_envelope(envelope)
    port_name = name if name is not None else _default_name(args)
    owner = _current_task()
    try:
        process = await trio.lowlevel.open_process(
            list(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            process_group=0 if process_group else None,
        )
    except OSError as exc:
        raise StartError(f"could not start worker {args[0]!r}: {exc}", reason=exc) from exc
    try:
        port = Port(
            process,
            argv=args,
            name=port_name,
            codec=codec_obj,
            envelope=envelope_obj,
            packet=packet,
            max_frame=max_frame,
            owner=owner,
            own_group=process_group,
        )
    except BaseException:  # kill-and-re-raise: never leave the process behind
        with trio.CancelScope(shield=True):
            if process_group:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.kill()
            await process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            cast(trio.lowlevel.FdStream, stream).close()
        raise
    port._logger.debug("pid %d started: %r", port.pid, args)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(port._read_stderr, name=f"nursemaid.port.{port_name}.stderr")
            nursery.start_soon(port._watch_exit, name=f"nursemaid.port.{port_name}.exit")
            try:
                yield port
            finally:
                try:
                    with trio.CancelScope(shield=True):
                        inherited = current_shutdown()
                        await port._close(shutdown if inherited is None else inherited)
                except BaseException:
                    # Interrupted (a KeyboardInterrupt reaches shielded code too):
                    # no more grace. SIGKILL, so the watcher task can reap it and
                    # this nursery can end; the interruption goes on up.
                    port._signal(signal.SIGKILL)
                    raise
                finally:
                    port._stderr_scope.cancel()
    except BaseExceptionGroup as group:
        # The background tasks never raise, so the group holds what the block
        # raised: give it back unwrapped, as if there were no nursery here.
        if len(group.exceptions) != 1:
            raise
        _reraise_unwrapped(group.exceptions[0])
    finally:
        cast(trio.lowlevel.FdStream, process.stderr).close()
        port._logger.debug("pid %d closed (status %s)", port.pid, process.returncode)


def _reraise_unwrapped(exc: BaseException) -> NoReturn:
    # Re-raise *exc* from inside the handler of its group without the group
    # showing up as its context: keep the exception's own chain as it was.
    context, cause, suppress = exc.__context__, exc.__cause__, exc.__suppress_context__
    try:
        raise exc
    finally:
        exc.__context__, exc.__cause__, exc.__suppress_context__ = context, cause, suppress
        del exc


_lazy.show_public_module(globals(), "nursemaid.workers")
