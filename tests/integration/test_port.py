"""Ports against real worker processes: requests, errors, ownership, cancellation, closing.

Every test drives a real subprocess over real pipes. Nothing sleeps to wait for
anything: a worker that must answer late blocks on a FIFO that the test writes to
when it chooses, and cancellation happens once ``wait_all_tasks_blocked`` says the
port's owner is parked waiting for the worker.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from nursemaid import (
    BRUTAL_KILL,
    ChildSpec,
    LocalProtocolError,
    PortClosed,
    PortOwnershipError,
    RemoteError,
    RemoteProtocolError,
    RequestTimeout,
    StartError,
    Supervisor,
    WorkerCrashed,
    open_port,
    open_supervisor,
)
from nursemaid.testing._leaks import child_pids, describe_fds, open_fds
from nursemaid.workers._port import EXIT_STATUS_WAIT, PortState

WORKERS = Path(__file__).parent / "workers"
CALC = [sys.executable, str(WORKERS / "calc_worker.py")]
BOUND = 20  # seconds: a generous fail_after for anything that waits on a real process


def raw(mode: str, *extra: str) -> list[str]:
    return [sys.executable, str(WORKERS / "raw_worker.py"), mode, *extra]


async def cancelled_once_blocked(call: Callable[[], Awaitable[object]]) -> bool:
    """Run *call*, cancelling it once every task is blocked; return whether it was."""
    with trio.CancelScope() as scope:

        async def cancel() -> None:
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel)
            await call()
    return scope.cancelled_caught


# ---- requests ------------------------------------------------------------------------


async def test_request_returns_the_handlers_result() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            assert await port.request("add", [1, 2]) == 3
            assert await port.request("echo", {"nested": [1, "two", None]}) == {
                "nested": [1, "two", None]
            }
            assert await port.request("echo") is None


async def test_ping_is_answered_by_serve_itself() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            assert await port.request("ping") == "pong"


async def test_shutdown_op_makes_the_worker_exit_cleanly() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            assert await port.request("shutdown") is None
            assert await port.wait_exited() == 0
            # The port learns of the exit from the next call, which the worker's
            # going away interrupts: WorkerCrashed, exit status 0.
            with pytest.raises(WorkerCrashed) as info:
                await port.request("ping")
            assert info.value.returncode == 0
        assert port.state is PortState.CLOSED


async def test_handler_exception_is_a_remote_error_and_the_port_stays_usable() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            with pytest.raises(RemoteError) as info:
                await port.request("fail", "boom")
            assert info.value.type == "ValueError"
            assert info.value.message == "boom"
            assert info.value.op == "fail"
            assert "Traceback" in info.value.traceback
            assert "raise ValueError(args)" in info.value.traceback
            assert await port.request("add", [2, 2]) == 4


async def test_unknown_op_is_a_remote_error_naming_the_ops_the_worker_has() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            with pytest.raises(RemoteError) as info:
                await port.request("nope")
            assert info.value.type == "UnknownOp"
            assert "'nope'" in info.value.message
            assert "add" in info.value.message
            assert "ping" in info.value.message
            assert await port.request("ping") == "pong"


async def test_unencodable_result_is_a_remote_error_and_serving_continues() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            with pytest.raises(RemoteError) as info:
                await port.request("unencodable")
            assert info.value.type == "TypeError"
            assert "JSON cannot encode" in info.value.message
            assert await port.request("ping") == "pong"


async def test_unencodable_args_raise_local_protocol_error_before_anything_is_sent() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            with pytest.raises(LocalProtocolError):
                await port.request("echo", {1, 2})
            assert await port.request("echo", [1, 2]) == [1, 2]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
async def test_nan_and_infinite_args_are_refused_whichever_json_backend_is_installed(
    value: float,
) -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:  # orjson when installed, else the stdlib
            with pytest.raises(LocalProtocolError, match="not JSON compliant"):
                await port.request("echo", [None, value])
            assert port.abandoned_requests == 0
            assert await port.request("echo", [None, 1.5]) == [None, 1.5]


async def test_request_over_max_frame_raises_before_a_byte_is_written() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC, max_frame=200) as port:
            with pytest.raises(LocalProtocolError, match="max_frame=200"):
                await port.request("echo", "x" * 500)
            assert port.state is PortState.OPEN
            assert await port.request("echo", "small") == "small"


async def test_stray_prints_in_a_handler_go_to_stderr_not_into_the_frame_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="nursemaid.port")
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            assert await port.request("chatty", "hello") == "hello"
            assert await port.request("add", [1, 1]) == 2
        tail = port.stderr_tail()
    for line in ("a stray print hello", "a stray write", "a stray os.write to fd 1"):
        assert line in tail
    logged = [r.getMessage() for r in caplog.records if r.name == "nursemaid.port.calc_worker"]
    assert any("a stray print hello" in message for message in logged)


async def test_text_printed_before_serve_and_still_buffered_goes_to_stderr(
    tmp_path: Path,
) -> None:
    # A program's banner printed before serve() sits in Python's stdout buffer
    # (stdout is a pipe: block-buffered); serve must not flush it into the frames.
    worker = tmp_path / "banner_worker.py"
    worker.write_text(
        "print('loading model...')\n"
        "from nursemaid import serve\n"
        "serve({'echo': lambda args: args})\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    with trio.fail_after(BOUND):
        async with open_port([sys.executable, str(worker)], env=env) as port:
            assert await port.request("echo", "hi") == "hi"
        assert "loading model..." in port.stderr_tail()


# ---- timeouts and cancellation ----------------------------------------------------------


async def test_request_timeout_leaves_the_port_usable_and_the_late_reply_is_discarded(
    fifo: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    path, release = fifo
    caplog.set_level(logging.DEBUG, logger="nursemaid.port")
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            # The worker cannot answer before we write to the FIFO, so this times
            # out every time; the timeout is short only to keep the test quick.
            with pytest.raises(RequestTimeout, match=r"'wait'.*late reply will be discarded"):
                await port.request("wait", path, timeout=0.05)
            assert port.state is PortState.OPEN
            os.write(release, b"late\n")
            # The worker now sends the late reply to "wait", then the reply to
            # "echo": the port must drop the first and return the second.
            assert await port.request("echo", "next") == "next"
    assert any("discarded the late reply" in r.getMessage() for r in caplog.records)


async def test_a_timeout_that_ran_out_before_the_write_says_nothing_was_sent() -> None:
    # timeout=0: the deadline has passed at the first cancellation point, before
    # the frame is written. Nothing is owed, and the error must not promise a
    # late reply that will never come.
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            with pytest.raises(RequestTimeout, match="was not sent") as caught:
                await port.request("echo", 1, timeout=0)
            assert "late reply" not in str(caught.value)
            assert port.abandoned_requests == 0
            assert await port.request("echo", 2) == 2


async def test_cancelled_request_abandons_its_id_and_the_next_request_gets_its_own_reply(
    fifo: tuple[str, int],
) -> None:
    path, release = fifo
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            assert await cancelled_once_blocked(lambda: port.request("wait", path))
            assert port.state is PortState.OPEN
            os.write(release, b"late\n")
            assert await port.request("add", [20, 22]) == 42
            assert await port.request("ping") == "pong"


async def test_receive_discards_the_late_reply_to_an_abandoned_request(
    fifo: tuple[str, int],
) -> None:
    path, release = fifo
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            assert await cancelled_once_blocked(lambda: port.request("wait", path))
            assert port.abandoned_requests == 1
            os.write(release, b"late\n")
            # The worker sends the late reply to "wait" first, then the answer to
            # this hand-made request: receive must drop the first, return the second.
            await port.send({"id": 1000, "op": "echo", "args": "mine"})
            assert await port.receive() == {"id": 1000, "result": "mine"}
            assert port.abandoned_requests == 0
            assert await port.request("add", [20, 22]) == 42


@pytest.mark.parametrize("timeout", [-1, -0.5, float("nan"), "1", True])
async def test_request_with_a_bad_timeout_is_a_value_error_before_anything_is_sent(
    timeout: object,
) -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            with pytest.raises(ValueError, match=r"^timeout must be a number of seconds >= 0, "):
                await port.request("echo", "first", timeout=timeout)  # type: ignore[arg-type]
            assert port.abandoned_requests == 0
            # Nothing went out: the next reply is the next request's own.
            assert await port.request("echo", "second", timeout=float("inf")) == "second"


async def test_reply_with_an_id_nobody_asked_for_is_a_protocol_error_that_closes_the_port() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("wrong-id")) as port:
            with pytest.raises(RemoteProtocolError, match="id 1001") as info:
                await port.request("anything")
            assert "no request with that id" in str(info.value)
            assert port.state is PortState.CLOSED
            with pytest.raises(PortClosed):
                await port.request("anything")


async def test_cancelled_receive_leaves_the_port_in_step() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("echo"), codec="raw") as port:
            assert await cancelled_once_blocked(port.receive)
            await port.send(b"after")
            assert await port.receive() == b"after"


async def test_cancel_in_the_middle_of_writing_a_frame_closes_the_port() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("no-read"), codec="raw", shutdown=0.05) as port:
            big = b"x" * 1_000_000  # far more than a pipe holds
            assert await cancelled_once_blocked(lambda: port.send(big))
            assert port.state is PortState.CLOSED
            assert "out of step" in port.close_reason
            with pytest.raises(PortClosed, match="out of step"):
                await port.send(b"more")


# ---- framing: a raw program written without nursemaid ------------------------------


@pytest.mark.parametrize("packet", [1, 2, 4])
async def test_raw_framed_program_echoes_frames_with_every_packet_size(packet: int) -> None:
    messages = [b"", b"a", b"\x00\xff" * 50, bytes(range(200))]
    with trio.fail_after(BOUND):
        async with open_port(
            raw("echo", "--packet", str(packet)), codec="raw", packet=packet
        ) as port:
            for message in messages:
                await port.send(message)
            for message in messages:
                assert await port.receive() == message


async def test_message_too_big_for_packet_1_is_refused_and_the_port_stays_usable() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("echo", "--packet", "1"), codec="raw", packet=1) as port:
            with pytest.raises(LocalProtocolError, match="packet=1"):
                await port.send(b"x" * 256)
            await port.send(b"x" * 255)
            assert await port.receive() == b"x" * 255


async def test_json_codec_sends_and_receives_values() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("echo")) as port:
            await port.send({"hello": ["world", 1, 2.5, None, True]})
            assert await port.receive() == {"hello": ["world", 1, 2.5, None, True]}


async def test_oversized_incoming_header_is_a_protocol_error_and_closes_the_port() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("oversized"), codec="raw", max_frame=1024) as port:
            await port.send(b"go")
            with pytest.raises(RemoteProtocolError, match="max_frame=1024"):
                await port.receive()
            assert port.state is PortState.CLOSED
            with pytest.raises(PortClosed):
                await port.receive()


async def test_text_on_stdout_is_reported_as_a_worker_that_wrote_to_stdout() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("garbage"), codec="raw") as port:
            await port.send(b"go")
            with pytest.raises(RemoteProtocolError, match="did the worker write to stdout"):
                await port.receive()


EXPLAIN_THEN_GARBAGE = [
    sys.executable,
    "-c",
    "import os, sys\n"
    "os.read(0, 65536)\n"
    "sys.stderr.write('why: the model file is corrupt\\n'); sys.stderr.flush()\n"
    "os.write(1, b'not a frame at all, just text')\n"
    "while os.read(0, 65536): pass\n",
]


async def test_a_protocol_error_carries_what_the_worker_wrote_on_stderr_just_before() -> None:
    # The worker explains on stderr, then writes garbage. The stderr reader task had
    # not always read the line when the error was raised (2 runs in 10 had it).
    with trio.fail_after(BOUND):
        for _ in range(10):
            async with open_port(EXPLAIN_THEN_GARBAGE) as port:
                with pytest.raises(RemoteProtocolError) as info:
                    await port.request("anything")
            assert info.value.stderr_tail == "why: the model file is corrupt\n"
            assert str(info.value).endswith("why: the model file is corrupt")
            assert info.value.returncode in (0, None)  # None: it took over 0.25 s to exit


GARBAGE_THEN_LINGER = [
    sys.executable,
    "-c",
    "import os, time\n"
    "os.read(0, 65536)\n"
    "os.write(1, b'HTTP/1.1 200 OK\\r\\n\\r\\n')\n"
    "time.sleep(30)\n",
]


async def test_a_timeout_that_cuts_the_wait_after_a_protocol_error_still_names_it() -> None:
    # The port waits for the exit status of a worker that broke the protocol; this
    # one does not exit on end of file, so the request's own timeout ends the wait.
    with trio.fail_after(BOUND):
        async with open_port(GARBAGE_THEN_LINGER, shutdown=0.05) as port:
            with pytest.raises(RemoteProtocolError, match="ran out before its exit status"):
                await port.request("anything", timeout=0.1)  # < PROTOCOL_ERROR_WAIT


async def test_replies_arriving_a_byte_at_a_time_are_reassembled() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("bytewise")) as port:
            for value in ["a", {"b": [1, 2, 3]}, None, "x" * 300]:
                assert await port.request("echo", value) == value


async def test_error_reply_without_an_id_is_a_protocol_error_quoting_the_worker() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("null-id")) as port:
            with pytest.raises(RemoteProtocolError, match="cannot read that"):
                await port.request("anything")
            assert port.state is PortState.CLOSED


async def test_any_task_may_wait_for_the_worker_to_exit() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            statuses = []

            async def watcher() -> None:
                statuses.append(await port.wait_exited())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher)
                await trio.testing.wait_all_tasks_blocked()
                assert await port.request("shutdown") is None
            assert statuses == [0]


async def test_reply_that_is_not_json_is_a_protocol_error() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("not-json")) as port:
            with pytest.raises(RemoteProtocolError):
                await port.request("anything")
            assert port.state is PortState.CLOSED


async def test_truncated_frame_then_end_of_file_is_worker_crashed_with_status_and_stderr() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("truncated"), codec="raw") as port:
            await port.send(b"go")
            with pytest.raises(WorkerCrashed, match="middle of a frame") as info:
                await port.receive()
    assert info.value.returncode == 3
    assert "giving up half-way" in info.value.stderr_tail
    assert str(info.value).rstrip().endswith("raw_worker: giving up half-way through a frame")


# ---- crashes: exit status and stderr in every error ------------------------------------


async def test_crash_during_a_request_is_worker_crashed_with_exit_status_and_stderr() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            with pytest.raises(WorkerCrashed) as info:
                await port.request("crash", 7)
    error = info.value
    assert isinstance(error, PortClosed)  # code that catches PortClosed still catches it
    assert error.returncode == 7
    assert error.pid == port.pid
    assert "about to crash" in error.stderr_tail
    assert "lost its worker" in str(error)
    assert str(error).rstrip().endswith("about to crash")
    assert "(returncode 7)" in str(error)


async def test_calls_after_a_crash_are_plain_port_closed_with_the_same_evidence() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            with pytest.raises(WorkerCrashed):
                await port.request("crash", 7)
            for call in (port.request("ping"), port.send("x"), port.receive()):
                with pytest.raises(PortClosed) as info:
                    await call
                assert type(info.value) is PortClosed
                assert info.value.returncode == 7
                assert "about to crash" in info.value.stderr_tail
                assert "waited for its reply" in str(info.value)  # the crash, as the reason


async def test_worker_that_dies_at_start_up_is_not_a_black_box() -> None:
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('no config file\\n'); sys.exit(5)"]
    with trio.fail_after(BOUND):
        async with open_port(argv) as port:
            with pytest.raises(WorkerCrashed) as info:
                await port.request("ping")
    assert info.value.returncode == 5
    assert "no config file" in str(info.value)


async def test_send_to_a_worker_that_exited_is_worker_crashed() -> None:
    argv = [sys.executable, "-c", "import sys; sys.exit(4)"]
    with trio.fail_after(BOUND):
        async with open_port(argv, codec="raw") as port:
            assert await port.wait_exited() == 4
            with pytest.raises(WorkerCrashed, match="stopped reading its stdin") as info:
                await port.send(b"anyone there?")
    assert info.value.returncode == 4


@pytest.mark.slow  # waits EXIT_STATUS_WAIT (1 s) for an exit status that never comes
async def test_worker_that_closes_stdout_but_lives_is_worker_crashed_without_a_status() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("close-stdout"), shutdown=0.05) as port:
            start = trio.current_time()
            with pytest.raises(WorkerCrashed, match="closed its stdout") as info:
                await port.request("anything")
            assert trio.current_time() - start >= EXIT_STATUS_WAIT
            assert info.value.returncode is None
            assert port.state is PortState.CLOSED


async def test_a_timeout_that_cuts_the_wait_for_a_lost_workers_status_is_still_worker_crashed() -> (
    None
):
    # The worker closed its stdout under the request, and the request's timeout
    # ran out while the port waited for the exit status: the error is the crash
    # (it says why the status is missing), not a bare PortClosed.
    with trio.fail_after(BOUND):
        async with open_port(raw("close-stdout"), shutdown=0.05) as port:
            with pytest.raises(WorkerCrashed, match="closed its stdout") as info:
                await port.request("anything", timeout=0.1)
            assert "timeout of 0.1 s ran out before its exit status came" in str(info.value)
            assert port.state is PortState.CLOSED


async def test_a_timeout_that_cuts_a_frame_half_written_is_a_request_timeout_saying_so(
    fifo: tuple[str, int],
) -> None:
    # The worker is busy in a handler, so it reads nothing, and a large frame
    # fills the pipe: the timeout cuts it half-written. The stream is out of step,
    # so the port closes, and the RequestTimeout says that, and why.
    path, release = fifo
    with trio.fail_after(BOUND):
        async with open_port(CALC, shutdown=0.05) as port:
            with pytest.raises(RequestTimeout):
                await port.request("wait", path, timeout=0.01)  # now busy until released
            with pytest.raises(
                RequestTimeout, match=r"interrupted after \d+ of the \d+ bytes"
            ) as info:
                await port.request("echo", "x" * 1_000_000, timeout=0.05)
            assert "the port is closed" in str(info.value)
            assert port.state is PortState.CLOSED
            os.write(release, b"go\n")


_EXITS_WITH_A_HELPER = """
import os, subprocess, sys
# Started before serve(), the helper inherits the frame pipes on fds 0 and 1.
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
from nursemaid import serve
serve({"helper": lambda args: helper.pid, "die": lambda args: os._exit(3)})
"""


@pytest.mark.slow  # waits EXIT_STATUS_WAIT (1 s) for stderr, which the helper holds too
async def test_a_worker_exiting_while_a_process_it_started_holds_its_stdout_is_worker_crashed() -> (
    None
):
    # No end of file ever comes on the worker's stdout while the helper lives: the
    # port must learn of the exit from the process itself, not wait for the pipe.
    with trio.fail_after(BOUND):
        # process_group=False: in the worker's own group the helper would be
        # killed with it, and its stdout closed.
        async with open_port(
            [sys.executable, "-c", _EXITS_WITH_A_HELPER], shutdown=0.05, process_group=False
        ) as port:
            helper = await port.request("helper")
            try:
                with pytest.raises(WorkerCrashed, match="stdout still open") as info:
                    await port.request("die")
            finally:
                os.kill(helper, signal.SIGKILL)
            assert info.value.returncode == 3


_STARTS_HELPERS = """
import os, subprocess, sys
from nursemaid import serve
helpers = []
def start(args):
    helpers.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
    return helpers[-1].pid
