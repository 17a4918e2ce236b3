"""A worker program: the far side of a port, written with ``nursemaid.serve``.

It imports nothing heavy (``serve`` is standard library only), so it starts in a
few milliseconds. Run it through a port, not by hand: see ``port_hello.py``.
"""

from __future__ import annotations

from nursemaid import serve


def hello(name: str) -> str:
    return f"hello, {name}!"


def add(numbers: list[float]) -> float:
    return sum(numbers)


def divide(pair: list[float]) -> float:
    numerator, denominator = pair
    return numerator / denominator  # ZeroDivisionError becomes an error reply


if __name__ == "__main__":
    serve({"hello": hello, "add": add, "divide": divide})
