"""The oneliner Driver: what fieldctl calls for each role, wired to this package's modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from fieldctl.profiles import Profile
from fieldctl.profiles.schema import Setting
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import OUT, Message
from fieldctl.protocols.core.readable import value_text
from fieldctl.protocols.sdk.contract import BaseDriver, CommandOutcome, Emit, Notify, ProbeReport

from . import client, codec
from .settings import SETTINGS

if TYPE_CHECKING:
    from . import simulator  # the other side's roles import it when they run: a client role never does


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"listen", "command", "publish", "simulate", "probe"})
    settings: ClassVar[dict[str, Setting]] = {**BaseDriver.settings, **SETTINGS}
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, codec.CALL: "request", codec.REPLY: "reply"}
    #: ZeroMQ sockets, each with its mailbox and monitor (4): listen a SUB; command a REQ; probe a REQ
    #: and (--stream) a SUB; simulate a ROUTER and an XPUB (their peers' connections besides).
    open_files: ClassVar[dict[str, int]] = {"listen": 4, "command": 4, "probe": 8, "simulate": 8, "publish": 4}

    def __init__(self, profile: Profile, notify: Notify) -> None:
        super().__init__(profile, notify)
        self.simulator: simulator.Simulator | None = None

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

    async def listen(self, emit: Emit, *, channels: set[str] | None = None, options: dict[str, Any]) -> None:
        trusted = bool(options.get("trust_pickle"))
        if trusted:
            self.notify(client.TRUST_WARNING)
        streams = set(options.get("streams", [])) | set(channels or ())
        await client.listen(self.profile, emit, streams, trusted)

    async def command(
        self, name: str, data: Any, *, options: dict[str, Any], timeout: float, wait: bool, emit: Emit
    ) -> CommandOutcome:
        if data is not None:
            raise UsageError("oneliner commands take --args JSON and --kwargs JSON, not --data")
        return await client.command(self.profile, name, options, timeout, emit, self.notify)

    async def publish(
        self, messages: list[Message], emit: Emit, *, wait_s: float, realtime: bool, options: dict[str, Any]
    ) -> None:
        from . import simulator

        await simulator.publish(self.profile, messages, emit, self.notify, wait_s, realtime)

    async def simulate(
        self, emit: Emit, *, scenario: list[Message] | None, timeline: bool, options: dict[str, Any]
    ) -> None:
        from . import simulator

        self.simulator = simulator.Simulator(self.profile, emit, self.notify)
        await self.simulator.run(scenario)

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`publish oneliner STREAM --data J --via SOCKET`: the running simulator publishes it."""
        if verb != "publish" or self.simulator is None or self.simulator.publisher is None:
            return await super().control(verb, msg, emit)
        publisher = self.simulator.publisher
        await publisher.pub.wait_subscriber(float(self.profile.setting("timeouts.command_s", 5.0)))
        sent = publisher.send_message(msg)
        emit(sent)
        return CommandOutcome(True, f"published on {sent.channel}", [sent])

    async def probe(self, *, warn: float, crit: float, options: dict[str, Any]) -> ProbeReport:
        return await client.probe(self.profile, warn, crit, options.get("stream"))
