"""Pools of real worker processes: handshakes, ownership, crashes, envelopes, reaping."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest
import trio
import trio.testing

from nursemaid import (
    CheckoutTimeout,
    LocalProtocolError,
    RemoteError,
    RequestTimeout,
    StartError,
    UsageError,
    WorkerCrashed,
)
from nursemaid.protocol._envelope import CommandEnvelope
from nursemaid.testing._leaks import child_pids, open_fds
from nursemaid.workers._lifecycle import Transition, WorkerState
from nursemaid.workers._pool import Keep, Lease, Pool, PortWorkers, open_pool

CALC = [sys.executable, str(Path(__file__).parent / "workers" / "calc_worker.py")]

SERVE_WORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    from nursemaid import serve

    def wedge(args):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)

    def die(args):
        sys.stderr.write("about to be killed\\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    serve({
        "add": lambda args: args[0] + args[1],
        "pid": lambda args: os.getpid(),
        "fail": lambda args: 1 / 0,
        "wedge": wedge,
        "sleep": lambda args: time.sleep(args),
        "die": die,
    })
    """
)

# An existing program with its own envelope: {id, command, args} answered by
# {id, success, result | error}. Standard library only; nursemaid is not imported.
COMMAND_WORKER = textwrap.dedent(
    """
    import json, os, struct, sys
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = stdin.read(4)
        if len(header) < 4:
            break
        message = json.loads(stdin.read(struct.unpack(">I", header)[0]))
        command = message["command"]
        if command == "ping":
            reply = {"id": message["id"], "success": True, "result": "pong"}
        elif command == "upper":
            reply = {"id": message["id"], "success": True, "result": message["args"].upper()}
        else:
            reply = {"id": message["id"], "success": False, "error": "unknown " + command}
        data = json.dumps(reply).encode()
        stdout.write(struct.pack(">I", len(data)) + data)
        stdout.flush()
    """
)

NEVER_STARTS = textwrap.dedent(
    """
    import sys
    print("loading model weights...", file=sys.stderr)
    print("FileNotFoundError: weights.bin", file=sys.stderr)
    sys.exit(3)
    """
)


@pytest.fixture
def serve_worker(tmp_path: Path) -> list[str]:
    path = tmp_path / "serve_worker.py"
    path.write_text(SERVE_WORKER)
    return [sys.executable, str(path)]


def _script(tmp_path: Path, name: str, text: str) -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    return [sys.executable, "-I", str(path)]


async def test_execute_round_trips_to_real_workers(serve_worker: list[str]) -> None:
    async with open_pool(serve_worker, size=2) as pool:
        assert await pool.execute("add", [1, 2]) == 3
        pids = {w.pid for w in pool.statistics().workers}
        assert len(pids) == 2
        assert None not in pids
        with pytest.raises(RemoteError, match="ZeroDivisionError"):
            await pool.execute("fail")
        assert pool.statistics().restarts == 0


async def test_port_ownership_moves_to_the_client_and_back(serve_worker: list[str]) -> None:
    me = trio.lowlevel.current_task()
    async with open_pool(serve_worker, size=1) as pool:
        async with pool.checkout() as lease:
            assert lease.port.owner is me
            assert await lease.port.request("add", [2, 3]) == 5  # the port itself works
            port = lease.port
        assert port.owner is not me
        assert port.owner is not None


@pytest.mark.parametrize("via", ["lease.request", "lease.port.request"])
async def test_a_checkin_hook_resets_a_real_worker_so_the_next_client_starts_clean(
    via: str,
) -> None:
    me = trio.lowlevel.current_task()
    owners: list[object] = []

    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        owners.append(lease.port.owner)  # still the client's: the lease has not ended
        if via == "lease.request":
            await lease.request("reset")
        else:
            await lease.port.request("reset")
        return Keep()

    async with open_pool(CALC, size=1, handle_checkin=handle_checkin) as pool:
        async with pool.checkout() as lease:
            pid = lease.port.pid
            await lease.request("note", "secret")
            assert await lease.request("notes") == ["secret"]
        assert lease.port.owner is not me  # home again once the hook returned
        with pytest.raises(UsageError, match="lease of worker 0 has ended"):
            await lease.request("notes")
        await pool.execute("note", "another secret")
        async with pool.checkout() as lease:
            assert lease.port.pid == pid  # the same worker, kept
            assert await lease.request("notes") == []
        assert pool.statistics().restarts == 0
    assert owners == [me, me, me]


async def test_existing_program_with_its_own_envelope_is_pooled_unchanged(
    tmp_path: Path,
) -> None:
    argv = _script(tmp_path, "command_worker.py", COMMAND_WORKER)
    async with open_pool(argv, size=2, envelope=CommandEnvelope()) as pool:
        assert await pool.execute("upper", "abc") == "ABC"
        with pytest.raises(RemoteError, match="unknown frobnicate"):
            await pool.execute("frobnicate")
        assert pool.statistics().idle == 2


