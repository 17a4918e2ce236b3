"""Fixtures shared by the integration tests (real worker processes)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A FIFO the calc worker's ``wait`` op blocks on, and our end to release it.

    Writing a line to the returned descriptor lets the worker answer: a reply that
    comes exactly as late as the test decides, with no sleeping on either side.
    """
    path = tmp_path / "release"
    os.mkfifo(path)
    fd = os.open(path, os.O_RDWR)  # on Linux this never blocks, and keeps a writer present
    yield str(path), fd
    os.close(fd)
