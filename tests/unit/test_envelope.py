"""Envelopes (``nursemaid.protocol._envelope``): wire shapes, and named errors for bad input."""

from __future__ import annotations

import importlib.util
import json

import attrs
import pytest

from nursemaid import LocalProtocolError, RemoteProtocolError
from nursemaid.protocol import (
    CommandEnvelope,
    Envelope,
    ErrorReply,
    Reply,
    Request,
    StandardEnvelope,
)
from nursemaid.protocol._envelope import converter, get_envelope

HAS_ORJSON = importlib.util.find_spec("orjson") is not None
BACKENDS = [
    "json",
    pytest.param(
        "orjson", marks=pytest.mark.skipif(not HAS_ORJSON, reason="the orjson extra is missing")
    ),
]


@pytest.fixture(params=BACKENDS)
def standard(request: pytest.FixtureRequest) -> StandardEnvelope:
    return StandardEnvelope(backend=request.param)


@pytest.fixture(params=BACKENDS)
def command(request: pytest.FixtureRequest) -> CommandEnvelope:
    return CommandEnvelope(backend=request.param)


def wire(payload: bytes) -> object:
    return json.loads(payload)


# ---- the messages -----------------------------------------------------------------------


def test_messages_are_frozen_slotted_attrs_classes() -> None:
    for cls in (Request, Reply, ErrorReply):
        assert attrs.has(cls)
        assert "__slots__" in vars(cls)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Request(1, "op").id = 2  # type: ignore[misc]


def test_message_defaults() -> None:
    assert Request(1, "op") == Request(1, "op", None)
    assert Reply(1) == Reply(1, None)
    assert ErrorReply(1, "E", "m") == ErrorReply(1, "E", "m", "")


# ---- standard envelope: the port's side ------------------------------------------------


def test_request_wire_shape_is_id_op_args(standard: StandardEnvelope) -> None:
    payload = standard.encode_request(Request(7, "add", [1, 2]))
    assert wire(payload) == {"id": 7, "op": "add", "args": [1, 2]}


def test_request_without_args_sends_null_args(standard: StandardEnvelope) -> None:
    assert wire(standard.encode_request(Request(1, "ping"))) == {
        "id": 1,
        "op": "ping",
        "args": None,
    }


def test_request_args_json_cannot_carry_is_a_local_protocol_error(
    standard: StandardEnvelope,
) -> None:
    with pytest.raises(LocalProtocolError, match=r"set is not JSON serializable"):
        standard.encode_request(Request(1, "op", {1, 2}))


@pytest.mark.parametrize(
    ("request_", "match"),
    [
        (Request(True, "op"), r"request id must be an int \(got True\)"),
        (Request("1", "op"), r"request id must be an int \(got '1'\)"),  # type: ignore[arg-type]
        (Request(1, 5), r"request op must be a str \(got 5\)"),  # type: ignore[arg-type]
    ],
)
def test_request_with_wrongly_typed_id_or_op_is_a_type_error(
    standard: StandardEnvelope, request_: Request, match: str
) -> None:
    with pytest.raises(TypeError, match=match):
        standard.encode_request(request_)


def test_reply_decodes(standard: StandardEnvelope) -> None:
    assert standard.decode_reply(b'{"id": 7, "result": {"sum": 3}}') == Reply(7, {"sum": 3})


def test_reply_with_null_result_decodes(standard: StandardEnvelope) -> None:
    assert standard.decode_reply(b'{"id": 7, "result": null}') == Reply(7, None)


def test_reply_keys_in_any_order_decode(standard: StandardEnvelope) -> None:
    assert standard.decode_reply(b'{"result": 1, "id": 7}') == Reply(7, 1)


def test_unknown_extra_keys_are_ignored(standard: StandardEnvelope) -> None:
    assert standard.decode_reply(b'{"id": 7, "result": 1, "took_ms": 3}') == Reply(7, 1)


def test_reply_ids_are_not_checked_by_the_envelope(standard: StandardEnvelope) -> None:
    # Matching ids to waiting requests is the port's job; the envelope passes any id on.
    assert standard.decode_reply(b'{"id": -5, "result": 1}') == Reply(-5, 1)


def test_error_reply_decodes(standard: StandardEnvelope) -> None:
    payload = b'{"id": 7, "error": {"type": "KeyError", "message": "x", "traceback": "T"}}'
    assert standard.decode_reply(payload) == ErrorReply(7, "KeyError", "x", "T")


def test_error_reply_traceback_is_optional(standard: StandardEnvelope) -> None:
    payload = b'{"id": 7, "error": {"type": "KeyError", "message": "x"}}'
    assert standard.decode_reply(payload) == ErrorReply(7, "KeyError", "x", "")


