"""A worker program: a plain Python script that serves requests over stdin/stdout.

The tutorial (docs/tutorial.md) runs it through a port, then a pool.
"""

import os

from nursemaid import serve


def add(args):
    a, b = args
    return a + b


def whoami(args):
    return os.getpid()


def divide(args):
    a, b = args
    return a / b  # b == 0 raises: the caller gets RemoteError, this worker carries on


if __name__ == "__main__":
    serve({"add": add, "whoami": whoami, "divide": divide})
