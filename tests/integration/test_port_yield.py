"""A port yields the CPU once before it waits for a reply, and stops when that never pays.

The worker here answers only when the test writes to a FIFO, so the port's first
read always finds nothing, and the test decides whether the answer is there after
the yield: the stand-in for ``sched_yield`` either releases the worker and waits
until its reply is readable (the worker ran during our yield, as it does when it
shares our CPU), or does nothing (it runs on another CPU, so the yield brought
nothing). See docs/ports.md, "How a request waits".
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from nursemaid import Port, open_port
from nursemaid.workers import _port

WORKERS = Path(__file__).parent / "workers"
CALC = [sys.executable, str(WORKERS / "calc_worker.py")]
BOUND = 20  # seconds: a generous fail_after for anything that waits on a real process


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A FIFO the calc worker's ``wait`` op blocks on, and our end to release it."""
    path = tmp_path / "release"
    os.mkfifo(path)
    fd = os.open(path, os.O_RDWR)  # on Linux this never blocks, and keeps a writer present
    yield str(path), fd
    os.close(fd)


def answering_yield(port_box: list[Port], release: int, line: bytes) -> Callable[[], None]:
    """A ``sched_yield`` during which the worker answers: release it, wait for the reply."""

    def fake_yield() -> None:
        os.write(release, line)
        readable, _, _ = select.select([port_box[0]._stdout_fd], [], [], BOUND)
        assert readable, "the worker did not answer"

    return fake_yield


async def test_a_reply_ready_after_the_yield_is_read_without_waiting(
    fifo: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, release = fifo
    box: list[Port] = []
    waits: list[int] = []
    real_wait = _port._wait_readable

    async def counting_wait(fd: int) -> None:
        waits.append(fd)
        await real_wait(fd)

    monkeypatch.setattr(_port, "_sched_yield", answering_yield(box, release, b"first\n"))
    monkeypatch.setattr(_port, "_wait_readable", counting_wait)
    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            box.append(port)
            port._misses = 2  # one miss short of giving up: a hit starts the count again
            assert await port.request("wait", path) == "first"
            assert waits == []
            assert port._misses == 0
            # The message level takes the same path.
            monkeypatch.setattr(_port, "_sched_yield", answering_yield(box, release, b"second\n"))
            await port.send({"id": 99, "op": "wait", "args": path})
            assert await port.receive() == {"id": 99, "result": "second"}
            assert waits == []


async def test_yields_that_bring_nothing_stop_and_are_retried_now_and_then(
    fifo: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, release = fifo
    yields: list[int] = []
    monkeypatch.setattr(_port, "_sched_yield", lambda: yields.append(1))

    async def release_when_blocked() -> None:
        await trio.testing.wait_all_tasks_blocked()
        os.write(release, b"late\n")

    async def one_late_request(port: Port) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(release_when_blocked)
            assert await port.request("wait", path) == "late"

    with trio.fail_after(BOUND):
        async with open_port(CALC) as port:
            for n in range(1, _port._YIELD_MISSES + 1):
                await one_late_request(port)
                assert (len(yields), port._misses) == (n, n)
            # Given up: the next _YIELD_PROBE - 1 chances are passed up...
            for _ in range(_port._YIELD_PROBE - 1):
                await one_late_request(port)
            assert len(yields) == _port._YIELD_MISSES
            # ...and the one after them tries again.
            await one_late_request(port)
            assert len(yields) == _port._YIELD_MISSES + 1
            assert port._misses == _port._YIELD_MISSES + 1
            # Still given up: a quick request reads its reply or waits, without a yield.
            assert await port.request("echo", "quick") == "quick"
            assert len(yields) == _port._YIELD_MISSES + 1