serve({"start": start, "die": lambda args: os._exit(3)})
"""


async def _ended(pid_fd: int) -> None:
    """Return once the process behind *pid_fd* (from os.pidfd_open) has ended."""
    await trio.lowlevel.wait_readable(pid_fd)


@pytest.mark.parametrize("how", ["closed", "crashed"])
async def test_processes_a_worker_started_end_with_it(how: str) -> None:
    with trio.fail_after(BOUND):
        async with open_port([sys.executable, "-c", _STARTS_HELPERS], shutdown=1.0) as port:
            assert os.getpgid(port.pid) == port.pid  # it leads a group of its own
            helpers = [os.pidfd_open(await port.request("start")) for _ in range(2)]
            if how == "crashed":
                with pytest.raises(WorkerCrashed):
                    await port.request("die")
        try:
            for helper in helpers:
                await _ended(helper)  # stuck here (60 s) if it outlived the port
        finally:
            for helper in helpers:
                os.close(helper)


async def test_with_process_group_false_the_worker_alone_is_ended() -> None:
    with trio.fail_after(BOUND):
        async with open_port(
            [sys.executable, "-c", _STARTS_HELPERS], shutdown=1.0, process_group=False
        ) as port:
            assert os.getpgid(port.pid) == os.getpgid(0)  # ours: Ctrl-C reaches it too
            pid = await port.request("start")
            helper = os.pidfd_open(pid)
        try:
            with trio.move_on_after(0.2):
                await _ended(helper)
                pytest.fail("the worker's own process was ended with it")
            signal.pidfd_send_signal(helper, signal.SIGKILL)
            await _ended(helper)
        finally:
            os.close(helper)


async def test_cancel_while_waiting_for_a_crashed_workers_status_leaves_the_port_closed() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("close-stdout"), shutdown=0.05) as port:

            async def cancel_once_closed() -> None:
                # The owner parks twice: for the reply, then (once the end of file
                # closed the port) for the exit status. Cancel it in the second.
                while port.state is PortState.OPEN:
                    await trio.testing.wait_all_tasks_blocked()
                await trio.testing.wait_all_tasks_blocked()
                scope.cancel()

            async with trio.open_nursery() as nursery:
                with trio.CancelScope() as scope:
                    nursery.start_soon(cancel_once_closed)
                    await port.request("anything")  # parked in the wait for the status
            assert scope.cancelled_caught
            assert port.state is PortState.CLOSED
            assert "closed its stdout" in port.close_reason
            with pytest.raises(PortClosed) as info:
                await port.request("anything")
            assert type(info.value) is PortClosed


async def test_program_that_cannot_be_started_raises_start_error() -> None:
    with pytest.raises(StartError, match="could not start") as info:
        async with open_port(["/nonexistent/worker-program"]):
            pass  # pragma: no cover
    assert isinstance(info.value.reason, FileNotFoundError)


async def test_missing_working_directory_raises_start_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(StartError, match="no-such-dir"):
        async with open_port(CALC, cwd=missing):
            pass  # pragma: no cover


async def test_argv_given_as_a_string_is_refused_because_there_is_no_shell() -> None:
    with pytest.raises(TypeError, match="never runs a shell"):
        async with open_port("python worker.py"):  # type: ignore[arg-type]
            pass  # pragma: no cover


async def test_exception_in_the_block_comes_out_unwrapped() -> None:
    with pytest.raises(KeyError, match="mine"):
        async with open_port(raw("echo")):
            raise KeyError("mine")


async def test_worker_stderr_is_logged_under_the_ports_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC, name="calc") as port:
            await port.request("stderr", "first line\nsecond line\n")
            await port.request("ping")
    assert port.stderr_tail() == "first line\nsecond line\n"
    records = [r for r in caplog.records if r.name == "nursemaid.port.calc"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert "second line" in records[1].getMessage()
    assert str(port.pid) in records[1].getMessage()


# ---- ownership ---------------------------------------------------------------------------


async def test_a_task_that_does_not_own_the_port_gets_ownership_error_at_once() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            opener = trio.lowlevel.current_task()

            async def intruder() -> None:
                me = trio.lowlevel.current_task()
                with pytest.raises(PortOwnershipError, match="only the owner") as info:
                    await port.request("ping")
                assert info.value.owner is opener
                assert info.value.caller is me
                with pytest.raises(PortOwnershipError):
                    await port.send("x")
                with pytest.raises(PortOwnershipError):
                    await port.receive()
                with pytest.raises(PortOwnershipError):
                    port.connect(me)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(intruder)
            assert port.owner is opener
            assert await port.request("ping") == "pong"


async def test_connect_hands_the_port_to_another_task_and_back() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            opener = trio.lowlevel.current_task()
            handed_over = trio.Event()
            results = []

            async def borrower(*, task_status: trio.TaskStatus[trio.lowlevel.Task]) -> None:
                task_status.started(trio.lowlevel.current_task())
                await handed_over.wait()
                results.append(await port.request("add", [2, 3]))
                port.connect(opener)

            async with trio.open_nursery() as nursery:
                task = await nursery.start(borrower)
                port.connect(task)
                assert port.owner is task
                with pytest.raises(PortOwnershipError):
                    await port.request("ping")
                handed_over.set()
            assert results == [5]
            assert port.owner is opener
            assert await port.request("ping") == "pong"


async def test_connect_needs_a_task() -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("echo")) as port:
            with pytest.raises(TypeError, match=r"trio\.lowlevel\.Task"):
                port.connect("somebody")  # type: ignore[arg-type]


# ---- closing -----------------------------------------------------------------------------


async def test_leaving_the_block_reaps_the_worker_and_closes_every_descriptor() -> None:
    fds, children = open_fds(), child_pids()
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            assert port.pid in child_pids()
            await port.request("ping")
    assert port.returncode == 0
    assert child_pids() == children
    assert open_fds() == fds, describe_fds(open_fds() - fds)


async def test_closing_completes_even_when_the_enclosing_scope_is_cancelled() -> None:
    fds, children = open_fds(), child_pids()
    with trio.fail_after(BOUND):
        with trio.CancelScope() as scope:
            async with open_port(raw("lingering"), shutdown=0.05) as port:
                scope.cancel()
                await trio.sleep_forever()
    assert scope.cancelled_caught
    assert port.returncode == -signal.SIGTERM
    assert child_pids() == children
    assert open_fds() == fds, describe_fds(open_fds() - fds)


async def test_worker_ignoring_stdin_close_gets_sigterm_after_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("lingering"), codec="raw", shutdown=0.05) as port:
            await port.send(b"up?")
            assert await port.receive() == b"up?"
    assert port.returncode == -signal.SIGTERM
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"worker pid {port.pid} ignored stdin close for 0.05 s; sending SIGTERM"]


@pytest.mark.slow
async def test_worker_ignoring_sigterm_gets_sigkill_after_two_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(BOUND):
        async with open_port(raw("stubborn"), codec="raw", shutdown=0.1) as port:
            await port.send(b"up?")  # the reply proves SIGTERM is already ignored
            assert await port.receive() == b"up?"
    assert port.returncode == -signal.SIGKILL
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"worker pid {port.pid} ignored stdin close for 0.1 s; sending SIGTERM",
        f"worker pid {port.pid} ignored SIGTERM for 0.1 s; sending SIGKILL",
    ]


async def test_inside_a_brutal_kill_child_the_worker_is_killed_at_once_without_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ports = []

    async def child(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # shutdown=60 would make a test time out: the child's BRUTAL_KILL must win.
        async with open_port(raw("stubborn"), codec="raw", shutdown=60) as port:
            ports.append(port)
            await port.send(b"up?")
            await port.receive()
            task_status.started()
            await trio.sleep_forever()

    with trio.fail_after(BOUND):
        async with open_supervisor([ChildSpec("worker", child, shutdown=BRUTAL_KILL)]):
            pass
    assert ports[0].returncode == -signal.SIGKILL
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_supervisor_out_of_shutdown_time_cuts_its_ports_graces_short(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The port child's own shutdown is 5 s a step, but its supervisor (a child
    # with 0.2 s) runs out first and kills what it has left: the port's graces end
    # then, and the worker gets SIGKILL without a SIGTERM first, so the tree stops
    # within its parent's bound (without that, the close would take 10 s).
    ports = []

    async def child(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with open_port(raw("stubborn"), codec="raw") as port:
            ports.append(port)
            await port.send(b"up?")  # the reply proves SIGTERM is already ignored
            await port.receive()
            task_status.started()
            await trio.sleep_forever()

    inner = Supervisor([ChildSpec("worker", child, shutdown=5)], name="inner")
    with trio.fail_after(BOUND):
        async with open_supervisor([inner.child_spec(shutdown=0.2)]):
            pass
    assert ports[0].returncode == -signal.SIGKILL
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        f"worker pid {ports[0].pid}: its supervisor, out of shutdown time, killed the "
        "child during the grace after stdin close; sending SIGKILL"
    ) in warnings
    assert not [w for w in warnings if "sending SIGTERM" in w]


_INTERRUPTED_CLOSE = """
import os, signal, sys, threading, time, trio
from nursemaid import open_port

