"""The names on the wire: envelope fields and built-in operations, in one place.

Both ends of a port use these: the Trio side (:mod:`nursemaid.protocol._envelope`,
the port) and the far side (``serve``). ``docs/protocol.md`` is the specification
they implement; read alongside it.

Rules:
    * Standard library only, and nothing but constants: ``serve`` imports this
      module and worker start-up time matters.
    * A name changes here or nowhere.

Theory of operation:
    The standard envelope is one JSON object per frame::

        request      {"id": 7, "op": "add", "args": [1, 2]}
        reply        {"id": 7, "result": 3}
        error reply  {"id": 7, "error": {"type": "ZeroDivisionError",
                                         "message": "division by zero",
                                         "traceback": "Traceback ..."}}

    A reply and an error reply are told apart by which key is present: ``result``
    or ``error`` (exactly one of them). An error reply's ``id`` is ``null`` only
    when the worker could not read the request's id.

    The command envelope (:class:`~nursemaid.protocol.CommandEnvelope`), for
    existing workers that speak it, is::

        request      {"id": 7, "command": "add", "args": [1, 2]}
        reply        {"id": 7, "success": true, "result": 3}
        error reply  {"id": 7, "success": false, "error": "division by zero"}
"""

from __future__ import annotations

# Not `from typing import ...`: serve imports this module, and importing typing
# costs a worker ~4 ms of start-up; type checkers treat this name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

# ---- standard envelope fields ---------------------------------------------------

ID: Final = "id"
"""Request id: an int the requesting side allocates; the reply carries it back."""
OP: Final = "op"
"""The operation a request asks for (a str)."""
ARGS: Final = "args"
"""The request's argument: any JSON value; absent means ``null``."""
RESULT: Final = "result"
"""A reply's result: any JSON value."""
ERROR: Final = "error"
"""An error reply's error object (standard envelope) or value (command envelope)."""
ERROR_TYPE: Final = "type"
"""In the error object: the name of the exception type on the far side (a str)."""
ERROR_MESSAGE: Final = "message"
"""In the error object: the exception's message (a str)."""
ERROR_TRACEBACK: Final = "traceback"
"""In the error object: the formatted traceback (a str, may be empty)."""

# ---- command envelope fields ------------------------------------------------------

COMMAND: Final = "command"
"""Command envelope: the operation a request asks for (a str)."""
SUCCESS: Final = "success"
"""Command envelope: ``true`` for a reply, ``false`` for an error reply."""

# ---- built-in operations ------------------------------------------------------------

PING: Final = "ping"
"""Built-in op: answered by ``serve`` itself with :data:`PONG`; a liveness check."""
PONG: Final = "pong"
"""The result ``serve`` gives a :data:`PING`."""
SHUTDOWN: Final = "shutdown"
"""Built-in op: ``serve`` replies with result ``null``, then returns (a program that
ends after ``serve()`` exits with status 0)."""
BUILTIN_OPS: Final = frozenset({PING, SHUTDOWN})
"""Ops that ``serve`` answers itself; a handler of the same name is refused."""

# ---- error types that serve itself produces -----------------------------------------

UNKNOWN_OP: Final = "UnknownOp"
"""Error type of the reply to a well-formed request whose op has no handler."""
BAD_REQUEST: Final = "BadRequest"
"""Error type of the reply to a request whose ``id`` is readable but whose ``op`` is
missing or not a string (a request without a readable id cannot be answered)."""
