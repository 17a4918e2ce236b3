"""How fast a port is, beside the ceiling and its peers (issue 2's targets).

Rows (round trips per second, median of interleaved trials; ~100-byte messages;
one request in flight per worker):

====================  ===========================================================
raw_1w / raw_2w       blocking ``os.write``/``os.read`` on a child's pipes to the
                      anchors' stdlib echo worker: the ceiling (1 child; 2 children
                      from 2 threads)
trio_echo_1w/2w       the anchors' minimal Trio loop: ``send_all`` a frame,
                      ``receive_some`` the echo, to the same echo worker (bytes only)
trio_serve_1w/2w      a minimal hand-written Trio framed loop doing what
                      ``Port.request`` does: encode ``{"id","op","args"}`` with the
                      same JSON backend, frame, ``send_all``, ``receive_some`` until
                      the frame is whole, decode the reply, to the same ``serve``
                      worker. **The target's baseline: Port.request ≥ 90 % of this.**
port_1w / port_2w     ``await port.request("echo", args)`` to a ``serve`` worker (one
                      port per task, each task owning its port); the port's JSON
                      backend is ``"auto"``: orjson when the ``nursemaid[orjson]``
                      extra is installed (``serve`` always uses the standard library)
port_stdlib_1w/2w     the same with the standard library's json on the port's side
                      too: nursemaid installed without extras
port_noyield_1w/2w    ``port_1w/2w`` with the port's yield before a wait switched off
                      (docs/performance.md, "How a request waits"): what the yield buys
port_everyturn_1w/2w  ``port_1w/2w`` with a turn for Trio's scheduler at every call
                      that never waited, not once per 0.25 ms (docs/performance.md,
                      "A turn for the scheduler at most once per 0.25 ms"): what
                      that buys
port_raw_1w/2w        ``await port.send(frame); await port.receive()`` with
                      ``codec="raw"`` to the echo worker: the port's transport alone
tpar_1c / tpar_2c     ``trio_parallel.run_sync(echo, payload)`` (target: port ≥ 5x)
====================  ===========================================================

and start-up: spawn a worker and get its first reply, bare echo worker against a
``serve`` worker (blocking ``subprocess``; target ≤ 1.3x), and ``open_port`` +
``request("ping")`` from Trio.

Run ``python bench/bench_ports.py [--duration 2] [--trials 3] [--modes 1cpu split]
[--only port_1w tpar_1c ...] [--markdown OUT]``; ``bench/run.py`` calls :func:`main`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness
from _harness import peers

ARGS = {"text": "x" * 60}  # {"id":N,"op":"echo","args":{"text":"xxx…"}}: ~100 bytes
SERVE_WORKER = "from nursemaid import serve\nserve({'echo': lambda args: args})\n"
WARMUP = 200


# ---- rows -----------------------------------------------------------------------------


def bench_trio_serve(workers: int, duration: float, serve_path: str) -> tuple[int, float]:
    """The minimal hand-written Trio framed loop, same work as Port.request."""
    import trio

    from nursemaid.protocol._codec import json_functions

    _, dumps, loads = json_functions("auto")

    async def main() -> tuple[int, float]:
        procs = [
            await trio.lowlevel.open_process(
                [sys.executable, serve_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            for _ in range(workers)
        ]

        def make_step(proc: trio.Process) -> object:
            send_all = proc.stdin.send_all  # type: ignore[union-attr]
            receive_some = proc.stdout.receive_some  # type: ignore[union-attr]
            counter = [0]

            async def step() -> object:
                counter[0] += 1
                body = dumps({"id": counter[0], "op": "echo", "args": ARGS})
                await send_all(len(body).to_bytes(4, "big") + body)
                buf = await receive_some(65536)
                while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                    buf += await receive_some(65536)
                reply = loads(buf[4:])
                assert reply["id"] == counter[0]
                return reply["result"]

            return step

        steps = [make_step(p) for p in procs]
        for step in steps:
            for _ in range(WARMUP):
                await step()  # type: ignore[operator]
        peers.place()
        result = await _harness.timed_loops(steps, duration)  # type: ignore[arg-type]
        for p in procs:
            await p.stdin.aclose()  # type: ignore[union-attr]
            await p.wait()
            await p.stdout.aclose()  # type: ignore[union-attr]
        return result

    return trio.run(main)


def bench_port(
    workers: int, duration: float, serve_path: str, backend: str = "auto"
) -> tuple[int, float]:
    """``Port.request`` to ``serve`` workers, one port per task; *backend* is the port's JSON."""
    return _bench_port_loop(
        workers, duration, [sys.executable, serve_path], raw=False, backend=backend
    )