def test_error_reply_may_have_a_null_id(standard: StandardEnvelope) -> None:
    payload = b'{"id": null, "error": {"type": "BadRequest", "message": "x"}}'
    assert standard.decode_reply(payload) == ErrorReply(None, "BadRequest", "x")


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"[1, 2]", r"not a JSON object but list"),
        (b'"text"', r"not a JSON object but str"),
        (b"null", r"not a JSON object but NoneType"),
        (b'{"id": 1}', r"it has neither 'result' nor 'error'"),
        (b'{"id": 1, "result": 1, "error": {}}', r"it has both 'result' and 'error'"),
        (b'{"result": 1}', r"required field missing @ \$\.id"),
        (b'{"id": "7", "result": 1}', r"wrong type: expected int, got '7' @ \$\.id"),
        (b'{"id": true, "result": 1}', r"wrong type: expected int, got True @ \$\.id"),
        (b'{"id": 7.0, "result": 1}', r"wrong type: expected int, got 7\.0 @ \$\.id"),
        (b'{"id": null, "result": 1}', r"wrong type: expected int, got None @ \$\.id"),
        (b'{"id": 1, "error": "boom"}', r"@ \$\.error"),
        (b'{"id": "1", "error": {"type": "E", "message": "m"}}', r"@ \$\.id"),
        (b'{"id": 1, "error": {"message": "m"}}', r"required field missing @ \$\.error\.type"),
        (b'{"id": 1, "error": {"type": "E"}}', r"required field missing @ \$\.error\.message"),
        (
            b'{"id": 1, "error": {"type": 3, "message": "m"}}',
            r"wrong type: expected str, got 3 @ \$\.error\.type",
        ),
        (
            b'{"id": 1, "error": {"type": "E", "message": "m", "traceback": null}}',
            r"wrong type: expected str, got None @ \$\.error\.traceback",
        ),
    ],
)
def test_malformed_reply_is_a_remote_protocol_error_naming_the_problem(
    standard: StandardEnvelope, payload: bytes, problem: str
) -> None:
    with pytest.raises(RemoteProtocolError, match=problem) as info:
        standard.decode_reply(payload)
    message = str(info.value)
    assert message.startswith("malformed ")
    assert '\nExpected: {"id": int, "result": any JSON} or {"id": int | null' in message
    assert f"\nGot: {payload!r}" in message


def test_several_problems_are_all_named(standard: StandardEnvelope) -> None:
    with pytest.raises(RemoteProtocolError, match=r"\$\.id; .*\$\.error\.message") as info:
        standard.decode_reply(b'{"id": "x", "error": {"type": "E"}}')
    assert info.value.__cause__ is None  # the message says it all; no cattrs group attached


def test_reply_that_is_not_utf8_is_named(standard: StandardEnvelope) -> None:
    with pytest.raises(RemoteProtocolError, match=r"not valid UTF-8"):
        standard.decode_reply(b'{"id": 1, "result": "\xff"}')


def test_reply_that_is_not_json_is_named(standard: StandardEnvelope) -> None:
    with pytest.raises(RemoteProtocolError, match=r"not JSON"):
        standard.decode_reply(b"Traceback (most recent call last):")


def test_got_line_is_bounded_for_huge_payloads(standard: StandardEnvelope) -> None:
    payload = json.dumps({"id": "x", "result": "y" * 100_000}).encode()
    with pytest.raises(RemoteProtocolError) as info:
        standard.decode_reply(payload)
    assert len(str(info.value)) < 1000


# ---- standard envelope: the worker's side --------------------------------------------


def test_request_round_trips_through_the_worker_side(standard: StandardEnvelope) -> None:
    request = Request(3, "echo", {"a": [1, "b"]})
    assert standard.decode_request(standard.encode_request(request)) == request


def test_request_without_args_key_decodes_with_none(standard: StandardEnvelope) -> None:
    assert standard.decode_request(b'{"id": 3, "op": "x"}') == Request(3, "x", None)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"5", r"not a JSON object but int"),
        (b'{"id": 3}', r"required field missing @ \$\.op"),
        (b'{"op": "x"}', r"required field missing @ \$\.id"),
        (b'{"id": 3, "op": ["x"]}', r"wrong type: expected str, got \['x'\] @ \$\.op"),
    ],
)
def test_malformed_request_is_named(
    standard: StandardEnvelope, payload: bytes, problem: str
) -> None:
    with pytest.raises(RemoteProtocolError, match=problem) as info:
        standard.decode_request(payload)
    assert "malformed request" in str(info.value)
    assert '\nExpected: {"id": int, "op": str' in str(info.value)


def test_a_malformed_request_is_blamed_on_the_port_that_sent_it(standard: StandardEnvelope) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        standard.decode_request(b'{"id": 3}')
    assert str(info.value).startswith("malformed request from port: ")


@pytest.mark.parametrize(
    ("reply", "shape"),
    [
        (Reply(3, [1]), {"id": 3, "result": [1]}),
        (
            ErrorReply(3, "E", "m", "tb"),
            {"id": 3, "error": {"type": "E", "message": "m", "traceback": "tb"}},
        ),
        (
            ErrorReply(None, "BadRequest", "m"),
            {"id": None, "error": {"type": "BadRequest", "message": "m", "traceback": ""}},
        ),
    ],
)
def test_worker_side_encodes_the_wire_shapes(
    standard: StandardEnvelope, reply: Reply | ErrorReply, shape: object
) -> None:
    payload = standard.encode_reply(reply)
    assert wire(payload) == shape
    assert standard.decode_reply(payload) == reply


