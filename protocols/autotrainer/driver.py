"""The autotrainer Driver: what fieldctl calls for each role, wired to this package's modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from fieldctl.profiles import Profile
from fieldctl.profiles.schema import Setting, did_you_mean
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import LINK, OUT, Message
from fieldctl.protocols.core.readable import value_text
from fieldctl.protocols.sdk.contract import BaseDriver, CommandOutcome, Emit, Notify, ProbeReport

from . import client, codec
from .client_state import describe_result
from .settings import SETTINGS

if TYPE_CHECKING:
    from . import simulator  # the other side's roles import it when they run: a client role never does


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"listen", "command", "publish", "simulate", "probe"})
    settings: ClassVar[dict[str, Setting]] = {**BaseDriver.settings, **SETTINGS}
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, "emergency": "alarm", "command_result": "reply"}
    #: ZeroMQ sockets, each with its mailbox and monitor (4): listen a SUB; command and probe a REQ
    #: and a SUB; simulate an XPUB and a ROUTER (their peers' connections besides); publish an XPUB.
    open_files: ClassVar[dict[str, int]] = {"listen": 4, "command": 8, "probe": 8, "simulate": 8, "publish": 4}

    def __init__(self, profile: Profile, notify: Notify) -> None:
        super().__init__(profile, notify)
        self.vocab = codec.Vocabulary.from_profile(profile)
        self.simulator: simulator.Simulator | None = None

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
            return frozenset({*self.vocab.channel_topic, "command", "reply", LINK})
        if key == "kind":
            return frozenset({*self.vocab.event_code, *self.vocab.command_code, *codec.OWN_KINDS})
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

    async def listen(self, emit: Emit, *, channels: set[str] | None = None, options: dict[str, Any]) -> None:
        await client.listen(self.profile.endpoints["events"], self.vocab, emit, self.stats, channels)

    async def command(
        self, name: str, data: Any, *, options: dict[str, Any], timeout: float, wait: bool, emit: Emit
    ) -> CommandOutcome:
        async with self.session(emit, options) as session:
            return await session.command(name, data, timeout=timeout, wait=wait)

    def session(self, emit: Emit, options: dict[str, Any]) -> client.Session:
        return client.Session(self, self.profile.endpoints, self.vocab, emit, options)

    async def publish(
        self, messages: list[Message], emit: Emit, *, wait_s: float, realtime: bool, options: dict[str, Any]
    ) -> None:
        from . import simulator

        await simulator.publish(self.profile, self.vocab, messages, emit, self.notify, wait_s, realtime)

    async def simulate(
        self, emit: Emit, *, scenario: list[Message] | None, timeline: bool, options: dict[str, Any]
    ) -> None:
        from . import simulator

        self.simulator = simulator.Simulator(self.profile, self.vocab, emit, self.notify)
        await self.simulator.run(scenario, timeline)

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`publish autotrainer KIND --via SOCKET`: the running simulator publishes it, once it
        has a subscriber (as `publish` does)."""
        if verb != "publish" or self.simulator is None or self.simulator.publisher is None:
            return await super().control(verb, msg, emit)
        publisher = self.simulator.publisher
        await publisher.pub.wait_subscriber(float(self.profile.setting("timeouts.command_s", 5.0)))
        sent = publisher.send_message(msg)
        for published in sent:
            emit(published)
        return CommandOutcome(True, f"published {msg.kind}", sent)

    async def probe(self, *, warn: float, crit: float, options: dict[str, Any]) -> ProbeReport:
        return await client.probe(self.profile.endpoints, self.vocab, warn, crit)


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
