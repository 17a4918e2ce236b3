"""Live progress for the demo: rich when it is installed and we write to a terminal,
plain lines otherwise.

Rules:
    * A display only shows :class:`Snapshot` objects it is given; it never reads the
      pool or the clock. It is a context manager (entered around the whole run).
    * ``rich`` is optional (``pip install "nursemaid[demo]"``): imported only when a
      rich display is chosen, and its absence falls back to plain lines.
    * Plain lines are printed at most once per ``interval`` seconds of run time, and
      once more at the end, so a log or a CI transcript stays short.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any, Literal, Protocol

import attrs

__all__ = ["Display", "NullDisplay", "PlainDisplay", "RichDisplay", "Snapshot", "make_display"]


@attrs.frozen
class Snapshot:
    """What the run looks like at one moment."""

    elapsed: float
    duration: float
    requests: int
    ok: int
    in_flight: int
    errors: Mapping[str, int]
    restarts: int
    states: Mapping[str, int]
    """Workers by lifecycle state (lower-case state name -> count)."""
    faults: Mapping[str, int]
    """Faults injected so far (armed ones count when armed)."""
    stopping: bool
    recent: tuple[str, ...] = ()
    """The last few log lines (workers' stderr, escalations to signals)."""


class Display(Protocol):
    """Anything that can show snapshots: entered once, updated often."""

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def update(self, snapshot: Snapshot) -> None:
        """Show *snapshot* (or drop it, if too soon after the last one)."""


class NullDisplay:
    """Shows nothing (``--quiet``, and the soak)."""

    def __enter__(self) -> NullDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def update(self, snapshot: Snapshot) -> None:
        return None


def _counts(mapping: Mapping[str, int]) -> str:
    return " ".join(f"{k}={v:,}" for k, v in sorted(mapping.items())) or "-"


def describe(snapshot: Snapshot) -> str:
    """Return *snapshot* as one line of plain text."""
    phase = "draining" if snapshot.stopping else f"{snapshot.elapsed:5.1f}/{snapshot.duration:g}s"
    return (
        f"[{phase}] requests {snapshot.requests:,} ok {snapshot.ok:,} "
        f"in flight {snapshot.in_flight} | errors {_counts(snapshot.errors)} "
        f"| restarts {snapshot.restarts:,} | faults {_counts(snapshot.faults)} "
        f"| workers {_counts(snapshot.states)}"
    )


@attrs.define
class PlainDisplay:
    """One line of text per *interval* seconds, to *stream*."""

    stream: IO[str]
    interval: float = 1.0
    _next: float = 0.0
    _last: Snapshot | None = None
    _shown: Snapshot | None = None

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._last is not None and self._last is not self._shown:
            self._show(self._last)

    def update(self, snapshot: Snapshot) -> None:
        self._last = snapshot
        if snapshot.elapsed >= self._next:
            self._next = snapshot.elapsed + self.interval
            self._show(snapshot)

    def _show(self, snapshot: Snapshot) -> None:
        self._shown = snapshot
        print(describe(snapshot), file=self.stream, flush=True)


class RichDisplay:
    """A live-updating table (needs ``rich``)."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=stream)
        self._live = Live(console=self._console, auto_refresh=False, transient=False)

    def __enter__(self) -> RichDisplay:
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.__exit__(exc_type, exc, tb)

    def update(self, snapshot: Snapshot) -> None:
        self._live.update(self._render(snapshot, self._console.width), refresh=True)

    @staticmethod
    def _render(snapshot: Snapshot, width: int) -> Any:
        from rich.markup import escape
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table(title="nursemaid demo: a supervised pool under fire", show_header=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        if snapshot.stopping:
            table.add_row("time", "draining: finishing the requests in flight")
        else:
            bar = ProgressBar(total=snapshot.duration, completed=snapshot.elapsed, width=30)
            table.add_row("time", bar)
        table.add_row("requests", f"{snapshot.requests:,}  (in flight {snapshot.in_flight})")
        table.add_row("ok", f"[green]{snapshot.ok:,}")
        errors = "\n".join(f"{k}: {v:,}" for k, v in sorted(snapshot.errors.items())) or "none"
        table.add_row("errors", f"[yellow]{errors}")
        table.add_row("faults injected", _counts(snapshot.faults))
        table.add_row("restarts", f"{snapshot.restarts:,}")
        table.add_row("workers", _counts(snapshot.states))
        if snapshot.recent:
            room = max(20, width - 24)  # what the label column and borders leave
            lines = ((line.splitlines() or [""])[0] for line in snapshot.recent)
            recent = "\n".join(
                line if len(line) <= room else line[: room - 1] + "…" for line in lines
            )
            table.add_row("recent log", f"[dim]{escape(recent)}")
        return table


def rich_available() -> bool:
    """Whether the optional ``rich`` package can be imported."""
    return importlib.util.find_spec("rich") is not None


def make_display(
    stream: IO[str], mode: Literal["auto", "rich", "plain", "none"] = "auto"
) -> Display:
    """Choose a display for *stream*.

    ``auto`` picks rich when it is installed and *stream* is a terminal, else plain
    lines. ``rich`` without the package installed falls back to plain lines too.
    """
    if mode == "none":
        return NullDisplay()
    if mode in ("auto", "rich") and rich_available() and (mode == "rich" or stream.isatty()):
        return RichDisplay(stream)
    return PlainDisplay(stream)
