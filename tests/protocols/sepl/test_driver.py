"""The sepl table cell (Driver.summarize): payloads read as JSON, part data decoded once."""

from __future__ import annotations

from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sepl import codec
from fieldctl.protocols.sepl.driver import describe


def test_credentials_and_parts_read_as_json_never_as_python() -> None:
    creds = Message("sepl", "platform", OUT, "login", "credentials", {"user": "sepl-user", "pw": "***"})
    assert describe(creds) == '{"user":"sepl-user","pw":"***"}'
    event = codec.request_envelope("event", "t", codec.event_payload("dev-1", "sepl_get", '{"level": 42}'))
    shown = describe(Message("sepl", "platform", OUT, "event", "dev-1:sepl_get", event, "t"))
    assert shown == 'data={"level":42} metadata=null'
    reply = Message("sepl", "platform", IN, "reply", "event", {"status": 200, "handler": "response", "payload": "ok"})
    assert describe(reply) == '200 "ok"'


def test_a_latency_row_gives_its_time_in_the_one_unit_style_and_the_data_decoded() -> None:
    body = {"latency_ms": 1.517, "data": '{"level": 42}', "metadata": None, "task_id": "t"}
    assert describe(Message("sepl", "platform", IN, "latency", "dev-1:sepl_set", body)) == '1.5 ms data={"level":42}'


def test_part_data_decodes_json_text_only() -> None:
    assert codec.part_data('{"a": [1]}') == {"a": [1]} and codec.part_data("[1, 2]") == [1, 2]
    assert codec.part_data("hello") == "hello" and codec.part_data("{not json") == "{not json"
    assert codec.part_data("[" * 500 + "]" * 500) == "[" * 500 + "]" * 500  # too deep: the text as it is
    assert codec.part_data(None) is None and codec.part_data("42") == "42"
