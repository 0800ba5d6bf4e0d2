"""What a link line (a connection's state) says after its state: where, then what else the protocol
told, so a simulator's start line names what it serves (`sources=demoSource`) and a connector's
ready line its gateway. One wording for the table's panel, lines, templates' notes and the
background announcement; callers escape it and bound its length, as it may quote a wire."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fieldctl.protocols.core.readable import value_text

if TYPE_CHECKING:
    from fieldctl.protocols.core.message import Message


def link_text(msg: Message) -> str:
    payload = msg.payload if isinstance(msg.payload, dict) else {}
    url = str(payload.get("url", ""))
    told = [f"{key}={_compact(value)}" for key, value in payload.items() if key != "url"]
    return " ".join([url, *told]).strip()


def _compact(value: Any) -> str:
    """A name as it is, a list of them joined by commas, anything else as JSON (`null`, never `None`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(_compact(item) for item in value)
    return value_text(value)
