"""How fast the pool is, beside what it is measured against (issue 4's targets).

Rows, each the median of ``--trials`` interleaved trials of ``--duration`` seconds,
all in the one-core placement (this process and every worker pinned to the first
CPU after warm-up: pure per-message cost, no cross-core wake-ups; see
``../shared/anchors/RESULTS.md`` for why):

=====================  ========================================================
pool_checkout          ``async with pool.checkout(): pass``, in-process worker
limiter                ``async with trio.CapacityLimiter(1): pass`` (target: pool >= 50 %)
pool_execute_1w/2w     ``await pool.execute("echo", msg)`` to 1 / 2 ``serve`` workers,
                       1 / 2 client tasks, ~100-byte JSON messages
trio_loop_1w/2w        the minimal Trio framed loop: ``send_all`` a frame,
                       ``receive_some`` the echo, on ``trio.lowlevel.open_process``
                       pipes to a stdlib echo worker (target: pool >= 75 %)
trio_loop_serve_1w/2w  the same loop, but to the very ``serve`` worker the pool
                       uses (JSON on the far side)
port_request_1w        ``port.request("echo", msg)`` on a bare port to that worker:
                       the difference to pool_execute_1w is what the pool adds
trio_parallel_1c/2c    ``trio_parallel.run_sync(echo, msg)`` (target: pool >= 4x)
ppe_1c/2c              ``ProcessPoolExecutor(2).submit(echo, msg).result()`` from
                       1 / 2 threads (target: pool >= 5x)
=====================  ========================================================

and a latency table: 200 client tasks hammering a pool of 4 ``serve`` workers with
``execute``, p50 / p99 / max of each call's wall time.

Run ``python bench/bench_pool.py [--duration 2] [--trials 3] [--markdown OUT]``;
``bench/run.py`` calls :func:`main`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PAYLOAD_TEXT = "x" * 60  # {"id":N,"op":"echo","args":{"text":"xxx…"}} is ~100 bytes

# A stdlib echo worker speaking {packet,4}: the floor the Trio loop talks to.
ECHO_WORKER = textwrap.dedent(
    """
    import os
    read, write = os.read, os.write
    buf = b""
    while True:
        chunk = read(0, 65536)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big")
            if len(buf) < 4 + n:
                break
            frame, buf = buf[: 4 + n], buf[4 + n :]
            write(1, frame)
    """
)

SERVE_WORKER = textwrap.dedent(
    """
    from nursemaid import serve
    serve({"echo": lambda args: args})
    """
)


def _echo(message: bytes) -> bytes:  # module level: process pools pickle it
    return message


# ---------------------------------------------------------------------------
# placement: one core for this process and all its descendants
# ---------------------------------------------------------------------------


def _descendants(root: int) -> list[int]:
    parent_of: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{name}/stat").read_text()
                parent_of[int(name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        frontier = [pid for pid, parent in parent_of.items() if parent in frontier]
        found += frontier
    return found


def place_one_core() -> None:
    """Pin this process's threads and every descendant's to the first allowed CPU."""
    try:
        from bench import _harness  # helper R's shared harness, when present

        _harness.place("1cpu")
        return
    except (ImportError, AttributeError):
        pass
    cpu = {min(os.sched_getaffinity(0))}
    for pid in [os.getpid(), *_descendants(os.getpid())]:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), cpu)


# ---------------------------------------------------------------------------
# measurements: each returns operations per second
# ---------------------------------------------------------------------------


async def _timed(loops: Sequence[Callable[[], Any]], duration: float, batch: int) -> float:
    import trio

    deadline = time.perf_counter() + duration
    counts: list[int] = []
    start = time.perf_counter()

    async def run(one: Callable[[], Any]) -> None:
        ops = 0
        while time.perf_counter() < deadline:
            for _ in range(batch):
                await one()
            ops += batch
        counts.append(ops)

    async with trio.open_nursery() as nursery:
        for one in loops:
            nursery.start_soon(run, one)
    return sum(counts) / (time.perf_counter() - start)


def bench_pool_checkout(duration: float) -> float:
    import trio

    from nursemaid.workers import InProcessWorkers, open_pool

    async def main() -> float:
        async with open_pool(InProcessWorkers({}), size=1, health_interval=None) as pool:
            checkout = pool.checkout

            async def one() -> None:
                async with checkout():
                    pass

            for _ in range(2000):
                await one()
            place_one_core()
            return await _timed([one], duration, 256)

    return trio.run(main)


def bench_limiter(duration: float) -> float:
    import trio

    async def main() -> float:
        limiter = trio.CapacityLimiter(1)

        async def one() -> None:
            async with limiter:
                pass

        for _ in range(2000):
            await one()
        place_one_core()
        return await _timed([one], duration, 256)

    return trio.run(main)


def bench_pool_execute(workers: int, duration: float, worker_path: str) -> float:
    import trio

    from nursemaid.workers import open_pool

    args = {"text": PAYLOAD_TEXT}

    async def main() -> float:
        async with open_pool(
            [sys.executable, worker_path], size=workers, health_interval=None
        ) as pool:
            execute = pool.execute

            async def one() -> None:
                await execute("echo", args)

            for _ in range(200):
                await one()
            place_one_core()
            return await _timed([one] * workers, duration, 16)

    return trio.run(main)


def bench_port_request(duration: float, worker_path: str) -> float:
    import trio

    from nursemaid.workers import open_port

    args = {"text": PAYLOAD_TEXT}

    async def main() -> float:
        async with open_port([sys.executable, worker_path]) as port:
            request = port.request

            async def one() -> None:
                await request("echo", args)

            for _ in range(200):
                await one()
            place_one_core()
            # In this task (the port's owner), with _timed's batching.
            deadline = time.perf_counter() + duration
            ops, start = 0, time.perf_counter()
            while time.perf_counter() < deadline:
                for _ in range(16):
                    await one()
                ops += 16
            return ops / (time.perf_counter() - start)

    return trio.run(main)


def bench_trio_loop(workers: int, duration: float, echo_path: str) -> float:
    import trio

    message = b'{"id":1,"op":"echo","args":{"text":"' + PAYLOAD_TEXT.encode() + b'"}}'
    frame = len(message).to_bytes(4, "big") + message

    async def main() -> float:
        procs = [
            await trio.lowlevel.open_process(
                [sys.executable, echo_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            for _ in range(workers)
        ]

        def round_trip(proc: Any) -> Callable[[], Any]:
            async def one() -> None:
                await proc.stdin.send_all(frame)
                got = await proc.stdout.receive_some(65536)
                while len(got) < 4 or len(got) < 4 + int.from_bytes(got[:4], "big"):
                    got += await proc.stdout.receive_some(65536)

            return one

        loops = [round_trip(p) for p in procs]
        for one in loops:
            for _ in range(200):
                await one()
        place_one_core()
        rate = await _timed(loops, duration, 16)
        for proc in procs:
            await proc.stdin.aclose()
            await proc.wait()
            await proc.stdout.aclose()
        return rate

    return trio.run(main)


def bench_trio_parallel(callers: int, duration: float) -> float:
    import trio
    import trio_parallel

    message = PAYLOAD_TEXT.encode()

    async def main() -> float:
        async def one() -> None:
            await trio_parallel.run_sync(_echo, message)

        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(one)
        for _ in range(100):
            await one()
        place_one_core()
        return await _timed([one] * callers, duration, 16)

    return trio.run(main)


def bench_ppe(callers: int, duration: float) -> float:
    from concurrent.futures import ProcessPoolExecutor

    message = PAYLOAD_TEXT.encode()
    with ProcessPoolExecutor(2) as executor:
        list(executor.map(_echo, [message] * 8))
        place_one_core()
        counts: list[int] = []
        deadline = time.perf_counter() + duration
        start = time.perf_counter()

        def loop() -> None:
            ops = 0
            while time.perf_counter() < deadline:
                for _ in range(16):
                    executor.submit(_echo, message).result()
                ops += 16
            counts.append(ops)

        threads = [threading.Thread(target=loop) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(counts) / (time.perf_counter() - start)


def bench_latency(clients: int, size: int, duration: float, worker_path: str) -> list[float]:
    import trio

    from nursemaid.workers import open_pool

    args = {"text": PAYLOAD_TEXT}

    async def main() -> list[float]:
        samples: list[float] = []
        async with open_pool(
            [sys.executable, worker_path], size=size, health_interval=None
        ) as pool:
            for _ in range(200):
                await pool.execute("echo", args)
            place_one_core()
            deadline = time.perf_counter() + duration

            async def client() -> None:
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    await pool.execute("echo", args, timeout=60)
                    samples.append(time.perf_counter() - t0)

            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(client)
        return samples

    return trio.run(main)


# ---------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--markdown", help="also write the tables to this file")
    options = parser.parse_args(argv)
    d = options.duration
    with tempfile.TemporaryDirectory() as tmp:
        echo_path = str(Path(tmp) / "echo_worker.py")
        serve_path = str(Path(tmp) / "serve_worker.py")
        Path(echo_path).write_text(ECHO_WORKER)
        Path(serve_path).write_text(SERVE_WORKER)
        cases: dict[str, Callable[[], float]] = {
            "pool_checkout": lambda: bench_pool_checkout(d),
            "limiter": lambda: bench_limiter(d),
            "pool_execute_1w": lambda: bench_pool_execute(1, d, serve_path),
            "pool_execute_2w": lambda: bench_pool_execute(2, d, serve_path),
            "trio_loop_1w": lambda: bench_trio_loop(1, d, echo_path),
            "trio_loop_2w": lambda: bench_trio_loop(2, d, echo_path),
            "trio_loop_serve_1w": lambda: bench_trio_loop(1, d, serve_path),
            "trio_loop_serve_2w": lambda: bench_trio_loop(2, d, serve_path),
            "port_request_1w": lambda: bench_port_request(d, serve_path),
        }
        try:
            import trio_parallel  # noqa: F401

            cases["trio_parallel_1c"] = lambda: bench_trio_parallel(1, d)
            cases["trio_parallel_2c"] = lambda: bench_trio_parallel(2, d)
        except ImportError:
            print("trio-parallel is not installed: its rows are skipped", file=sys.stderr)
        cases["ppe_1c"] = lambda: bench_ppe(1, d)
        cases["ppe_2c"] = lambda: bench_ppe(2, d)
        results: dict[str, list[float]] = {name: [] for name in cases}
        for trial in range(options.trials):
            for name, case in cases.items():
                results[name].append(case())
                print(f"trial {trial + 1} {name}: {results[name][-1]:,.0f}/s", file=sys.stderr)
        latency = bench_latency(200, 4, d * options.trials, serve_path)
    median = {name: statistics.median(values) for name, values in results.items()}
    lines = [
        "| row | ops/s (median) | µs/op | min-max | vs | ratio | target |",
        "|---|---:|---:|---:|---|---:|---|",
    ]

    def row(name: str, versus: str | None = None, target: str = "") -> None:
        rate = median[name]
        low, high = min(results[name]), max(results[name])
        ratio = f"{rate / median[versus]:.2f}" if versus and versus in median else ""
        lines.append(
            f"| {name} | {rate:,.0f} | {1e6 / rate:.2f} | {low:,.0f}-{high:,.0f} | "
            f"{versus or ''} | {ratio} | {target} |"
        )

    row("limiter")
    row("pool_checkout", "limiter", "≥ 0.50")
    for n in ("1w", "2w"):
        row(f"trio_loop_{n}")
        row(f"pool_execute_{n}", f"trio_loop_{n}", "≥ 0.75")
        row(f"trio_loop_serve_{n}")
        row(f"pool_execute_{n}", f"trio_loop_serve_{n}", "(same worker)")
    row("port_request_1w")
    row("pool_execute_1w", "port_request_1w", "(what the pool adds)")
    for n, c in (("1w", "1c"), ("2w", "2c")):
        if f"trio_parallel_{c}" in median:
            row(f"trio_parallel_{c}")
            lines.append(
                f"| pool_execute_{n} vs trio_parallel_{c} | | | | | "
                f"{median[f'pool_execute_{n}'] / median[f'trio_parallel_{c}']:.1f}x | ≥ 4x |"
            )
        row(f"ppe_{c}")
        lines.append(
            f"| pool_execute_{n} vs ppe_{c} | | | | | "
            f"{median[f'pool_execute_{n}'] / median[f'ppe_{c}']:.1f}x | ≥ 5x |"
        )
    lines += [
        "",
        "| 200 clients, pool of 4 serve workers, execute | calls | p50 µs | p99 µs | max µs |",
        "|---|---:|---:|---:|---:|",
        f"| one core | {len(latency):,} | {_percentile(latency, 0.5) * 1e6:,.0f} | "
        f"{_percentile(latency, 0.99) * 1e6:,.0f} | {max(latency) * 1e6:,.0f} |",
    ]
    table = "\n".join(lines)
    print(table)
    if options.markdown:
        Path(options.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