def bench_port_noyield(workers: int, duration: float, serve_path: str) -> tuple[int, float]:
    """``bench_port`` with the yield before a wait off: every port has given up on it
    from the start and never tries again."""
    from nursemaid.workers import _port

    saved = _port._YIELD_MISSES, _port._YIELD_PROBE
    _port._YIELD_MISSES, _port._YIELD_PROBE = 0, sys.maxsize  # type: ignore[misc]
    try:
        return bench_port(workers, duration, serve_path)
    finally:
        _port._YIELD_MISSES, _port._YIELD_PROBE = saved  # type: ignore[misc]


def bench_port_everyturn(workers: int, duration: float, serve_path: str) -> tuple[int, float]:
    """``bench_port`` with a schedule point at every call, as before the turn rule."""
    from nursemaid.workers import _port

    saved = _port._TURN_EVERY_NS
    _port._TURN_EVERY_NS = 0  # type: ignore[misc]
    try:
        return bench_port(workers, duration, serve_path)
    finally:
        _port._TURN_EVERY_NS = saved  # type: ignore[misc]


def bench_port_raw(workers: int, duration: float) -> tuple[int, float]:
    """``Port.send`` + ``Port.receive`` of raw bytes to the anchors' echo worker."""
    return _bench_port_loop(workers, duration, [sys.executable, _harness.ECHO_WORKER], raw=True)


def _bench_port_loop(
    workers: int, duration: float, argv: Sequence[str], *, raw: bool, backend: str = "auto"
) -> tuple[int, float]:
    import trio

    from nursemaid import open_port
    from nursemaid.protocol import StandardEnvelope

    async def main() -> tuple[int, float]:
        ready = 0
        all_ready = trio.Event()
        go = trio.Event()
        results: list[tuple[int, float]] = []

        async def owner() -> None:
            nonlocal ready
            envelope = StandardEnvelope(backend=backend)  # type: ignore[arg-type]
            async with open_port(argv, codec="raw" if raw else "json", envelope=envelope) as port:
                request, send, receive = port.request, port.send, port.receive
                payload = peers.PAYLOAD

                async def step() -> object:
                    if raw:
                        await send(payload)
                        return await receive()
                    return await request("echo", ARGS)

                for _ in range(WARMUP):
                    await step()
                ready += 1
                if ready == workers:
                    all_ready.set()
                await go.wait()
                results.append(await _harness.timed_loop(step, duration))

        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(owner)
            await all_ready.wait()
            peers.place()
            go.set()
        return sum(r[0] for r in results), max(r[1] for r in results)

    return trio.run(main)


# ---- start-up -------------------------------------------------------------------------


def spawn_first_reply(argv: Sequence[str], request: bytes) -> float:
    frame = len(request).to_bytes(4, "big") + request
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert proc.stdin is not None
    assert proc.stdout is not None
    os.write(proc.stdin.fileno(), frame)
    buf = os.read(proc.stdout.fileno(), 65536)
    while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
        more = os.read(proc.stdout.fileno(), 65536)
        if not more:
            raise EOFError(f"{argv} exited before replying")
        buf += more
    elapsed = time.perf_counter() - start
    proc.stdin.close()
    proc.wait()
    proc.stdout.close()
    return elapsed


def open_port_first_reply(serve_path: str) -> float:
    import trio

    from nursemaid import open_port

    async def main() -> float:
        start = time.perf_counter()
        async with open_port([sys.executable, serve_path]) as port:
            await port.request("ping")
            elapsed = time.perf_counter() - start
        return elapsed

    return trio.run(main)


