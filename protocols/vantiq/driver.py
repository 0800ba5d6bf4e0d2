"""The vantiq Driver: what fieldctl calls for each role, wired to this package's modules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from fieldctl.profiles import Profile
from fieldctl.profiles.schema import Setting
from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import FieldctlError, UsageError
from fieldctl.protocols.core.message import OUT, Message
from fieldctl.protocols.core.readable import value_text
from fieldctl.protocols.sdk.contract import BaseDriver, CommandOutcome, Emit, Notify, ProbeReport

from . import client, codec
from .settings import SETTINGS

if TYPE_CHECKING:
    from . import simulator  # the other side's roles import it when they run: a client role never does


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"register", "publish", "simulate", "probe"})
    settings: ClassVar[dict[str, Setting]] = {**BaseDriver.settings, **SETTINGS}
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, "query": "request", "response": "reply"}
    #: One WebSocket connection a client role; the server's listening socket (its peers' besides).
    open_files: ClassVar[dict[str, int]] = {"register": 1, "command": 1, "publish": 1, "probe": 1, "simulate": 1}
    commands_from_simulator: ClassVar[bool] = True

    def __init__(self, profile: Profile, notify: Notify) -> None:
        super().__init__(profile, lambda text: notify(redact.scrub_text(text)))
        self.simulator: simulator.Simulator | None = None

    def summarize(self, msg: Message) -> str:
        return describe(msg)

    def publication(self, kind: str, data: Any) -> Message:
        """`publish vantiq SOURCE --data JSON`: a notification from SOURCE (or, with --via, a
        publish to SOURCE's connector)."""
        if not kind:
            raise UsageError("publish vantiq SOURCE: name the source")
        return Message(
            profile=self.profile.name,
            endpoint=client.ENDPOINT,
            direction=OUT,
            channel=codec.NOTIFICATION,
            kind=kind,
            payload=data,
        )

    async def register(self, emit: Emit, *, options: dict[str, Any]) -> None:
        with scrubbed_errors():
            await client.Connector(self.profile, options, shown(emit), self.notify).run()

    async def publish(
        self, messages: list[Message], emit: Emit, *, wait_s: float, realtime: bool, options: dict[str, Any]
    ) -> None:
        with scrubbed_errors():
            await client.publish(self.profile, messages, shown(emit), self.notify, wait_s, options)

    async def probe(self, *, warn: float, crit: float, options: dict[str, Any]) -> ProbeReport:
        with scrubbed_errors():
            report = await client.probe(self.profile, warn, crit, options)
        report.summary = redact.scrub_text(report.summary)
        return report

    async def simulate(
        self, emit: Emit, *, scenario: list[Message] | None, timeline: bool, options: dict[str, Any]
    ) -> None:
        from . import simulator

        self.simulator = simulator.Simulator(self.profile, options, shown(emit), self.notify)
        with scrubbed_errors():
            await self.simulator.run(scenario)

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`publish vantiq SOURCE --data J --via S` publishes to SOURCE's connector;
        `command vantiq query|reconnect|test-close|close --data J --via S` acts on it."""
        if self.simulator is None:
            return await super().control(verb, msg, emit)
        emit = shown(emit)  # the asking process has not seen the secrets this one knows
        with scrubbed_errors():
            if verb == "publish":
                sent = await self.simulator.publish(str(msg.kind), msg.payload, emit)
                return CommandOutcome(True, f"published to {msg.kind}", [redact.scrub(sent)])
            outcome = await self.simulator.command(str(msg.kind), msg.payload, emit)
        outcome.summary = redact.scrub_text(outcome.summary)
        return outcome


def shown(emit: Emit) -> Emit:
    """`emit` for a vantiq role. Credentials a frame carries (the accessToken and idToken a
    server hands out, a reconnectSecret, which lets anyone take the source over) are masked in
    payload and raw, and remembered; then every secret known so far is scrubbed, so a peer that
    echoes one back (or a control client in another process, which knows none) never shows it."""
    return lambda msg: emit(redact.scrub(redact.mask(msg)))


@contextlib.contextmanager
def scrubbed_errors() -> Iterator[None]:
    """Error texts quote what peers sent; a peer may have sent a secret."""
    try:
        yield
    except FieldctlError as exc:
        raise type(exc)(redact.scrub_text(str(exc))) from None


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
