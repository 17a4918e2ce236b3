"""Shared helpers for nursemaid's benchmarks: CPU placement, interleaved trials, tables.

CPU placement comes from the anchors' own harness (``../shared/anchors/peers_bench.py``,
beside this repository), imported rather than copied, so that our figures and the
anchor figures in ``../shared/anchors/RESULTS.md`` are taken the same way. Read that
file for why: on a small VM a ping-pong across two vCPUs pays an idle-CPU wake-up on
every hop, so per-message cost is compared with everything on one core (``1cpu``),
and a ratio is only ever taken within one run and one placement.

Rules:
    * Trials are interleaved: trial 1 of every case, then trial 2 of every case...
      so that a noisy neighbour slows all cases alike instead of one.
    * A figure is the median of its trials; the table also shows min-max.
    * Placement is applied after warm-up, to every thread of this process and of
      every descendant (workers a library spawned included).
"""

from __future__ import annotations

import importlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import ModuleType

ANCHORS = Path(__file__).resolve().parent.parent.parent / "shared" / "anchors"


def _load_anchors() -> ModuleType:
    if not (ANCHORS / "peers_bench.py").is_file():
        raise ImportError(
            f"the benchmarks need the anchors' harness at {ANCHORS / 'peers_bench.py'} "
            f"(../shared/anchors beside the repository); see ../shared/anchors/RESULTS.md"
        )
    # On sys.path (not loaded from a file spec) so that process pools, whose
    # workers unpickle peers_bench.echo by name, can import it too.
    if str(ANCHORS) not in sys.path:
        sys.path.append(str(ANCHORS))
    return importlib.import_module("peers_bench")


peers: ModuleType = _load_anchors()
"""The anchors' ``peers_bench`` module: its ``bench_raw``, ``bench_trio_proc``,
``bench_trio_parallel``, ``PAYLOAD``, ``WORKER`` (the stdlib echo worker) and more."""

MODES: tuple[str, ...] = tuple(peers.MODES)
"""The placements: ``1cpu``, ``split`` (parent on CPU 0, workers on CPU 1), ``unpinned``."""
ECHO_WORKER: str = peers.WORKER
"""The anchors' stdlib ``{packet, 4}`` echo worker (blocking os.read/os.write)."""


def place(mode: str) -> None:
    """Pin this process and all its descendants for placement *mode* (see ``MODES``).

    Also sets the anchors' current mode, which their own ``bench_*`` functions apply
    after their warm-up.
    """
    peers.MODE = mode
    peers.place(mode)


def unpin() -> None:
    """Undo any placement: every thread of this process and its children on every CPU."""
    place("unpinned")


async def timed_loops(
    loops: Sequence[Callable[[], Awaitable[object]]], duration: float, batch: int = 16
) -> tuple[int, float]:
    """Run each async *loop* step repeatedly in its own task for *duration* seconds.

    Returns:
        ``(operations, elapsed seconds)`` summed over the tasks, as the anchors count.
    """
    import trio

    deadline = time.perf_counter() + duration
    out: list[tuple[int, float, float]] = []

    async def run(step: Callable[[], Awaitable[object]]) -> None:
        ops, start = 0, time.perf_counter()
        while True:
            for _ in range(batch):
                await step()
            ops += batch
            if time.perf_counter() >= deadline:
                break
        out.append((ops, start, time.perf_counter()))

    async with trio.open_nursery() as nursery:
        for step in loops:
            nursery.start_soon(run, step)
    return sum(o[0] for o in out), max(o[2] for o in out) - min(o[1] for o in out)


async def timed_loop(
    step: Callable[[], Awaitable[object]], duration: float, batch: int = 16
) -> tuple[int, float]:
    """Run *step* repeatedly in the calling task for *duration* seconds.

    For things only the calling task may use (a port it owns).

    Returns:
        ``(operations, elapsed seconds)``.
    """
    ops, start = 0, time.perf_counter()
    deadline = start + duration
    while True:
        for _ in range(batch):
            await step()
        ops += batch
        now = time.perf_counter()
        if now >= deadline:
            return ops, now - start


Case = Callable[[float], tuple[int, float]]
"""A measurement: given a duration, return ``(operations, elapsed seconds)``."""


def interleaved(
    cases: dict[str, Case], *, modes: Sequence[str], trials: int, duration: float
) -> dict[tuple[str, str], list[float]]:
    """Run every case in every placement, trials interleaved; return rates per (mode, case)."""
    rates: dict[tuple[str, str], list[float]] = {}
    for trial in range(trials):
        for mode in modes:
            for name, case in cases.items():
                peers.MODE = mode
                ops, elapsed = case(duration)
                unpin()
                rate = ops / elapsed
                rates.setdefault((mode, name), []).append(rate)
                print(
                    f"  trial {trial + 1} {mode:<8} {name:<22} {rate:>12,.0f}/s",
                    file=sys.stderr,
                    flush=True,
                )
    peers.MODE = "unpinned"
    return rates


def add_trio_parallel(cases: dict[str, Case]) -> None:
    """Add the trio-parallel peer rows (1 and 2 callers) when it is installed."""
    try:
        import trio_parallel  # noqa: F401
    except ImportError:
        print("trio-parallel is not installed: its rows are skipped", file=sys.stderr)
        return
    cases["tpar_1c"] = lambda d: peers.bench_trio_parallel(1, d)
    cases["tpar_2c"] = lambda d: peers.bench_trio_parallel(2, d)


def median(values: Sequence[float]) -> float:
    """The median (the figure every table shows)."""
    return statistics.median(values)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str) -> str:
    """A markdown table; *align* has one letter per column: ``l`` or ``r``."""
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def rate(value: float) -> str:
    """Format operations per second: ``123,456``."""
    return f"{value:,.0f}"
