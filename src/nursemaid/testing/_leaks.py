"""Leak checks: what this process holds open, and which children it still has.

Tests use these to prove that closing a port (or a pool) leaves nothing behind:
take a snapshot before, do the work, and compare after::

    fds, children = open_fds(), child_pids()
    async with open_port([sys.executable, "worker.py"]) as port:
        ...
    assert open_fds() == fds
    assert child_pids() == children

Rules:
    * Linux only: both read ``/proc``. On another system they raise
      :class:`NotImplementedError` rather than answer wrongly.
    * Standard library only, no Trio: they are plain, synchronous snapshots.
    * A child that has exited but was not reaped (a *zombie*) is still a child:
      :func:`child_pids` lists it, so a missing ``wait`` shows up as a leak.

Theory of operation:
    ``/proc/self/fd`` lists this process's descriptors. Listing the directory
    opens one descriptor of its own for the duration of the call; it is left out
    of the answer. Children are found in ``/proc/self/task/*/children`` (one file
    per thread, listing that thread's children), which the kernel provides when
    built with ``CONFIG_PROC_CHILDREN``; otherwise every ``/proc/<pid>/stat`` is
    scanned for a parent id equal to ours.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["child_pids", "describe_fds", "open_fds"]

_PROC = Path("/proc")


def _require_proc() -> None:
    if not (_PROC / "self" / "fd").is_dir():
        raise NotImplementedError("leak checks read /proc, which this system does not have")


def open_fds() -> frozenset[int]:
    """Return the file descriptors this process has open right now.

    The descriptor used to list ``/proc/self/fd`` itself is not included.
    """
    _require_proc()
    # os.listdir holds one descriptor while it runs; it is the one that is no
    # longer open once the listing is over.
    listed = [int(name) for name in os.listdir(_PROC / "self" / "fd")]
    return frozenset(fd for fd in listed if _is_open(fd))


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def describe_fds(fds: frozenset[int] | set[int]) -> dict[int, str]:
    """Map each descriptor in *fds* to what it points at (``pipe:[123]``, a path...).

    Meant for assertion messages, so that a leak names what leaked.
    """
    out: dict[int, str] = {}
    for fd in sorted(fds):
        try:
            out[fd] = os.readlink(_PROC / "self" / "fd" / str(fd))
        except OSError:
            out[fd] = "<closed>"
    return out


def child_pids() -> frozenset[int]:
    """Return the pids of this process's children, running or not yet reaped."""
    _require_proc()
    me = os.getpid()
    tasks = _PROC / "self" / "task"
    found: set[int] = set()
    any_children_file = False
    for task in tasks.iterdir():
        try:
            text = (task / "children").read_text()
        except OSError:
            continue  # no CONFIG_PROC_CHILDREN, or the thread just exited
        any_children_file = True
        found.update(int(pid) for pid in text.split())
    if any_children_file:
        return frozenset(found)
    return frozenset(_scan_for_children(me))


def _scan_for_children(parent: int) -> set[int]:
    children: set[int] = set()
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name (field 2) is in parentheses and may contain spaces or
        # parentheses, so split after the last ')': state, then ppid.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent:
            children.add(int(entry.name))
    return children
