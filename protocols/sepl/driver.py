"""The sepl Driver: what fieldctl calls for each role, wired to this package's modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from fieldctl.profiles import Profile
from fieldctl.profiles.schema import Setting
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import OUT, Message
from fieldctl.protocols.core.readable import duration_text, value_text
from fieldctl.protocols.sdk.contract import BaseDriver, CommandOutcome, Emit, Notify, ProbeReport

from . import client, codec
from .codec import ENDPOINT
from .settings import SETTINGS

if TYPE_CHECKING:
    from . import simulator  # the other side's roles import it when they run: a client role never does

#: `publish sepl oversize --data N`: a fault test, not a way to make the simulator allocate gigabytes.
OVERSIZE_MAX = 256 << 20


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"register", "publish", "simulate", "probe"})
    settings: ClassVar[dict[str, Setting]] = {**BaseDriver.settings, **SETTINGS}
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, "response": "reply", "latency": "reply"}
    #: One WebSocket connection a client role; the platform's listening socket (its peers' besides).
    open_files: ClassVar[dict[str, int]] = {"register": 1, "publish": 1, "probe": 1, "simulate": 1}
    commands_from_simulator: ClassVar[bool] = True

    def __init__(self, profile: Profile, notify: Notify) -> None:
        super().__init__(profile, notify)
        self.platform: simulator.Platform | None = None

    def summarize(self, msg: Message) -> str:
        return describe(msg)

    def publication(self, kind: str, data: Any) -> Message:
        return Message(
            profile=self.profile.name, endpoint=ENDPOINT, direction=OUT, channel="event", kind=kind, payload=data
        )

    async def register(self, emit: Emit, *, options: dict[str, Any]) -> None:
        await client.Connector(self.profile, options, emit, self.notify).run()

    async def publish(
        self, messages: list[Message], emit: Emit, *, wait_s: float, realtime: bool, options: dict[str, Any]
    ) -> None:
        await client.publish(self.profile, messages, emit, self.notify, options, wait_s)

    async def probe(self, *, warn: float, crit: float, options: dict[str, Any]) -> ProbeReport:
        return await client.probe(self.profile, options, self.notify, warn, crit)

    async def simulate(
        self, emit: Emit, *, scenario: list[Message] | None, timeline: bool, options: dict[str, Any]
    ) -> None:
        from . import simulator

        self.platform = simulator.Platform(self.profile, options, emit, self.notify)
        await self.platform.run(scenario)

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`command sepl DEVICE:SERVICE --data J --via S` pushes a command and reports the
        connector's answer and its latency. Fault injection: `publish sepl raw --data '"TEXT"' --via S`
        sends TEXT as one frame, `publish sepl oversize --data N` a JSON string of N characters,
        `publish sepl close` closes every connection."""
        if self.platform is None:
            return await super().control(verb, msg, emit)
        kind = str(msg.kind)
        if verb == "publish" and kind == "raw":
            return await self.platform.broadcast_raw(
                msg.payload if isinstance(msg.payload, str) else codec.go_json(msg.payload), emit
            )
        if verb == "publish" and kind == "oversize" and isinstance(msg.payload, int):
            if not 0 <= msg.payload <= OVERSIZE_MAX:
                raise UsageError(f"publish sepl oversize --data N: N from 0 to {OVERSIZE_MAX}")
            return await self.platform.broadcast_raw(codec.go_json("x" * msg.payload), emit)
        if verb == "publish" and kind == "close":
            return await self.platform.close_all("closed by fieldctl")
        device, sep, service = kind.partition(":")
        if not sep or not device or not service:
            return CommandOutcome(False, f"expected DEVICE:SERVICE, got {kind!r}")
        return await self.platform.command(device, service, msg.payload, emit)


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
