"""The command line's parser and its two commands, ``demo`` and ``diagram``.

Exit status: 0 on success; 1 when the demo lost a request or leaked a process or a
descriptor; 2 for a bad command line (argparse's convention).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence

__all__ = ["DIAGRAMS", "build_parser", "main"]

DIAGRAMS = ("lifecycle", "supervisor")
"""The diagrams ``nursemaid diagram`` can print, in the order it prints them."""

_DEMO_HELP = """\
Run a supervision tree holding a pool of real worker processes, drive it with
concurrent clients, and inject faults while it runs: workers killed with
SIGKILL, a worker that hangs, one that writes garbage frames, one whose init
fails. Then report requests, errors by kind, lost requests (must be 0),
restarts, latency and leaks (must be 0). Ctrl-C ends the run early, with a
report; a second Ctrl-C also cancels the requests in flight.
"""

_DIAGRAM_HELP = """\
Print diagrams generated from the code's own tables: the worker lifecycle
(the pool's state machine) and the supervisor's restart strategies.
"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds (got {text!r})") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive, finite number (got {text!r})")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {text!r})")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability (got {text!r})") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"is the probability that a request is preceded by a fault, "
            f"between 0 and 1 (got {text!r})"
        )
    return value


def _fault_list(text: str) -> tuple[str, ...]:
    from nursemaid._cli._demo import FAULT_KINDS

    if text in ("", "none"):
        return ()
    kinds = tuple(kind.strip() for kind in text.split(","))
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault {unknown[0]!r} (expected a comma-separated list of "
            f"{', '.join(FAULT_KINDS)}, or none)"
        )
    return kinds


def _diagram_name(text: str) -> str:
    from nursemaid._cli._diagram import NAMES

    if text not in NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown diagram {text!r} (expected {', '.join(NAMES[:-1])} or {NAMES[-1]})"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for ``python -m nursemaid``."""
    parser = argparse.ArgumentParser(
        prog="nursemaid",
        description="OTP-style supervision for Trio: the demo, and diagrams drawn from the code.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="a supervised pool of worker processes under fire", description=_DEMO_HELP
    )
    demo.add_argument(
        "--duration",
        type=_positive_float,
        default=15.0,
        metavar="SECONDS",
        help="how long to run (default: %(default)s)",
    )
    demo.add_argument(
        "--requests",
        type=_positive_int,
        default=None,
        metavar="N",
        help="stop after N requests, if that comes before --duration",
    )
    demo.add_argument(
        "--size",
        type=_positive_int,
        default=4,
        metavar="N",
        help="workers in the pool (default: %(default)s)",
    )
    demo.add_argument(
        "--clients",
        type=_positive_int,
        default=8,
        metavar="N",
        help="concurrent clients (default: %(default)s)",
    )
    demo.add_argument(
        "--fault-rate",
        type=_probability,
        default=0.01,
        metavar="P",
        help="probability that a request is preceded by an injected fault (default: %(default)s)",
    )
    demo.add_argument(
        "--faults",
        type=_fault_list,
        default=None,
        metavar="KINDS",
        help="which faults to inject: a comma-separated list of "
        "kill, hang, garbage, init-fail, or none (default: all)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed for the clients' choices (default: random; the report shows it)",
    )
    demo.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON object, on the last line of stdout "
        "(live progress then goes to stderr)",
    )
    demo.add_argument(
        "--display",
        choices=("auto", "rich", "plain", "none"),
        default="auto",
        help="live progress: rich needs the [demo] extra; auto uses it on a "
        "terminal (default: %(default)s)",
    )

    diagram = commands.add_parser(
        "diagram", help="print the lifecycle and supervisor diagrams", description=_DIAGRAM_HELP
    )
    diagram.add_argument(
        "--format",
        choices=("mermaid", "dot"),
        default="mermaid",
        help="Mermaid or Graphviz DOT (default: %(default)s)",
    )
    # Not choices=: with nargs="*", Python 3.11 checks the empty default against them.
    diagram.add_argument(
        "which",
        nargs="*",
        type=_diagram_name,
        metavar="lifecycle|supervisor|one_for_one|one_for_all|rest_for_one",
        help="which diagrams (default: lifecycle and supervisor; one_for_one, "
        "one_for_all and rest_for_one draw one restart strategy each)",
    )
    diagram.add_argument(
        "--write",
        metavar="DIR",
        help="instead of printing, write every diagram the docs use into DIR "
        "(docs/_generated), one file per diagram and format, each exactly what "
        "printing it gives",
    )
    return parser


def _run_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from nursemaid._cli._demo import FAULT_KINDS, DemoConfig, run
    from nursemaid._cli._display import make_display

    seed = args.seed if args.seed is not None else random.randrange(2**32)
    try:
        config = DemoConfig(
            duration=args.duration,
            requests=args.requests,
            size=args.size,
            clients=args.clients,
            fault_rate=args.fault_rate,
            faults=FAULT_KINDS if args.faults is None else args.faults,
            seed=seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    progress = sys.stderr if args.json else sys.stdout
    report = run(config, make_display(progress, args.display))
    if args.json:
        print(report.to_json(), flush=True)
    else:
        print(report.to_text(), flush=True)
    return 0 if report.succeeded else 1


def _run_diagram(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from nursemaid._cli._diagram import diagrams, write_generated

    if args.write is not None:
        if args.which or args.format != "mermaid":
            parser.error("--write writes every diagram in every format: drop names and --format")
        from pathlib import Path

        for path in write_generated(Path(args.write)):
            print(path)
        return 0
    print(diagrams(args.which or list(DIAGRAMS), args.format), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse *argv* and run the command; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _run_demo(args, parser)
    return _run_diagram(args, parser)
