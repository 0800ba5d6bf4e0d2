"""The profile keys the tracim roles read, typed: `profiles validate` and every run check them."""

from __future__ import annotations

from fieldctl.profiles.schema import COUNT, ENDPOINT, SECONDS, TEXT, Setting

SETTINGS: dict[str, Setting] = {
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
}
