"""``python -m nursemaid`` (and the ``nursemaid`` console script): the command line.

Importing this module is cheap: the commands, and Trio with them, are imported
only when one runs. See ``python -m nursemaid --help``.
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line with *argv* (default: ``sys.argv[1:]``); return the exit status."""
    from nursemaid._cli._main import main as run_command_line

    return run_command_line(argv)


if __name__ == "__main__":
    raise SystemExit(main())