def startup(serve_path: str, reps: int) -> dict[str, list[float]]:
    # An installed package has its bytecode cached; a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would otherwise recompile nursemaid in every worker.
    import compileall

    import nursemaid

    compileall.compile_dir(os.path.dirname(nursemaid.__file__), quiet=1)
    ping = b'{"id":1,"op":"ping"}'
    out: dict[str, list[float]] = {}
    for _ in range(reps):  # interleaved, like the trials
        out.setdefault("echo worker (anchors), blocking spawn + first reply", []).append(
            spawn_first_reply([sys.executable, _harness.ECHO_WORKER], peers.PAYLOAD)
        )
        out.setdefault("serve worker, blocking spawn + first reply", []).append(
            spawn_first_reply([sys.executable, serve_path], ping)
        )
        out.setdefault("serve worker, open_port + request('ping') from Trio", []).append(
            open_port_first_reply(serve_path)
        )
    return out


# ---- main -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the tables (and write them to --markdown); returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per trial")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["1cpu"], choices=_harness.MODES)
    parser.add_argument("--startup-reps", type=int, default=15)
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--only", nargs="+", help="run only these rows (e.g. port_1w tpar_1c)")
    options = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        serve_path = str(Path(tmp) / "serve_worker.py")
        Path(serve_path).write_text(SERVE_WORKER)
        cases: dict[str, _harness.Case] = {
            "raw_1w": lambda d: peers.bench_raw(1, d),
            "raw_2w": lambda d: peers.bench_raw(2, d),
            "trio_echo_1w": lambda d: peers.bench_trio_proc(1, d),
            "trio_echo_2w": lambda d: peers.bench_trio_proc(2, d),
            "trio_serve_1w": lambda d: bench_trio_serve(1, d, serve_path),
            "trio_serve_2w": lambda d: bench_trio_serve(2, d, serve_path),
            "port_1w": lambda d: bench_port(1, d, serve_path),
            "port_2w": lambda d: bench_port(2, d, serve_path),
            "port_noyield_1w": lambda d: bench_port_noyield(1, d, serve_path),
            "port_noyield_2w": lambda d: bench_port_noyield(2, d, serve_path),
            "port_everyturn_1w": lambda d: bench_port_everyturn(1, d, serve_path),
            "port_everyturn_2w": lambda d: bench_port_everyturn(2, d, serve_path),
            "port_stdlib_1w": lambda d: bench_port(1, d, serve_path, "json"),
            "port_stdlib_2w": lambda d: bench_port(2, d, serve_path, "json"),
            "port_raw_1w": lambda d: bench_port_raw(1, d),
            "port_raw_2w": lambda d: bench_port_raw(2, d),
        }
        _harness.add_trio_parallel(cases)
        if options.only:
            cases = {name: case for name, case in cases.items() if name in options.only}
        rates = _harness.interleaved(
            cases, modes=options.modes, trials=options.trials, duration=options.duration
        )
        starts = startup(serve_path, options.startup_reps)

    from nursemaid.protocol._codec import json_functions

    backend = json_functions("auto")[0]
    text = report(rates, starts, options, backend)
    print(text)
    if options.markdown:
        Path(options.markdown).write_text(text + "\n")
    return 0


