"""A ``serve`` worker for the integration tests: a few small, scriptable ops."""

from __future__ import annotations

import os
import sys

from nursemaid import serve


def add(args: list[int]) -> int:
    a, b = args
    return a + b


def echo(args: object) -> object:
    return args


def fail(args: str) -> None:
    raise ValueError(args)


def chatty(args: str) -> str:
    # Stray output of every kind must land on stderr, never in the frame stream.
    print("a stray print", args)
    sys.stdout.write("a stray write\n")
    os.write(1, b"a stray os.write to fd 1\n")
    return args


def wait(args: str) -> str:
    # Block until the test writes a line to the FIFO at *args*: a reply that comes
    # exactly as late as the test decides, with no sleeping on either side.
    with open(args) as fifo:
        return fifo.readline().strip()


def repeat(args: int) -> str:
    return "x" * args


def unencodable(args: object) -> object:
    return {1, 2, 3}


def stderr(args: str) -> None:
    sys.stderr.write(args)
    sys.stderr.flush()


def crash(args: int) -> None:
    sys.stderr.write("about to crash\n")
    sys.stderr.flush()
    os._exit(args)


def pid(args: object) -> int:
    return os.getpid()


# State that outlives a request: what a pool's handle_checkin must clear between
# clients (with "reset").
_notes: list[object] = []


def note(args: object) -> None:
    _notes.append(args)


def notes(args: object) -> list[object]:
    return list(_notes)


def reset(args: object) -> None:
    _notes.clear()


if __name__ == "__main__":
    options = {}
    if "--max-frame" in sys.argv:
        options["max_frame"] = int(sys.argv[sys.argv.index("--max-frame") + 1])
    serve(
        {
            "add": add,
            "echo": echo,
            "fail": fail,
            "chatty": chatty,
            "wait": wait,
            "repeat": repeat,
            "unencodable": unencodable,
            "stderr": stderr,
            "crash": crash,
            "pid": pid,
            "note": note,
            "notes": notes,
            "reset": reset,
        },
        **options,
    )
