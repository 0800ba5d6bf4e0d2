"""The autotrainer Driver: what fieldctl calls for each role, wired to this package's modules."""

from __future__ import annotations

from typing import Any, ClassVar

from fieldctl.profiles import Profile
from fieldctl.profiles.schema import Setting, did_you_mean
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import LINK, OUT, Message
from fieldctl.protocols.core.readable import value_text
from fieldctl.protocols.sdk.contract import BaseDriver, Context, Notify, ProbeReport, Simulation
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.runners import relay_zeromq

from . import client, codec
from .client_state import describe_result
from .settings import SETTINGS


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"listen", "command", "publish", "simulate", "probe", "proxy"})
    settings: ClassVar[dict[str, Setting]] = {**BaseDriver.settings, **SETTINGS}
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, "emergency": "alarm", "command_result": "reply"}
    #: ZeroMQ sockets, each with its mailbox and monitor (4): listen a SUB; command and probe a REQ
    #: and a SUB; simulate an XPUB and a ROUTER (their peers' connections besides); publish an XPUB;
    #: proxy an XPUB and an XSUB, a ROUTER and a DEALER for each client (relay_zeromq).
    open_files: ClassVar[dict[str, int]] = {
        "listen": 4,
        "command": 8,
        "probe": 8,
        "simulate": 8,
        "publish": 4,
        "proxy": relay_zeromq.PUBLICATIONS_OPEN_FILES + relay_zeromq.REQUESTS_OPEN_FILES,
    }

    def __init__(self, profile: Profile, notify: Notify) -> None:
        super().__init__(profile, notify)
        self.vocab = codec.Vocabulary.from_profile(profile)

    def summarize(self, msg: Message) -> str:
        body = msg.payload
        if msg.error or not isinstance(body, dict):
            return "" if body is None else value_text(body)
        if msg.channel == "heartbeat":
            return f"{body.get('identifier')} {body.get('version')}"
        if msg.channel in ("reply", "command_result"):
            return describe_result(f"nonce {body.get('nonce')}", body) + _short(body.get("data"))
        if msg.channel == "command":
            return _short(body.get("data")).strip()
        return _short(body.get("context")).strip()

    def vocabulary(self, key: str) -> frozenset[str] | None:
        """Channels: the profile's topics, the command socket's two and link lines. Kinds: the
        profile's events and commands and what the codec names itself (an unknown code is a number)."""
        if key == "channel":
            return frozenset({*self.vocab.channel_topic, "command", "reply", LINK, relay_zeromq.SUBSCRIPTION})
        if key == "kind":
            return frozenset(
                {*self.vocab.event_code, *self.vocab.command_code, *codec.OWN_KINDS, *relay_zeromq.SUBSCRIPTION_KINDS}
            )
        return None

    def publication(self, kind: str, data: Any) -> Message:
        channel = "heartbeat" if kind == "heartbeat" else "event"
        if channel == "event" and kind not in self.vocab.event_code and not kind.isdigit():
            hint = did_you_mean(kind, self.vocab.event_code) or f" (see: fieldctl profiles show {self.profile.name})"
            raise UsageError(f"unknown event kind {kind!r}{hint}")
        return Message(
            profile=self.profile.name,
            endpoint="events",
            direction=OUT,
            channel=channel,
            kind=int(kind) if kind.isdigit() else kind,
            payload=data,
        )

    async def listen(self, context: Context, channels: set[str] | None = None) -> None:
        await client.listen(self.profile.endpoints["events"], self.vocab, context, channels)

    def session(self, context: Context) -> client.Session:
        return client.Session(self, context, self.profile.endpoints, self.vocab)

    async def publish(self, context: Context, messages: list[Message], *, wait_s: float, realtime: bool) -> None:
        from . import simulator

        await simulator.publish(self.profile, self.vocab, messages, context.emit, context.notify, wait_s, realtime)

    def simulator(self, context: Context, *, scenario: list[Message] | None, timeline: bool) -> Simulation:
        from . import simulator

        return simulator.Simulator(self.profile, self.vocab, context, scenario, timeline)

    async def probe(self, context: Context, *, warn: float, crit: float) -> ProbeReport:
        return await client.probe(self.profile.endpoints, self.vocab, warn, crit)

    async def proxy(self, context: Context, *, upstream: dict[str, str], faults: Faults) -> None:
        from . import proxy

        await proxy.proxy(self.profile, self.vocab, context, upstream, faults)


def _short(value: Any, limit: int = 100) -> str:
    if value is None:
        return ""
    text = (
        " ".join(f"{k}={value_text(v, limit)}" for k, v in value.items())
        if isinstance(value, dict)
        else value_text(value)
    )
    text = " " + text
    return text if len(text) <= limit else text[: limit - 1] + "…"
