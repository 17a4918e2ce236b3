"""The chaos soak: the demo's scenario, without display, at a larger scale.

A supervised pool of real worker processes serves ``--requests`` requests from
concurrent clients while a fault is injected before ``--fault-rate`` of them
(default 10%): half of the faults SIGKILL a worker (so 5% of requests see a kill),
the rest make a worker hang, write garbage frames, or fail its init (kills spare a
hung worker, so each hang reaches its client as a ``RequestTimeout``). Then it prints
the figures that matter, and exits with status 1 unless they are all clean:

    requests            how many were made
    lost                requests that neither returned nor raised a named error (0)
    leaked processes    children still alive or unreaped after shutdown (0)
    leaked descriptors  file descriptors open after the run that were not before (0)
    longest recovery    the longest time from a SIGKILL until a worker started
                        after it was ready (the demo's measure; see _cli._demo)

``nox -s soak`` runs it at full scale (100,000 requests); for a quick look::

    python bench/soak.py --requests 5000
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import attrs

from nursemaid._cli._demo import FAULT_KINDS, DemoConfig, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.1,
        help="probability that a request is preceded by a fault; half the faults are "
        "kills, so the default kills a worker before 5%% of the requests",
    )
    parser.add_argument("--faults", default=",".join(FAULT_KINDS))
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-duration",
        type=float,
        default=3600.0,
        help="stop after this many seconds even if --requests is not reached",
    )
    parser.add_argument("--json", action="store_true", help="also print the whole report as JSON")
    args = parser.parse_args(argv)

    config = DemoConfig(
        duration=args.max_duration,
        requests=args.requests,
        size=args.size,
        clients=args.clients,
        fault_rate=args.fault_rate,
        faults=tuple(kind for kind in args.faults.split(",") if kind),
        seed=args.seed,
    )
    started = time.perf_counter()
    report = run(config)
    wall = time.perf_counter() - started
    kills = report.faults.get("kill", 0)
    rows = [
        ("requests", f"{report.requests:,}"),
        ("ok", f"{report.ok:,}"),
        ("errors (named)", ", ".join(f"{k} {v:,}" for k, v in report.errors.items()) or "none"),
        ("lost", f"{report.lost}"),
        ("faults injected", ", ".join(f"{k} {v:,}" for k, v in report.faults.items())),
        ("kills per request", f"{kills / max(report.requests, 1):.2%}"),
        ("workers replaced", f"{report.restarts:,}"),
        (
            "longest recovery after a kill",
            "n/a" if report.max_recovery_ms is None else f"{report.max_recovery_ms:,.0f} ms",
        ),
        ("latency p50 / p99 (ok)", f"{report.p50_ms:.2f} / {report.p99_ms:.2f} ms"),
        ("leaked processes", f"{report.leaked_processes}"),
        ("leaked descriptors", f"{report.leaked_fds}"),
        ("wall time", f"{wall:.1f} s"),
    ]
    print(f"chaos soak: size {config.size}, clients {config.clients}, seed {config.seed}")
    print("| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if args.json:
        print(json.dumps(attrs.asdict(report)))
    print("OK" if report.succeeded else "FAILED: something was lost or leaked")
    return 0 if report.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
