"""The profile settings the five built-in protocols read (every `profile.setting(...)` key), typed.

Transitional: each entry belongs in its package as ``Driver.settings = {**BaseDriver.settings, ...}``
(see BaseDriver.settings); `declared_settings` merges this table in until they move there."""

from __future__ import annotations

from fieldctl.profiles.schema import (ANY, COUNT, ENDPOINT, FLAG, LIST, NUMBER, POSITIVE, SECONDS, TABLE, TEXT,
                                      TEXTS, Setting, one_of)

#: Zero is a valid delay (answer at once); negative is not.
DELAY = Setting(lambda value: NUMBER.accepts(value) and value >= 0, "a number of seconds, 0 or more")
RATE = Setting(lambda value: NUMBER.accepts(value) and value > 0, "a positive frequency in Hz")

PENDING: dict[str, dict[str, Setting]] = {
    "autotrainer": {
        "endpoints.events": ENDPOINT,
        "endpoints.commands": ENDPOINT,
        "simulate.identifier": TEXT,
        "simulate.version": TEXT,
        "simulate.event_interval_s": SECONDS,
        "simulate.async_commands": TEXTS,
        "simulate.async_delay_s": DELAY,
        "simulate.configuration": TABLE,
    },
    "tracim": {
        "endpoints.master": ENDPOINT,
        "endpoints.client": ENDPOINT,
        "keepalive.interval_s": SECONDS,
        "timeouts.send_s": SECONDS,
        "timeouts.read_s": SECONDS,
        "timeouts.retry_s": SECONDS,
        "simulate.user_id": TEXT,
        "simulate.single_read_bytes": COUNT,
        "simulate.event_interval_s": SECONDS,
        "simulate.api_root_body": TEXT,
    },
    "sepl": {
        "endpoints.platform": ENDPOINT,
        "connector.user": TEXT,
        "connector.gid": TEXT,
        "connector.poll_s": SECONDS,
        "timeouts.login_s": SECONDS,
        "timeouts.request_s": SECONDS,
        "timeouts.idle_ping_s": SECONDS,
        "timeouts.pong_s": SECONDS,
        "timeouts.answer_s": SECONDS,
        "simulate.user": TEXT,
        "simulate.services": TEXTS,
        "simulate.gid_prefix": TEXT,
        "simulate.ping_period_s": SECONDS,
        "simulate.read_timeout_s": SECONDS,
        "simulate.max_consecutive_errors": COUNT,
        "simulate.send": one_of("text", "binary"),
    },
    "oneliner": {
        "endpoints.calls": ENDPOINT,
        "endpoints.streams": ENDPOINT,
        "simulate.version": TEXT,
        "simulate.streams.*.frequency_hz": RATE,
        "simulate.streams.*.period_s": SECONDS,
        "simulate.streams.*.serializer": one_of("pickle", "json", "raw"),
        "simulate.streams.*.generator": one_of("count", "sine", "status", "bytes", "constant", "error", "call"),
        "simulate.streams.*.start": NUMBER,
        "simulate.streams.*.value": ANY,
        "simulate.streams.*.message": TEXT,
        "simulate.streams.*.call": TEXT,
        "simulate.streams.*.args": LIST,
        "simulate.streams.*.kwargs": TABLE,
        "simulate.streams.*.enabled": FLAG,
        "simulate.objects.*.attributes": TABLE,
        "simulate.objects.*.methods.*.action": one_of("get", "set", "add", "sum", "echo", "return", "raise", "sleep"),
        "simulate.objects.*.methods.*.attribute": TEXT,
        "simulate.objects.*.methods.*.value": ANY,
        "simulate.objects.*.methods.*.step": NUMBER,
        "simulate.objects.*.methods.*.error": TEXT,
        "simulate.objects.*.methods.*.message": TEXT,
        "simulate.objects.*.methods.*.seconds": DELAY,
        "simulate.named_calls.*.call": TEXT,
        "simulate.named_calls.*.args": LIST,
        "simulate.named_calls.*.kwargs": TABLE,
    },
    "vantiq": {
        "endpoints.server": ENDPOINT,
        "timeouts.connect_s": SECONDS,
        "timeouts.query_s": SECONDS,
        "connector.sources": TEXTS,
        "register.health_host": TEXT,
        "answers.chunk_rows": POSITIVE,
        "answers.timeout_s": SECONDS,
        "simulate.sources": TABLE,
        "simulate.send": one_of("binary", "text"),
        "simulate.wait_for_connector_s": SECONDS,
        "simulate.status_before_configure": COUNT,
        "simulate.query_bytes_kept": POSITIVE,
        "answers.concurrency": POSITIVE,
    },
}