def interrupt_once_closing(port):
    # The close sequence marks the port CLOSED first, then waits out its 30 s
    # grace: Trio delivers this Ctrl-C at that wait.
    while port.state.value != "closed":
        time.sleep(0.001)
    os.kill(os.getpid(), signal.SIGINT)

async def main():
    async with open_port(sys.argv[1:], codec="raw", shutdown=30) as port:
        print(port.pid, flush=True)
        await port.send(b"up?")  # the reply proves SIGTERM is already ignored
        await port.receive()
        threading.Thread(target=interrupt_once_closing, args=(port,), daemon=True).start()

try:
    trio.run(main)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
"""


@pytest.mark.slow
async def test_ctrl_c_during_the_close_sequence_kills_the_worker_and_comes_out() -> None:
    # A KeyboardInterrupt reaches shielded code too. Arriving in the close
    # sequence, it must not leave the worker unsignalled and the port's nursery
    # waiting for it for ever: the worker gets SIGKILL and the interrupt goes on.
    with trio.fail_after(BOUND):
        result = await trio.run_process(
            [sys.executable, "-c", _INTERRUPTED_CLOSE, *raw("stubborn")],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    pid_line, outcome = result.stdout.decode().split()
    assert outcome == "KeyboardInterrupt", result.stderr.decode()[-2000:]
    assert not os.path.exists(f"/proc/{int(pid_line)}")  # killed and reaped


async def test_port_used_after_its_block_raises_port_closed() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            pass
    with pytest.raises(PortClosed, match="block has ended") as info:
        await port.request("ping")
    assert type(info.value) is PortClosed  # closed by us before the call: not a crash


@pytest.mark.slow
async def test_200_ports_opened_and_closed_leave_no_process_or_descriptor() -> None:
    fds, children = open_fds(), child_pids()

    async def open_and_close(count: int) -> None:
        for _ in range(count):
            async with open_port(raw("echo"), codec="raw") as port:
                await port.send(b"hi")
                assert await port.receive() == b"hi"
            assert port.returncode == 0

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(open_and_close, 20)
    assert child_pids() == children
    assert open_fds() == fds, describe_fds(open_fds() - fds)
