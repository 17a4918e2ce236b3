"""``serve``, the far side, against what a port (or a broken peer) sends it.

Each behaviour here is a row of the table in ``nursemaid.workers._serve``'s module
documentation, which ``docs/protocol.md`` repeats for workers in other languages.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from nursemaid import RemoteError, WorkerCrashed, open_port, serve

WORKERS = Path(__file__).parent / "workers"
CALC = [sys.executable, str(WORKERS / "calc_worker.py")]
BOUND = 20


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


async def run_calc(stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return await run_calc_with([], stdin)


async def run_calc_with(options: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(BOUND):
        return await trio.run_process(
            [*CALC, *options], stdin=stdin, capture_stdout=True, capture_stderr=True, check=False
        )


async def test_serve_exits_cleanly_at_end_of_file() -> None:
    result = await run_calc(b"")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


async def test_serve_answers_frames_already_written_before_end_of_file() -> None:
    result = await run_calc(
        frame(b'{"id":1,"op":"add","args":[2,3]}') + frame(b'{"id":2,"op":"ping"}')
    )
    assert result.returncode == 0
    assert result.stdout == frame(b'{"id":1,"result":5}') + frame(b'{"id":2,"result":"pong"}')


async def test_end_of_file_in_the_middle_of_a_frame_exits_2_with_a_message() -> None:
    result = await run_calc(frame(b'{"id":1,"op":"ping"}')[:10])
    assert result.returncode == 2
    assert b"middle of a frame" in result.stderr


async def test_header_over_max_frame_exits_2_with_a_message() -> None:
    result = await run_calc(b"\xff\xff\xff\xff")
    assert result.returncode == 2
    assert b"max_frame" in result.stderr


async def test_a_frame_before_a_bad_header_is_answered_before_the_worker_exits_2() -> None:
    result = await run_calc(frame(b'{"id":1,"op":"ping"}') + b"\xff\xff\xff\xff")
    assert result.returncode == 2
    assert result.stdout == frame(b'{"id":1,"result":"pong"}')
    assert b"max_frame" in result.stderr


async def test_a_frame_split_across_reads_is_reassembled() -> None:
    # A ping answered first, so the worker is already waiting on its reads when the
    # next frame arrives one byte per write.
    ping, request = frame(b'{"id":1,"op":"ping"}'), frame(b'{"id":2,"op":"add","args":[2,3]}')
    program = (
        "import os, subprocess, sys\n"
        "worker = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)\n"
        f"worker.stdin.write({ping!r}); worker.stdin.flush()\n"
        "sys.stdout.buffer.write(os.read(worker.stdout.fileno(), 100))\n"
        f"for byte in {request!r}:\n"
        "    worker.stdin.write(bytes([byte])); worker.stdin.flush()\n"
        "worker.stdin.close()\n"
        "sys.stdout.buffer.write(worker.stdout.read())\n"
        "sys.exit(worker.wait())\n"
    )
    with trio.fail_after(BOUND):
        result = await trio.run_process(
            [sys.executable, "-c", program, *CALC], capture_stdout=True, check=False
        )
    assert result.returncode == 0
    assert result.stdout == frame(b'{"id":1,"result":"pong"}') + frame(b'{"id":2,"result":5}')


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        (b"not json", b"not a JSON request"),
        (b"\xff\xfe", b"not a JSON request"),
        (b"[1, 2]", b"not a JSON object"),
        (b'{"op": "ping"}', b"no usable 'id'"),
        (b'{"id": "7", "op": "ping"}', b"no usable 'id'"),
        (b'{"id": true, "op": "ping"}', b"no usable 'id'"),
        (b"[" * 100_000, b"not a JSON request"),  # nested past Python's recursion limit
    ],
)
async def test_request_whose_id_cannot_be_read_exits_2_with_a_message(
    payload: bytes, complaint: bytes
) -> None:
    result = await run_calc(frame(payload))
    assert result.returncode == 2
    assert result.stdout == b""
    assert complaint in result.stderr


@pytest.mark.parametrize(
    ("request_", "complaint"),
    [
        ({"id": 5}, "has no 'op'"),
        ({"id": 5, "op": 42}, "must be a string"),
        ({"id": 5, "op": None}, "must be a string (got None)"),  # present, so not "no 'op'"
    ],
)
async def test_malformed_request_with_a_readable_id_gets_a_bad_request_reply(
    request_: dict[str, object], complaint: str
) -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            await port.send(request_)
            reply = await port.receive()
            assert reply["id"] == 5
            assert reply["error"]["type"] == "BadRequest"
            assert complaint in reply["error"]["message"]
            assert await port.request("ping") == "pong"


async def test_unknown_keys_in_a_request_are_ignored() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            await port.send({"id": 9, "op": "add", "args": [1, 1], "deadline": 3})
            assert await port.receive() == {"id": 9, "result": 2}


async def test_reply_over_max_frame_becomes_an_error_reply_and_serving_continues() -> None:
    with trio.fail_after(BOUND):
        async with open_port([*CALC, "--max-frame", "1000"]) as port:
            with pytest.raises(RemoteError) as info:
                await port.request("repeat", 5000)
            assert info.value.type == "LocalProtocolError"
            assert len(await port.request("repeat", 500)) == 500


async def test_an_error_reply_too_large_for_the_frame_keeps_its_error_without_the_traceback() -> (
    None
):
    # max_frame 300: a handler's error reply carries a traceback and would not
    # fit (packet=1 allows 255 bytes at most: the same case). The error itself
    # still reaches the caller; a message too long to fit is cut, and says so.
    with trio.fail_after(BOUND):
        async with open_port([*CALC, "--max-frame", "300"]) as port:
            with pytest.raises(RemoteError) as info:
                await port.request("fail", "bad value")
            assert (info.value.type, info.value.message, info.value.traceback) == (
                "ValueError",
                "bad value",
                "",
            )
            with pytest.raises(RemoteError) as info:
                await port.request("fail", "x" * 250)  # fits; its error reply does not
            assert info.value.type == "ValueError"
            assert info.value.message.startswith("xxx")
            assert info.value.message.endswith("[cut to fit the frame]")
            assert await port.request("ping") == "pong"


async def test_input_in_a_handler_reads_end_of_file_not_a_request() -> None:
    program = "from nursemaid import serve\nserve({'ask': lambda args: input()})\n"
    with trio.fail_after(BOUND):
        async with open_port([sys.executable, "-c", program]) as port:
            with pytest.raises(RemoteError) as info:
                await port.request("ask")
            assert info.value.type == "EOFError"
            assert await port.request("ping") == "pong"


async def test_worker_whose_stdout_the_port_closed_exits_quietly() -> None:
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            await port.request("ping")
    assert port.returncode == 0
    assert port.stderr_tail() == ""


async def test_handler_raising_keyboard_interrupt_ends_the_worker() -> None:
    program = (
        "from nursemaid import serve\n"
        "def stop(args):\n"
        "    raise KeyboardInterrupt\n"
        "serve({'stop': stop})\n"
    )
    with trio.fail_after(BOUND):
        async with open_port([sys.executable, "-c", program]) as port:
            with pytest.raises(WorkerCrashed) as info:
                await port.request("stop")
    assert info.value.returncode != 0
    assert "KeyboardInterrupt" in info.value.stderr_tail


async def test_handler_calling_sys_exit_ends_the_worker_with_that_status() -> None:
    # Deliberate, and in docs/protocol.md: SystemExit is not an Exception, so it
    # ends a serve worker as it ends any Python program; the port sees a crash.
    program = "import sys\nfrom nursemaid import serve\nserve({'bye': sys.exit})\n"
    with trio.fail_after(BOUND):
        async with open_port([sys.executable, "-c", program]) as port:
            with pytest.raises(WorkerCrashed) as info:
                await port.request("bye", 3)
    assert info.value.returncode == 3


async def test_a_reply_too_large_for_a_tiny_max_frame_still_gets_a_cut_error_reply() -> None:
    # max_frame 120: the LocalProtocolError reply's own message does not fit
    # either; it is cut like any other error reply's, and the worker serves on.
    with trio.fail_after(BOUND):
        async with open_port([*CALC, "--max-frame", "120"], max_frame=120) as port:
            with pytest.raises(RemoteError) as info:
                await port.request("repeat", 200)
            assert info.value.type == "LocalProtocolError"
            assert info.value.message.startswith("cannot send a ")
            assert info.value.message.endswith(" [cut to fit the frame]")
            assert await port.request("ping") == "pong"


async def test_a_max_frame_too_small_for_any_error_reply_exits_2_with_a_message() -> None:
    # The last resort: 50 bytes cannot hold even an error reply with an empty message.
    result = await run_calc_with(["--max-frame", "50"], frame(b'{"id":1,"op":"repeat","args":100}'))
    assert result.returncode == 2
    assert result.stdout == b""
    assert b"not even an error reply with an empty message fits in max_frame=50" in result.stderr


async def test_an_error_reply_is_cut_no_shorter_than_the_frame_needs() -> None:
    # max_frame 300 leaves room for about 200 characters of message: the cut
    # keeps as many as fit, not half of them.
    with trio.fail_after(BOUND):
        async with open_port([*CALC, "--max-frame", "300"]) as port:
            with pytest.raises(RemoteError) as info:
                await port.request("fail", "x" * 250)
    error = {"type": "ValueError", "message": info.value.message, "traceback": ""}
    size = len(json.dumps({"id": 1, "error": error}, separators=(",", ":")))
    assert 300 - 10 < size <= 300  # the reply as serve wrote it, within a character or so


async def test_a_result_nested_too_deeply_to_encode_is_a_value_error_reply() -> None:
    program = (
        "from nursemaid import serve\n"
        "def deep(depth):\n"
        "    value = []\n"
        "    for _ in range(depth):\n"
        "        value = [value]\n"
        "    return value\n"
        "serve({'deep': deep})\n"
    )
    with trio.fail_after(BOUND):
        async with open_port([sys.executable, "-c", program]) as port:
            with pytest.raises(RemoteError) as info:
                await port.request("deep", 100_000)
            assert info.value.type == "ValueError"  # not RecursionError: see the spec's list
            assert "nested too deeply" in info.value.message
            assert await port.request("ping") == "pong"


async def test_text_on_stdin_is_blamed_on_what_feeds_stdin_not_on_the_worker() -> None:
    result = await run_calc(b"Hello world\n")
    assert result.returncode == 2
    assert b"did the worker write to stdout" not in result.stderr  # the port's hint
    assert b"b'Hell' announces 1214606444 bytes" in result.stderr
    assert b"writing text to this worker's stdin" in result.stderr


def test_a_handler_named_like_a_built_in_op_is_refused() -> None:
    with pytest.raises(ValueError, match="built-in op 'ping'"):
        serve({"ping": lambda args: None})


def test_a_handler_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        serve({"add": 42})  # type: ignore[dict-item]


def test_importing_serve_imports_no_trio_attrs_or_cattrs() -> None:
    code = (
        "import sys\n"
        "from nursemaid import serve\n"
        "print(sorted(m for m in ('trio', 'attrs', 'cattrs') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