@pytest.mark.slow
async def test_eager_pool_of_a_program_that_never_starts_fails_with_its_stderr(
    tmp_path: Path,
) -> None:
    argv = _script(tmp_path, "never.py", NEVER_STARTS)
    children = child_pids()
    with pytest.raises(StartError, match="pool gave up") as info:
        async with open_pool(argv, size=2, intensity=2):
            pytest.fail("the pool must not open")  # pragma: no cover
    assert "FileNotFoundError: weights.bin" in info.value.stderr_tail
    assert "FileNotFoundError: weights.bin" in str(info.value)
    assert child_pids() == children


async def test_killed_idle_worker_is_replaced(serve_worker: list[str]) -> None:
    seen: list[object] = []
    replaced = trio.Event()

    def watch(event: object) -> None:
        seen.append(event)
        if isinstance(event, Transition) and (event.to_state, event.worker_id) == (
            WorkerState.IDLE,
            1,
        ):
            replaced.set()

    async with open_pool(serve_worker, size=1, subscribers=[watch]) as pool:
        pid = await pool.execute("pid")
        os.kill(pid, signal.SIGKILL)
        with trio.fail_after(10):
            await replaced.wait()  # the pool's own transition, no polling
        assert pool.statistics().restarts == 1
        assert await pool.execute("pid") != pid
    failed = [t for t in seen if isinstance(t, Transition) and t.to_state is WorkerState.FAILED]
    assert len(failed) == 1
    assert "status -9" in failed[0].cause


@pytest.mark.slow
async def test_slow_termination_runs_off_the_checkout_path(serve_worker: list[str]) -> None:
    async with open_pool(serve_worker, size=2, shutdown=0.5) as pool:
        with pytest.raises(Exception, match="no reply"):
            async with pool.checkout() as lease:
                await lease.request("wedge", timeout=0.2)
        # The wedged worker ignores stdin's close and SIGTERM: its close sequence
        # takes two graces. Meanwhile the other worker serves at once.
        with trio.fail_after(0.4):
            assert await pool.execute("add", [1, 1]) == 2
        assert pool.statistics().stopping == 1


async def test_closing_the_pool_reaps_every_process_and_closes_every_fd(
    serve_worker: list[str],
) -> None:
    fds, children = open_fds(), child_pids()
    async with open_pool(serve_worker, size=3) as pool:
        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(pool.execute, "add", [i, i])
    assert child_pids() == children
    assert open_fds() == fds


async def test_checkout_timeout_with_real_workers(serve_worker: list[str]) -> None:
    async with open_pool(serve_worker, size=1) as pool, pool.checkout():
        with pytest.raises(CheckoutTimeout):
            async with pool.checkout(timeout=0.05):
                pass  # pragma: no cover


@pytest.mark.parametrize("hooked", [False, True], ids=["no hooks", "handle_checkin"])
async def test_an_execute_that_sent_nothing_keeps_its_worker(
    fifo: tuple[str, int], hooked: bool
) -> None:
    # execute knows exactly what its lease did: when the error came before the
    # request was written (args JSON cannot encode; the time used up before the
    # write), the worker is as it was, so it stays. One that was sent and then
    # given up on is removed, its reply still owed. A pool with hooks takes
    # another path through execute: the same rule holds there, and the hook
    # still sees each error.
    seen: list[str] = []

    async def handle_checkin(lease: Lease, error: BaseException | None) -> Keep:
        seen.append(type(error).__name__)
        return Keep()

    hooks = {"handle_checkin": handle_checkin} if hooked else {}
    async with open_pool(CALC, size=1, health_interval=None, shutdown=0.1, **hooks) as pool:
        (pid,) = [w.pid for w in pool.statistics().workers]
        with pytest.raises(LocalProtocolError):
            await pool.execute("echo", {1, 2})
        with pytest.raises(RequestTimeout):
            await pool.execute("echo", 1, timeout=0)
        stats = pool.statistics()
        assert (stats.restarts, [w.pid for w in stats.workers]) == (0, [pid])
        assert seen == (["LocalProtocolError", "RequestTimeout"] if hooked else [])
        assert await pool.execute("echo", 3) == 3
        path, _release = fifo  # never released: the reply is owed for ever
        with pytest.raises(RequestTimeout):
            await pool.execute("wait", path, timeout=0.05)
        assert pool.statistics().restarts == 1
        assert await pool.execute("echo", 4) == 4  # from its replacement
        assert [w.pid for w in pool.statistics().workers if w.pid is not None] != [pid]


