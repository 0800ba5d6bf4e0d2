"""The vantiq Driver: what fieldctl calls for each role, wired to this package's modules."""

from __future__ import annotations

from typing import Any, ClassVar

from fieldctl.profiles import Profile
from fieldctl.profiles.schema import Setting
from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import OUT, Message
from fieldctl.protocols.core.readable import value_text
from fieldctl.protocols.sdk.contract import BaseDriver, Context, Notify, ProbeReport, Simulation
from fieldctl.protocols.sdk.faults import Faults

from . import client, client_state, codec
from .masking import scrubbed_errors, shown
from .settings import SETTINGS


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"register", "publish", "simulate", "probe", "proxy"})
    settings: ClassVar[dict[str, Setting]] = {**BaseDriver.settings, **SETTINGS}
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, "query": "request", "response": "reply"}
    #: One WebSocket connection a client role; the server's listening socket (its peers' besides);
    #: the proxy's listening socket, and a connector's two (its own and its upstream) each.
    open_files: ClassVar[dict[str, int]] = {
        "register": 1,
        "command": 1,
        "publish": 1,
        "probe": 1,
        "simulate": 1,
        "proxy": 3,
    }
    commands_from_simulator: ClassVar[bool] = True

    def __init__(self, profile: Profile, notify: Notify) -> None:
        super().__init__(profile, lambda text: notify(redact.scrub_text(text)))

    def summarize(self, msg: Message) -> str:
        return describe(msg)

    def publication(self, kind: str, data: Any) -> Message:
        """`publish vantiq SOURCE --data JSON`: a notification from SOURCE (or, with --via, a
        publish to SOURCE's connector)."""
        if not kind:
            raise UsageError("publish vantiq SOURCE: name the source")
        return Message(
            profile=self.profile.name,
            endpoint=client_state.ENDPOINT,
            direction=OUT,
            channel=codec.NOTIFICATION,
            kind=kind,
            payload=data,
        )

    async def register(self, context: Context) -> None:
        with scrubbed_errors():
            await client.Connector(self.profile, context.options, shown(context.emit), context.notify).run()

    async def publish(self, context: Context, messages: list[Message], *, wait_s: float, realtime: bool) -> None:
        with scrubbed_errors():
            await client.publish(self.profile, messages, shown(context.emit), context.notify, wait_s, context.options)

    async def probe(self, context: Context, *, warn: float, crit: float) -> ProbeReport:
        with scrubbed_errors():
            report = await client.probe(self.profile, warn, crit, context.options)
        report.summary = redact.scrub_text(report.summary)
        return report

    def simulator(self, context: Context, *, scenario: list[Message] | None, timeline: bool) -> Simulation:
        from . import simulator

        return simulator.Simulator(self.profile, context, scenario)

    async def proxy(self, context: Context, *, upstream: dict[str, str], faults: Faults) -> None:
        from . import proxy

        with scrubbed_errors():
            await proxy.run(self.profile, context, upstream, faults)


def describe(msg: Message) -> str:
    """The table's detail cell: the part of a frame a person looks for."""
    if msg.error is not None:
        return f"{msg.error}: {value_text(msg.payload, 80)}"
    body = msg.payload
    if msg.channel in (codec.RESPONSE, codec.STATUS) and isinstance(body, dict):
        code = body.get("status")
        if code is not None and code >= 300:
            return codec.refusal_text(body)
        rows = codec.rows_of(body.get("body")) if code != codec.EMPTY else []
        return f"{code} " + (f"{len(rows)} row(s) {_short(rows)}" if msg.channel == codec.RESPONSE else "")
    if msg.channel == codec.QUERY:
        return f"reply {str(msg.id)[:8]} {_short(body)}"
    return _short(body)


def _short(value: Any) -> str:
    return "" if value is None else value_text(value, 100)
