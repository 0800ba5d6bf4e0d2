"""The oneliner Driver: what fieldctl calls for each role, wired to this package's modules."""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from fieldctl.profiles.schema import Setting
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import OUT, Message
from fieldctl.protocols.core.readable import value_text
from fieldctl.protocols.sdk.contract import BaseDriver, ClientSession, Context, ProbeReport, Simulation
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.runners import relay_zeromq

from . import client, codec
from .settings import SETTINGS


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"listen", "command", "publish", "simulate", "probe", "proxy"})
    settings: ClassVar[dict[str, Setting]] = {**BaseDriver.settings, **SETTINGS}
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, codec.CALL: "request", codec.REPLY: "reply"}
    #: ZeroMQ sockets, each with its mailbox and monitor (4): listen a SUB; command a REQ; probe a REQ
    #: and (--stream) a SUB; simulate a ROUTER and an XPUB (their peers' connections besides); proxy
    #: an XPUB and an XSUB, a ROUTER and a DEALER for each client (relay_zeromq).
    open_files: ClassVar[dict[str, int]] = {
        "listen": 4,
        "command": 4,
        "probe": 8,
        "simulate": 8,
        "publish": 4,
        "proxy": relay_zeromq.PUBLICATIONS_OPEN_FILES + relay_zeromq.REQUESTS_OPEN_FILES,
    }

    def summarize(self, msg: Message) -> str:
        body = msg.payload
        if msg.error or not isinstance(body, dict):
            return super().summarize(msg)
        if msg.channel == codec.CALL:
            text = f"args={value_text(body.get('args'))} kwargs={value_text(body.get('kwargs'))}"
            return text + (" +timestamp" if body.get("get_timestamp") else "")
        data = body.get("data")
        text = data["python_repr"] if isinstance(data, dict) and "python_repr" in data else value_text(data)
        if not body.get("success", True):
            text = f"✗ {text}"
        if body.get("timestamp") is not None:
            text = f"t={body['timestamp']:.3f} {text}"
        return text[:120]

    def publication(self, kind: str, data: Any) -> Message:
        """`publish oneliner STREAM --data JSON`: one sample on that stream."""
        try:
            codec.topic_bytes(kind)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return Message(
            profile=self.profile.name,
            endpoint=codec.STREAMS,
            direction=OUT,
            channel=kind,
            kind=codec.SAMPLE,
            payload=data,
        )

    async def listen(self, context: Context, channels: set[str] | None = None) -> None:
        trusted = bool(context.options.get("trust_pickle"))
        if trusted:
            context.notify(client.TRUST_WARNING)
        streams = set(context.options.get("streams", [])) | set(channels or ())
        await client.listen(self.profile, context.emit, streams, trusted)

    def session(self, context: Context) -> ClientSession:
        return ClientSession(self, context, functools.partial(client.command, self.profile, context.notify))

    async def publish(self, context: Context, messages: list[Message], *, wait_s: float, realtime: bool) -> None:
        from . import simulator

        await simulator.publish(self.profile, messages, context.emit, context.notify, wait_s, realtime)

    def simulator(self, context: Context, *, scenario: list[Message] | None, timeline: bool) -> Simulation:
        from . import simulator

        return simulator.Simulator(self.profile, context, scenario)

    async def probe(self, context: Context, *, warn: float, crit: float) -> ProbeReport:
        return await client.probe(self.profile, warn, crit, context.options.get("stream"))

    async def proxy(self, context: Context, *, upstream: dict[str, str], faults: Faults) -> None:
        from . import proxy

        await proxy.proxy(self.profile, context, upstream, faults)
