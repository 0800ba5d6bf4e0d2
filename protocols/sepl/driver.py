"""The sepl Driver: what fieldctl calls for each role, wired to this package's modules."""

from __future__ import annotations

from typing import Any, ClassVar

from fieldctl.profiles.schema import Setting
from fieldctl.protocols.core.message import OUT, Message
from fieldctl.protocols.core.readable import duration_text, value_text
from fieldctl.protocols.sdk.contract import BaseDriver, Context, ProbeReport, Simulation
from fieldctl.protocols.sdk.faults import Faults

from . import client, codec
from .codec import ENDPOINT
from .settings import SETTINGS


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"register", "publish", "simulate", "probe", "proxy"})
    settings: ClassVar[dict[str, Setting]] = {**BaseDriver.settings, **SETTINGS}
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, "response": "reply", "latency": "reply"}
    #: One WebSocket connection a client role; the platform's listening socket (its peers' besides);
    #: the proxy's listening socket, and a connector's two (its own and its upstream) each.
    open_files: ClassVar[dict[str, int]] = {"register": 1, "publish": 1, "probe": 1, "simulate": 1, "proxy": 3}
    commands_from_simulator: ClassVar[bool] = True

    def summarize(self, msg: Message) -> str:
        return describe(msg)

    def publication(self, kind: str, data: Any) -> Message:
        return Message(
            profile=self.profile.name, endpoint=ENDPOINT, direction=OUT, channel="event", kind=kind, payload=data
        )

    async def register(self, context: Context) -> None:
        await client.Connector(self.profile, context.options, context.emit, context.notify).run()

    async def publish(self, context: Context, messages: list[Message], *, wait_s: float, realtime: bool) -> None:
        await client.publish(self.profile, messages, context.emit, context.notify, context.options, wait_s)

    async def probe(self, context: Context, *, warn: float, crit: float) -> ProbeReport:
        return await client.probe(self.profile, context.options, context.notify, warn, crit)

    def simulator(self, context: Context, *, scenario: list[Message] | None, timeline: bool) -> Simulation:
        from . import simulator

        return simulator.Platform(self.profile, context, scenario)

    async def proxy(self, context: Context, *, upstream: dict[str, str], faults: Faults) -> None:
        from . import proxy

        await proxy.run(self.profile, context, upstream, faults)


def describe(msg: Message) -> str:
    """The table cell: status and payload of an envelope, the essentials of the rest."""
    if msg.error:
        return f"{msg.error}: {value_text(msg.payload, 80)}" if msg.payload else msg.error
    body = msg.payload
    if msg.channel == "latency" and isinstance(body, dict):
        latency_ms = body.get("latency_ms")
        took = f"{duration_text(latency_ms / 1000)} " if isinstance(latency_ms, (int, float)) else ""
        return f"{took}data={_part(body.get('data'))}"[:120]
    if not isinstance(body, dict) or "handler" not in body:
        return "" if body is None else value_text(body)
    inner = body.get("payload")
    if msg.channel in ("event", "command", "response") and isinstance(inner, dict):
        parts = inner.get("value") if msg.channel == "event" else inner.get("protocol_parts")
        data, metadata = (_part(codec.part_value(parts, name)) for name in (codec.DATA, codec.METADATA))
        return f"data={data} metadata={metadata}"[:120]
    status = f"{body.get('status')} " if msg.channel == "reply" else ""
    return f"{status}{value_text(inner)}"[:120]


def _part(value: Any) -> str:
    return value_text(codec.part_data(value), 100)