ROWS = [
    # (row, description, compared with, target)
    ("raw_1w", "raw blocking os.read/os.write, 1 echo child", None, ""),
    ("trio_echo_1w", "minimal Trio loop, bytes only, echo worker", "raw_1w", ""),
    ("trio_serve_1w", "minimal Trio framed loop + JSON envelope, serve worker", "raw_1w", ""),
    ("port_1w", "Port.request, serve worker", "trio_serve_1w", "≥ 0.90"),
    ("port_noyield_1w", "Port.request, no yield before a wait", "port_1w", ""),
    ("port_everyturn_1w", "Port.request, a schedule point at every call", "port_1w", ""),
    ("port_stdlib_1w", "Port.request, stdlib json both sides", "port_1w", ""),
    ("port_raw_1w", "Port.send + receive, raw bytes, echo worker", "trio_echo_1w", ""),
    ("tpar_1c", "trio_parallel.run_sync, 1 caller", "port_1w", ""),
    ("raw_2w", "raw blocking, 2 echo children from 2 threads", None, ""),
    ("trio_echo_2w", "minimal Trio loop, bytes only, 2 tasks", "raw_2w", ""),
    ("trio_serve_2w", "minimal Trio framed loop + JSON, 2 tasks", "raw_2w", ""),
    ("port_2w", "Port.request, 2 serve workers, 2 tasks", "trio_serve_2w", "≥ 0.90"),
    ("port_noyield_2w", "Port.request, no yield before a wait, 2 tasks", "port_2w", ""),
    ("port_everyturn_2w", "Port.request, a schedule point at every call, 2 tasks", "port_2w", ""),
    ("port_stdlib_2w", "Port.request, stdlib json both sides, 2 tasks", "port_2w", ""),
    ("port_raw_2w", "Port.send + receive, raw bytes, 2 echo workers", "trio_echo_2w", ""),
    ("tpar_2c", "trio_parallel.run_sync, 2 callers", "port_2w", ""),
]


def report(
    rates: dict[tuple[str, str], list[float]],
    starts: dict[str, list[float]],
    options: argparse.Namespace,
    backend: str,
) -> str:
    median = {key: _harness.median(values) for key, values in rates.items()}
    parts = [
        f"### Ports: round trips per second ({options.trials} trials x {options.duration:g} s, "
        f"median; the port's JSON: {backend}, stdlib in port_stdlib rows; serve's: stdlib)",
        "",
    ]
    for mode in options.modes:
        rows = []
        for name, what, versus, target in ROWS:
            if (mode, name) not in median:
                continue
            value = median[(mode, name)]
            low, high = min(rates[(mode, name)]), max(rates[(mode, name)])
            ratio = ""
            if versus and (mode, versus) in median:
                ratio = f"{value / median[(mode, versus)]:.2f} x {versus}"
            rows.append(
                [
                    name,
                    what,
                    _harness.rate(value),
                    f"{1e6 / value:.1f}",
                    f"{_harness.rate(low)}-{_harness.rate(high)}",
                    ratio,
                    target,
                ]
            )
        # the trio-parallel comparison the target is phrased in: port ÷ trio_parallel
        for row, n, c in (
            ("port", "1w", "1c"),
            ("port_stdlib", "1w", "1c"),
            ("port", "2w", "2c"),
            ("port_stdlib", "2w", "2c"),
            ("port_raw", "1w", "1c"),
            ("port_raw", "2w", "2c"),
        ):
            if (mode, f"{row}_{n}") in median and (mode, f"tpar_{c}") in median:
                factor = median[(mode, f"{row}_{n}")] / median[(mode, f"tpar_{c}")]
                rows.append(
                    [
                        f"{row}_{n} ÷ tpar_{c}",
                        "Port vs trio-parallel",
                        "",
                        "",
                        "",
                        f"{factor:.1f}x",
                        "≥ 5x",
                    ]
                )
        parts += [
            f"**placement {mode}**",
            "",
            _harness.markdown_table(
                ["row", "what", "round trips/s", "µs each", "min-max", "ratio", "target"],
                rows,
                "llrrrll",
            ),
            "",
        ]
    echo = statistics.median(starts["echo worker (anchors), blocking spawn + first reply"])
    rows = []
    for name, values in starts.items():
        value = statistics.median(values)
        rows.append(
            [
                name,
                f"{value * 1e3:.1f}",
                f"{min(values) * 1e3:.1f}-{max(values) * 1e3:.1f}",
                f"{value / echo:.2f}",
            ]
        )
    parts += [
        f"**start-up** (median of {len(next(iter(starts.values())))}, unpinned; target: serve "
        f"worker ≤ 1.3 x echo worker)",
        "",
        _harness.markdown_table(["what", "ms", "min-max ms", "x echo worker"], rows, "lrrr"),
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
