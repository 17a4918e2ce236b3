"""A worker program that misbehaves on request: ``python -m nursemaid.testing.fault_worker``.

Point a port or a pool at it to prove your code survives what real workers do:
die, hang, write garbage, answer slowly, flood stderr. Faults are planned on the
command line (so a pool's every worker misbehaves the same way), or triggered one
request at a time with the ops below.

Command line (every option is off unless given)::

    python -m nursemaid.testing.fault_worker [--fail-init] [--hang-on-init]
        [--init-delay SECONDS] [--crash-after N] [--hang-after N]
        [--garbage-after N] [--slow SECONDS] [--stderr-flood LINES]
        [--exit-code K]

    ===================  ==================================================================
    option               fault
    ===================  ==================================================================
    ``--fail-init``      write a line to stderr and exit with ``--exit-code`` before serving
                         (the port's first ping finds the process gone)
    ``--hang-on-init``   never serve: the init ping is never answered
    ``--init-delay S``   wait S seconds, then serve (an init that is slow, not dead)
    ``--crash-after N``  answer N requests, then exit with ``--exit-code`` on receiving the
                         next one, before answering it (``ping`` is not counted)
    ``--hang-after N``   answer N requests, then never answer again
    ``--garbage-after N`` answer N requests, then answer the next with a frame that is not
                         JSON, and hang
    ``--slow S``         sleep S seconds before every answer
    ``--stderr-flood L`` write L lines to stderr before serving (stderr must be drained
                         for the worker to get anywhere)
    ``--exit-code K``    the exit status of ``--fail-init``, ``--crash-after`` and the
                         ``crash`` op (default 70)
    ===================  ==================================================================

Ops (``port.request(op, args)``):

    ===================  ==================================================================
    op                   answer
    ===================  ==================================================================
    ``echo``             ``args``, unchanged
    ``pid``              the worker's process id
    ``count``            how many requests this worker answered before this one
    ``sleep``            sleeps ``args`` seconds, then answers ``null``
    ``fail``             an error reply (``RuntimeError``, message ``args``): the worker
                         keeps serving
    ``stderr``           writes ``args`` lines to stderr, then answers ``null``
    ``crash``            exits with ``--exit-code`` without answering
    ``hang``             never answers
    ``garbage``          answers with a frame that is not JSON, then hangs
    ===================  ==================================================================

Rules:
    Standard library and :func:`nursemaid.serve` only: this program must start as
    fast as a real worker, so it imports no trio, attrs, cattrs or hypothesis
    (``tests/integration/test_fault_worker.py`` checks it with ``-X importtime``).
    Every fault is announced on stderr first (``fault_worker: ...``), so the
    ``stderr_tail`` of the error it causes says what happened.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from nursemaid.protocol._framing import encode_frame
from nursemaid.workers._serve import serve

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

__all__ = ["DEFAULT_EXIT_CODE", "GARBAGE", "main"]

DEFAULT_EXIT_CODE = 70
"""Exit status of a planned crash or init failure (``EX_SOFTWARE``)."""

GARBAGE = b"\xff\xfenot json\x00"
"""The payload of the frame ``--garbage-after`` and the ``garbage`` op send."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nursemaid.testing.fault_worker",
        description="a nursemaid worker that misbehaves on request (see the module docs)",
    )
    add = parser.add_argument
    add("--fail-init", action="store_true", help="exit with --exit-code before serving")
    add("--hang-on-init", action="store_true", help="never serve, so init never completes")
    add("--init-delay", type=_seconds, default=0.0, metavar="SECONDS", help="wait, then serve")
    add("--crash-after", type=_count, metavar="N", help="exit on the request after N answers")
    add("--hang-after", type=_count, metavar="N", help="stop answering after N answers")
    add("--garbage-after", type=_count, metavar="N", help="send a non-JSON frame after N")
    add("--slow", type=_seconds, default=0.0, metavar="SECONDS", help="delay every answer")
    add("--stderr-flood", type=_count, default=0, metavar="LINES", help="noise before serving")
    add("--exit-code", type=int, default=DEFAULT_EXIT_CODE, metavar="K", help="crash status")
    return parser


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {value!r})")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0 (got {text!r})")
    return value


def _say(message: str) -> None:
    sys.stderr.write(f"fault_worker: {message}\n")
    sys.stderr.flush()


def _hang() -> NoReturn:
    # Blocks until a signal ends the process: the port's SIGTERM after its grace.
    while True:
        time.sleep(3600)


class _Faults:
    """The planned faults, and the handlers that carry them out."""

    def __init__(self, options: argparse.Namespace, frame_fd: int) -> None:
        self.options = options
        self.answered = 0
        # A second handle on the frame pipe, taken before serve() moves it aside,
        # so that a garbage frame can be written where the port reads.
        self.frame_fd = frame_fd

    def crash(self, why: str) -> NoReturn:
        _say(f"crashing ({why}) with exit status {self.options.exit_code}")
        os._exit(self.options.exit_code)

    def garbage(self, why: str) -> NoReturn:
        _say(f"writing a garbage frame ({why})")
        os.write(self.frame_fd, encode_frame(GARBAGE))
        _hang()

    def planned(self, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """Wrap an op's handler with the faults planned on the command line."""
        options = self.options

        def run(args: Any) -> Any:
            done = self.answered
            if options.crash_after is not None and done >= options.crash_after:
                self.crash(f"--crash-after {options.crash_after}")
            if options.garbage_after is not None and done >= options.garbage_after:
                self.garbage(f"--garbage-after {options.garbage_after}")
            if options.hang_after is not None and done >= options.hang_after:
                _say(f"hanging (--hang-after {options.hang_after})")
                _hang()
            if options.slow:
                time.sleep(options.slow)
            try:
                return handler(args)
            finally:
                self.answered += 1  # an error reply (the fail op, say) is an answer too

        return run

    def handlers(self) -> dict[str, Callable[[Any], Any]]:
        def fail(args: Any) -> NoReturn:
            raise RuntimeError(str(args))

        def stderr(args: Any) -> None:
            _flood(int(args))

        def sleep(args: Any) -> None:
            time.sleep(float(args))

        def hang(args: Any) -> NoReturn:
            _say("hanging (asked by the 'hang' op)")
            _hang()

        ops: dict[str, Callable[[Any], Any]] = {
            "echo": lambda args: args,
            "pid": lambda args: os.getpid(),
            "count": lambda args: self.answered,
            "sleep": sleep,
            "fail": fail,
            "stderr": stderr,
            "crash": lambda args: self.crash("asked by the 'crash' op"),
            "hang": hang,
            "garbage": lambda args: self.garbage("asked by the 'garbage' op"),
        }
        return {op: self.planned(handler) for op, handler in ops.items()}


def _flood(lines: int) -> None:
    write = sys.stderr.write
    for number in range(lines):
        write(f"fault_worker: stderr flood line {number + 1} of {lines}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fault worker with *argv* (default: the command line)."""
    options = _parser().parse_args(argv)
    if options.stderr_flood:
        _flood(options.stderr_flood)
    if options.fail_init:
        _say(f"failing init as asked (--fail-init), exit status {options.exit_code}")
        sys.exit(options.exit_code)
    if options.hang_on_init:
        _say("hanging before init as asked (--hang-on-init)")
        _hang()
    if options.init_delay:
        time.sleep(options.init_delay)
    faults = _Faults(options, frame_fd=os.dup(1))
    serve(faults.handlers())


if __name__ == "__main__":
    main()
