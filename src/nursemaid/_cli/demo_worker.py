"""The demo's worker program: a small service built on :func:`nursemaid.serve`.

Run by the demo's pool as ``python -m nursemaid._cli.demo_worker --faults DIR``.
Standard library and ``serve`` only (no trio, attrs or cattrs): worker start-up
time matters, and the demo restarts workers often.

Ops:
    ``work``  ``{"n": int, "sleep_ms": float}`` → ``{"pid": int, "value": int}``:
              sums ``range(n)`` and sleeps a little, like a small real job.
    ``incr``  ``{"session": str}`` → ``int``: a per-session counter kept in this
              process; with session affinity it counts up while the worker lives.
    ``fail``  always raises ``ValueError``: the client gets ``RemoteError`` and the
              worker keeps serving.

Faults (the demo's chaos): the demo *arms* a fault by creating a file named after
it in ``DIR``; the first worker that renames it to ``NAME.taken.PID`` (an atomic
claim: exactly one worker wins) performs it.

    ``init-fail``  claimed at start-up: write a reason to stderr and exit with
                   status 3 before serving, so the pool's init handshake fails.
    ``hang``       claimed by a request: never answer it (the client's request
                   times out, and the pool must stop the worker with signals,
                   since it no longer reads its stdin). A hung worker whose parent
                   died exits, so a demo killed with SIGKILL leaves no immortal
                   process behind.
    ``garbage``    claimed by a request: write bytes that are not a frame of the
                   protocol instead of the reply, then carry on as if nothing
                   happened (the port must detect it and close).

SIGINT is ignored: a Ctrl-C in the terminal reaches every process in the
foreground group, and it is the demo (the parent), not each worker, that decides
how the run ends.
"""

from __future__ import annotations

import os
import signal
import sys
import time

# Not `from typing import ...`: importing typing costs a worker ~4 ms of start-up,
# and a pool pays start-up for every restart; type checkers treat this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["claim", "main"]

GARBAGE = (
    b"\xff\xff\xff\xffthis is not a frame\n",
    b"\x00\x00\x00\x0bnot json!\n\x00",
)
"""What a ``garbage`` fault writes, one or the other: a header announcing a 4 GiB
frame (over any ``max_frame``), or a well-formed frame whose payload is not JSON."""

INIT_FAIL_STATUS = 3


def claim(faults_dir: str, fault: str) -> bool:
    """Take the armed fault *fault* if it is there; return whether we took it.

    The rename is atomic, so when several workers race for one armed fault,
    exactly one of them wins it.
    """
    try:
        taken = os.path.join(faults_dir, f"{fault}.taken.{os.getpid()}")
        os.rename(os.path.join(faults_dir, fault), taken)
    except FileNotFoundError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    """Parse ``--faults DIR`` from *argv* and serve until stdin closes."""
    args = sys.argv[1:] if argv is None else argv
    faults_dir = args[args.index("--faults") + 1] if "--faults" in args else None
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    if faults_dir is not None and claim(faults_dir, "init-fail"):
        print(
            "demo worker: init failed (an injected fault: the demo armed 'init-fail')",
            file=sys.stderr,
        )
        sys.exit(INIT_FAIL_STATUS)

    sessions: dict[str, int] = {}
    pid, parent = os.getpid(), os.getppid()
    # serve() moves the frame stream to a private descriptor and points fd 1 at
    # stderr; keep our own copy of the real stdout first, to corrupt the stream.
    frames_fd = os.dup(1)

    def chaos() -> None:
        if faults_dir is None:
            return
        if claim(faults_dir, "hang"):
            print("demo worker: hanging (an injected fault)", file=sys.stderr)
            # Deaf to stdin, as a hung worker is; but not immortal: if the demo
            # itself is killed (so nobody will ever SIGTERM us), stop hanging.
            while os.getppid() == parent:
                time.sleep(0.5)
            sys.exit(1)
        if claim(faults_dir, "garbage"):
            print("demo worker: writing garbage (an injected fault)", file=sys.stderr)
            os.write(frames_fd, GARBAGE[pid % len(GARBAGE)])

    def work(args: Any) -> Any:
        chaos()
        n = int(args.get("n", 1000)) if isinstance(args, dict) else 1000
        sleep_ms = float(args.get("sleep_ms", 0.0)) if isinstance(args, dict) else 0.0
        if sleep_ms > 0:
            time.sleep(sleep_ms / 1000)
        return {"pid": pid, "value": sum(range(n))}

    def incr(args: Any) -> Any:
        chaos()
        session = str(args["session"])
        sessions[session] = sessions.get(session, 0) + 1
        return sessions[session]

    def fail(args: Any) -> Any:
        raise ValueError(f"the fail op always fails (args {args!r})")

    from nursemaid import serve

    serve({"work": work, "incr": incr, "fail": fail})


if __name__ == "__main__":
    main()