@pytest.mark.parametrize("via", ["lease.request", "lease.port.request"])
async def test_a_lease_whose_failed_requests_left_nothing_owed_keeps_its_worker(
    fifo: tuple[str, int], via: str
) -> None:
    # The pool asks the worker what a lease left owed, whichever way the lease
    # made its requests: one that raised before anything was sent owes nothing,
    # and a timed-out one whose late reply a later request read and discarded
    # owes nothing any more. A block that caught those errors and ended normally
    # hands back a clean worker, which stays.
    seen: list[object] = []
    async with open_pool(
        CALC, size=1, health_interval=None, shutdown=0.1, subscribers=[seen.append]
    ) as pool:
        (pid,) = [w.pid for w in pool.statistics().workers]
        path, release = fifo
        async with pool.checkout() as lease:
            request = lease.request if via == "lease.request" else lease.port.request
            with pytest.raises(LocalProtocolError):
                await request("echo", {1, 2})
            with pytest.raises(RequestTimeout):
                await request("wait", path, timeout=0.05)
            assert lease.port.abandoned_requests == 1
            os.write(release, b"late\n")
            assert await request("echo", 3) == 3  # after reading the late reply
            assert lease.port.abandoned_requests == 0
        stats = pool.statistics()
        assert (stats.restarts, [w.pid for w in stats.workers]) == (0, [pid])
        # One still owed at the end of the block removes the worker, as before.
        async with pool.checkout() as lease:
            request = lease.request if via == "lease.request" else lease.port.request
            with pytest.raises(RequestTimeout):
                await request("wait", path, timeout=0.05)
        assert pool.statistics().restarts == 1
    causes = [
        t.cause for t in seen if isinstance(t, Transition) and t.to_state is WorkerState.STOPPING
    ]
    owed = (
        "a request in flight"
        if via == "lease.request"
        else "1 abandoned request(s) still unanswered"
    )
    assert causes[0] == f"its lease ended with {owed} (no exception)"


@pytest.mark.slow
async def test_a_lease_that_abandoned_a_port_request_never_lends_that_worker_again(
    serve_worker: list[str],
) -> None:
    seen: list[object] = []
    async with open_pool(serve_worker, size=1, shutdown=0.1, subscribers=[seen.append]) as pool:
        async with pool.checkout() as lease:
            busy = lease.port.pid
            with pytest.raises(RequestTimeout):
                await lease.port.request("sleep", 30, timeout=0.05)
        # The block ended normally, but the worker is still sleeping on a request
        # nobody waits for: the next client must get a fresh worker.
        assert await pool.execute("pid") != busy
        async with pool.checkout() as lease:
            cancelled = lease.port.pid
            with trio.move_on_after(0.05):
                await lease.port.request("sleep", 30)
        assert await pool.execute("pid") != cancelled
        # A request that was abandoned and then answered (its late reply read by a
        # later request in the same lease) leaves a clean worker: it stays.
        async with pool.checkout() as lease:
            kept = lease.port.pid
            with pytest.raises(RequestTimeout):
                await lease.port.request("sleep", 0.1, timeout=0.01)
            assert await lease.port.request("add", [1, 1]) == 2
        assert await pool.execute("pid") == kept
        assert pool.statistics().restarts == 2
    causes = [
        t.cause for t in seen if isinstance(t, Transition) and t.to_state is WorkerState.STOPPING
    ]
    assert (
        causes[:2]
        == ["its lease ended with 1 abandoned request(s) still unanswered (no exception)"] * 2
    )


@pytest.mark.parametrize("how", ["execute", "lease.request", "lease.port.request"])
async def test_a_worker_killed_mid_request_raises_worker_crashed_and_is_replaced(
    serve_worker: list[str], how: str
) -> None:
    async def die(pool: Pool) -> None:
        if how == "execute":
            await pool.execute("die")
            return
        async with pool.checkout() as lease:
            request = lease.request if how == "lease.request" else lease.port.request
            await request("die")

    async with open_pool(serve_worker, size=1) as pool:
        with pytest.raises(WorkerCrashed) as info:
            await die(pool)
        assert info.value.returncode == -signal.SIGKILL
        assert "about to be killed" in info.value.stderr_tail
        assert "about to be killed" in str(info.value)
        assert await pool.execute("add", [2, 2]) == 4  # served by the replacement
        assert pool.statistics().restarts == 1


_FAILS_AT_START = textwrap.dedent(
    """
    import sys
    sys.stderr.write("init failed: cannot load model XYZ\\n")
    sys.exit(7)
    """
)


@pytest.mark.slow
async def test_a_pool_that_gives_up_names_the_returncode_and_the_stderr_tail_once() -> None:
    with trio.fail_after(10), pytest.raises(StartError) as info:
        async with open_pool([sys.executable, "-c", _FAILS_AT_START], size=1, intensity=1):
            pass  # pragma: no cover
    message = str(info.value)
    assert message.count("(returncode 7)") == 1, message
    assert message.count("last stderr lines:") == 1, message
    assert message.startswith(
        "pool gave up: 2 worker starts failed in a row (more than intensity=1); "
        "last failure: pool worker 1 handshake ('ping') failed: WorkerCrashed: "
    )
    tail = "\nlast stderr lines:\ninit failed: cannot load model XYZ"
    assert message.endswith(f" (returncode 7){tail}")
    assert (info.value.returncode, info.value.stderr_tail) == (
        7,
        "init failed: cannot load model XYZ\n",
    )


@pytest.mark.parametrize("own_group", [True, False])
async def test_pool_workers_lead_their_own_process_groups_unless_told_not_to(
    tmp_path: Path, own_group: bool
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(SERVE_WORKER)
    factory = PortWorkers((sys.executable, str(script)), process_group=own_group)
    with trio.fail_after(20):
        async with open_pool(factory, size=1) as pool:
            pid = await pool.execute("pid")
            assert os.getpgid(pid) == (pid if own_group else os.getpgid(0))