def test_converter_is_strict_about_types() -> None:
    assert converter.structure({"id": 1, "result": 2}, Reply) == Reply(1, 2)
    with pytest.raises(Exception, match=r"Reply"):
        converter.structure({"id": "1", "result": 2}, Reply)


def test_standard_envelope_pings_with_ping() -> None:
    assert StandardEnvelope.ping_op == "ping"
    assert repr(StandardEnvelope(backend="json")) == "StandardEnvelope(backend='json')"


# ---- command envelope -----------------------------------------------------------------


def test_command_request_wire_shape_is_id_command_args(command: CommandEnvelope) -> None:
    payload = command.encode_request(Request(7, "add", [1, 2]))
    assert wire(payload) == {"id": 7, "command": "add", "args": [1, 2]}
    assert command.decode_request(payload) == Request(7, "add", [1, 2])


def test_command_success_decodes_to_a_reply(command: CommandEnvelope) -> None:
    assert command.decode_reply(b'{"id": 7, "success": true, "result": 3}') == Reply(7, 3)
    assert command.decode_reply(b'{"id": 7, "success": true}') == Reply(7, None)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (b'"boom"', ErrorReply(7, "Error", "boom")),
        (
            b'{"type": "ValueError", "message": "bad", "traceback": "tb"}',
            ErrorReply(7, "ValueError", "bad", "tb"),
        ),
        (b'{"message": "bad"}', ErrorReply(7, "Error", "bad")),
        (b'{"type": null, "message": "bad"}', ErrorReply(7, "Error", "bad")),
        (b'{"code": 4}', ErrorReply(7, "Error", '{"code":4}')),
        (b"[1, 2]", ErrorReply(7, "Error", "[1,2]")),
        (b"null", ErrorReply(7, "Error", "null")),
    ],
)
def test_command_failure_decodes_to_an_error_reply(
    command: CommandEnvelope, error: bytes, expected: ErrorReply
) -> None:
    payload = b'{"id": 7, "success": false, "error": ' + error + b"}"
    assert command.decode_reply(payload) == expected


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"[]", r"not a JSON object but list"),
        (b'{"id": 7}', r"required field missing @ \$\.success"),
        (b'{"id": 7, "success": 1}', r"wrong type: expected bool, got 1 @ \$\.success"),
        (b'{"id": "7", "success": true}', r"wrong type: expected int, got '7' @ \$\.id"),
        (b'{"success": false, "error": "x"}', r"required field missing @ \$\.id"),
        (
            b'{"id": 7, "success": false, "error": {"message": 5}}',
            r"wrong type: expected str, got 5 @ \$\.error\.message",
        ),
    ],
)
def test_malformed_command_reply_is_named(
    command: CommandEnvelope, payload: bytes, problem: str
) -> None:
    with pytest.raises(RemoteProtocolError, match=problem) as info:
        command.decode_reply(payload)
    assert '\nExpected: {"id": int, "success": true' in str(info.value)


@pytest.mark.parametrize(
    ("reply", "shape"),
    [
        (Reply(3, "x"), {"id": 3, "success": True, "result": "x"}),
        (
            ErrorReply(3, "E", "m"),
            {"id": 3, "success": False, "error": {"type": "E", "message": "m", "traceback": ""}},
        ),
    ],
)
def test_command_worker_side_round_trips(
    command: CommandEnvelope, reply: Reply | ErrorReply, shape: object
) -> None:
    payload = command.encode_reply(reply)
    assert wire(payload) == shape
    assert command.decode_reply(payload) == reply


def test_command_envelope_ping_op_is_configurable() -> None:
    assert CommandEnvelope().ping_op == "ping"
    envelope = CommandEnvelope(ping_op="health", backend="json")
    assert envelope.ping_op == "health"
    assert repr(envelope) == "CommandEnvelope(ping_op='health', backend='json')"
    with pytest.raises(TypeError, match=r"ping_op must be a str \(got None\)"):
        CommandEnvelope(ping_op=None)  # type: ignore[arg-type]


# ---- the Envelope protocol ------------------------------------------------------------


def test_get_envelope_defaults_to_the_standard_envelope() -> None:
    assert isinstance(get_envelope(None), StandardEnvelope)


def test_get_envelope_accepts_any_object_with_the_three_members() -> None:
    class Upper:
        ping_op = "PING"

        def encode_request(self, request: Request) -> bytes:
            return request.op.upper().encode()

        def decode_reply(self, payload: bytes) -> Reply | ErrorReply:
            return Reply(1, payload.decode())

    envelope: Envelope = Upper()
    assert get_envelope(envelope) is envelope
    command: Envelope = CommandEnvelope()
    assert get_envelope(command) is command


def test_get_envelope_names_missing_members() -> None:
    with pytest.raises(TypeError, match=r"lacks ping_op, decode_reply"):
        get_envelope(type("Half", (), {"encode_request": None})())
