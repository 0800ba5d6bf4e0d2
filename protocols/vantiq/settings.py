"""The profile keys the vantiq roles read, typed: `profiles validate` and every run check them."""

from __future__ import annotations

from fieldctl.profiles.schema import COUNT, ENDPOINT, POSITIVE, SECONDS, TABLE, TEXT, TEXTS, Setting, one_of

SETTINGS: dict[str, Setting] = {
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
}
