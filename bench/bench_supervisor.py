"""How fast a nursemaid supervisor is, beside triotp and a plain Trio nursery (issue 3).

Rows, each the median of ``--trials`` trials, this process pinned to one CPU:

=======================  ==================================================================
start_stop               start N children (each calls ``task_status.started``) and stop
                         them all (reverse order, one at a time), ms (target: 10k < 1 s)
restart_latency          one-for-one: a child raises → its replacement is running, µs,
                         median and p99 over many crashes (target: < 200 µs)
memory_per_child         bytes allocated per running supervised child (tracemalloc)
=======================  ==================================================================

Each measured for **nursemaid** (``Supervisor`` with ``ChildSpec`` defaults),
**triotp** 0.2.1 (``supervisor.start``; it pins trio<0.20, so it runs in its own
venv, ``bench/.venv-triotp``, created on first use with ``pip install trio Logbook
"tenacity<9" trio-util`` and ``pip install --no-deps triotp``, beside current trio,
and is driven as a subprocess in the same run), and a **plain nursery**
(``start_soon`` + cancel: no supervision at all, the floor).

Both supervisors' crash logging is silenced (nursemaid's logger set to ERROR,
triotp's logbook to a NullHandler): formatting a traceback per crash would
measure the logging, not the supervisor. Note what "started" means: nursemaid
waits for each child to call ``started`` before the next starts (OTP's
``start_link``); triotp reports started before its child runs; both rows measure
until every child is running.

Run ``python bench/bench_supervisor.py [--children 10000] [--trials 3] [--markdown OUT]``;
``bench/run.py`` calls :func:`main`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TRIOTP_VENV = HERE / ".venv-triotp"


def pin_one_cpu() -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------- shared by the rows
# Plain module-level code, no nursemaid import: the triotp rows run this file in
# their own venv.


class Allocated:
    """Bytes allocated (tracemalloc) inside a ``with Allocated() as a:`` block: ``a.bytes``."""

    bytes = 0

    def __enter__(self) -> Allocated:
        tracemalloc.start()
        self._before = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bytes = tracemalloc.get_traced_memory()[0] - self._before
        tracemalloc.stop()


def sleeping_children(n: int) -> tuple[Callable[[], Awaitable[None]], Any]:
    """A child that sleeps forever, and a ``trio.Event`` set once *n* of them run.

    For the rows whose children have no ``task_status`` (plain nursery, triotp):
    they count as started when the event is set. Call inside ``trio.run``.
    """
    import trio

    all_up = trio.Event()
    running = 0

    async def child() -> None:
        nonlocal running
        running += 1
        if running == n:
            all_up.set()
        await trio.sleep_forever()

    return child, all_up


class CrashLoop:
    """One child crashed over and over, timing each crash until its replacement runs.

    The child calls :meth:`replaced` first thing (ending the previous sample), then,
    once it counts as started, ``await crash_when_told()``; :meth:`drive` tells it.
    Call inside ``trio.run``.
    """

    class Crash(Exception):
        pass

    def __init__(self) -> None:
        import trio

        self.samples: list[float] = []
        self._t0: int | None = None
        self._running = trio.Event()
        self._go = trio.Event()

    def replaced(self) -> None:
        if self._t0 is not None:
            self.samples.append((time.perf_counter_ns() - self._t0) / 1e3)

    async def crash_when_told(self) -> None:
        self._running.set()
        await self._go.wait()
        self._t0 = time.perf_counter_ns()
        raise self.Crash

    async def drive(self, crashes: int) -> list[float]:
        """Crash the child *crashes* times; return the samples past the warm-up."""
        import trio

        await self._running.wait()
        for _ in range(crashes):
            self._running = trio.Event()
            told, self._go = self._go, trio.Event()
            told.set()
            await self._running.wait()
        return self.samples[len(self.samples) // 10 :]  # drop warm-up


# --------------------------------------------------------------------- nursemaid


def nursemaid_start_stop(n: int) -> dict[str, float]:
    import trio

    from nursemaid import ChildSpec, Supervisor

    async def child(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    specs = [ChildSpec(i, child) for i in range(n)]

    async def main() -> dict[str, float]:
        sup = Supervisor(specs)
        async with trio.open_nursery() as nursery:
            t0 = time.perf_counter()
            await nursery.start(sup.run)
            t1 = time.perf_counter()
            await sup.stop()
            t2 = time.perf_counter()
        return {"start_ms": (t1 - t0) * 1e3, "stop_ms": (t2 - t1) * 1e3}

    return trio.run(main)


def nursemaid_restart_latency(crashes: int) -> list[float]:
    import trio

    from nursemaid import ChildSpec, Supervisor

    async def main() -> list[float]:
        loop = CrashLoop()

        async def child(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            loop.replaced()
            task_status.started()
            await loop.crash_when_told()

        sup = Supervisor([ChildSpec("c", child)], intensity=10**9, period=1.0)
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            samples = await loop.drive(crashes)
            await sup.stop()
        return samples

    return trio.run(main)


def nursemaid_memory(n: int) -> float:
    import trio

    from nursemaid import ChildSpec, Supervisor

    async def child(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    async def main() -> float:
        sup = Supervisor()
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            specs = [ChildSpec(i, child) for i in range(n)]
            with Allocated() as allocated:
                for spec in specs:
                    await sup.start_child(spec)
            await sup.stop()
        return allocated.bytes / n

    return trio.run(main)


def plain_start_stop(n: int) -> dict[str, float]:
    import trio

    async def main() -> dict[str, float]:
        child, all_up = sleeping_children(n)
        t0 = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(child)
            await all_up.wait()
            t1 = time.perf_counter()
            nursery.cancel_scope.cancel()
        t2 = time.perf_counter()
        return {"start_ms": (t1 - t0) * 1e3, "stop_ms": (t2 - t1) * 1e3}

    return trio.run(main)


def plain_memory(n: int) -> float:
    import trio

    async def main() -> float:
        child, all_up = sleeping_children(n)
        async with trio.open_nursery() as nursery:
            with Allocated() as allocated:
                for _ in range(n):
                    nursery.start_soon(child)
                await all_up.wait()
            nursery.cancel_scope.cancel()
        return allocated.bytes / n

    return trio.run(main)


# ------------------------------------------------------------------------ triotp
# These run inside bench/.venv-triotp (``--triotp-part``): nursemaid is not imported.


def triotp_start_stop(n: int) -> dict[str, float]:
    import trio
    from triotp import supervisor

    async def main() -> dict[str, float]:
        child, all_up = sleeping_children(n)
        specs = [supervisor.child_spec(id=f"c{i}", task=child, args=[]) for i in range(n)]
        t0 = time.perf_counter()
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.start, specs, supervisor.options())
            await all_up.wait()
            t1 = time.perf_counter()
            nursery.cancel_scope.cancel()
        t2 = time.perf_counter()
        return {"start_ms": (t1 - t0) * 1e3, "stop_ms": (t2 - t1) * 1e3}

    return trio.run(main)


def triotp_restart_latency(crashes: int) -> list[float]:
    import trio
    from triotp import supervisor

    async def main() -> list[float]:
        loop = CrashLoop()

        async def child() -> None:
            loop.replaced()
            await loop.crash_when_told()

        spec = supervisor.child_spec(id="c", task=child, args=[])
        options = supervisor.options(max_restarts=10**9, max_seconds=1)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.start, [spec], options)
            samples = await loop.drive(crashes)
            nursery.cancel_scope.cancel()
        return samples

    return trio.run(main)


def triotp_memory(n: int) -> float:
    import trio
    from triotp import supervisor

    async def main() -> float:
        child, all_up = sleeping_children(n)
        specs = [supervisor.child_spec(id=f"c{i}", task=child, args=[]) for i in range(n)]
        async with trio.open_nursery() as nursery:
            with Allocated() as allocated:
                await nursery.start(supervisor.start, specs, supervisor.options())
                await all_up.wait()
            nursery.cancel_scope.cancel()
        return allocated.bytes / n

    return trio.run(main)


def triotp_part(children: int, crashes: int, trials: int) -> dict[str, Any]:
    import importlib.metadata as md

    import logbook

    logbook.NullHandler().push_application()
    out: dict[str, Any] = {
        "versions": {p: md.version(p) for p in ("triotp", "trio", "trio-util", "tenacity")},
        "start_stop": [triotp_start_stop(children) for _ in range(trials)],
        "restart": [triotp_restart_latency(crashes) for _ in range(trials)],
        "memory": [triotp_memory(children) for _ in range(trials)],
    }
    return out


def ensure_triotp_venv() -> Path | None:
    """Return the triotp venv's python, creating the venv when absent (None if that fails)."""
    python = TRIOTP_VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {TRIOTP_VENV} for triotp (once)", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(TRIOTP_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "trio", "Logbook", "tenacity<9", "trio-util"], check=True)
        subprocess.run([*pip, "--no-deps", "triotp"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"could not create the triotp venv: {exc}; its rows are skipped", file=sys.stderr)
        return None
    return python


def run_triotp(children: int, crashes: int, trials: int) -> dict[str, Any] | None:
    python = ensure_triotp_venv()
    if python is None:
        return None
    cmd = [str(python), str(Path(__file__).resolve()), "--triotp-part"]
    cmd += ["--children", str(children), "--crashes", str(crashes), "--trials", str(trials)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        print(f"triotp part failed: {proc.stderr[-2000:]}", file=sys.stderr)
        return None
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -------------------------------------------------------------------------- main


def summarise(
    start_stop: list[dict[str, float]], restart: list[list[float]], memory: list[float]
) -> dict[str, float]:
    samples = [s for trial in restart for s in trial]
    return {
        "start_ms": statistics.median(t["start_ms"] for t in start_stop),
        "stop_ms": statistics.median(t["stop_ms"] for t in start_stop),
        "total_ms": statistics.median(t["start_ms"] + t["stop_ms"] for t in start_stop),
        "restart_p50_us": statistics.median(samples) if samples else float("nan"),
        "restart_p99_us": percentile(samples, 0.99) if samples else float("nan"),
        "memory_b": statistics.median(memory),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--crashes", type=int, default=2_000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--no-triotp", action="store_true", help="skip the triotp rows")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--triotp-part", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    pin_one_cpu()
    n, crashes, trials = options.children, options.crashes, options.trials
    if options.triotp_part:
        print(json.dumps(triotp_part(n, crashes, trials)))
        return 0

    import logging

    logging.getLogger("nursemaid.supervisor").setLevel(logging.ERROR)
    # Trials are interleaved (nursemaid, triotp, plain nursery, then again) so that
    # load from anything else on the machine hits every implementation alike.
    raw: dict[str, dict[str, list[Any]]] = {
        name: {"start_stop": [], "restart": [], "memory": []}
        for name in ("nursemaid", "triotp", "plain nursery")
    }
    notes: list[str] = []
    for trial in range(trials):
        ours = raw["nursemaid"]
        ours["start_stop"].append(nursemaid_start_stop(n))
        ours["restart"].append(nursemaid_restart_latency(crashes))
        ours["memory"].append(nursemaid_memory(n))
        if not options.no_triotp:
            triotp = run_triotp(n, crashes, 1)
            if triotp is not None:
                for key in ("start_stop", "restart", "memory"):
                    raw["triotp"][key].extend(triotp[key])
                if trial == 0:
                    notes.append(
                        "triotp venv: "
                        + ", ".join(f"{k} {v}" for k, v in triotp["versions"].items())
                    )
        plain = raw["plain nursery"]
        plain["start_stop"].append(plain_start_stop(n))
        plain["memory"].append(plain_memory(n))
        print(f"trial {trial + 1}/{trials} done", file=sys.stderr)
    rows = {
        name: summarise(r["start_stop"], r["restart"], r["memory"])
        for name, r in raw.items()
        if r["start_stop"]
    }

    import trio

    lines = [
        f"{n:,} children, {crashes:,} crashes per trial, median of {trials} trials, one CPU; "
        f"trio {trio.__version__}, Python {sys.version.split()[0]}",
        "",
        "| implementation | start ms | stop ms | start+stop ms | restart p50 µs | restart p99 µs "
        "| bytes/child |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        restart = (
            ("-", "-")
            if r["restart_p50_us"] != r["restart_p50_us"]
            else (f"{r['restart_p50_us']:.0f}", f"{r['restart_p99_us']:.0f}")
        )
        lines.append(
            f"| {name} | {r['start_ms']:.0f} | {r['stop_ms']:.0f} | {r['total_ms']:.0f} | "
            f"{restart[0]} | {restart[1]} | {r['memory_b']:,.0f} |"
        )
    if "triotp" in rows:
        ours, theirs = rows["nursemaid"], rows["triotp"]
        lines.append("")
        lines.append(
            f"nursemaid vs triotp: start+stop {theirs['total_ms'] / ours['total_ms']:.1f}x faster, "
            f"restart {theirs['restart_p50_us'] / ours['restart_p50_us']:.1f}x faster, "
            f"memory {theirs['memory_b'] / ours['memory_b']:.2f}x less per child"
        )
    lines.extend(["", *notes])
    table = "\n".join(lines)
    print(table)
    if options.markdown:
        Path(options.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
