"""The tracim Driver: what fieldctl calls for each role, wired to this package's modules."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from fieldctl.profiles import Profile
from fieldctl.profiles.schema import Setting
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import LINK, OUT, Message
from fieldctl.protocols.sdk.contract import BaseDriver, CommandOutcome, Emit, Notify, ProbeReport

from . import client, codec, paths
from .settings import SETTINGS

if TYPE_CHECKING:
    from . import simulator  # the other side's roles import it when they run: a client role never does


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"listen", "register", "command", "publish", "simulate", "probe"})
    settings: ClassVar[dict[str, Setting]] = {**BaseDriver.settings, **SETTINGS}
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, "keepalive": "quiet"}
    ready_state: ClassVar[str] = "registered"  # the daemon has confirmed us (daemon_client_added)
    #: A document is a connection of its own: a registered client holds its socket and, as it
    #: registers, the daemon's first documents and its own (3.2 a client measured, 300 at once); a
    #: probe or a command its temporary socket and a document each way; the daemon its socket.
    open_files: ClassVar[dict[str, int]] = {
        "listen": 4,
        "register": 4,
        "command": 3,
        "probe": 3,
        "publish": 1,
        "simulate": 1,
    }

    def __init__(self, profile: Profile, notify: Notify) -> None:
        super().__init__(profile, notify)
        self.channels = codec.Channels.from_profile(profile)
        self.simulator: simulator.Simulator | None = None

    def vocabulary(self, key: str) -> frozenset[str] | None:
        """Channels: the profile's, `other` for every type it does not name (and what does not
        decode), and link lines; kinds are the DaemonEvent types, which the daemon names."""
        if key == "channel":
            return frozenset({*self.profile.channels, codec.OTHER_CHANNEL, codec.TRACIM_CHANNEL, LINK})
        return None

    def _context(self, emit: Emit, options: dict[str, Any]) -> client.Context:
        return client.Context(
            self.profile,
            self.channels,
            paths.master_path(self.profile, options),
            paths.client_path(self.profile),
            emit,
            self.notify,
        )

    def summarize(self, msg: Message) -> str:
        return client.describe(msg)

    def publication(self, kind: str, data: Any) -> Message:
        """A TLM event_type (`content.created.html-document`) or `daemon_tracim_event` becomes a
        Tracim event; any other kind is sent as that DaemonEvent type with `data`."""
        if kind == codec.TRACIM_EVENT or "." in kind:
            if kind == codec.TRACIM_EVENT:
                try:
                    tlm = codec.parse_tlm(data if isinstance(data, str) else codec.tlm_text(data))
                except codec.DecodeError as exc:
                    raise UsageError(f"daemon_tracim_event --data must be a TLM (object or text): {exc}") from None
                kind, data = tlm["event_type"], {"fields": {}, **tlm}
            payload = codec.build_tlm(kind, data, int(time.time() * 1000), time.time())
            return Message(
                profile=self.profile.name,
                endpoint="client",
                direction=OUT,
                channel=codec.TRACIM_CHANNEL,
                kind=kind,
                payload=payload,
            )
        if kind in (codec.CLIENT_ADD, codec.DO_REQUEST) and not isinstance(data, dict):
            self.notify(f"{kind} without an object as data kills the real daemon (it panics and exits 2)")
        return Message(
            profile=self.profile.name,
            endpoint="master",
            direction=OUT,
            channel=self.channels.of(kind),
            kind=kind,
            payload=data,
        )

    async def listen(self, emit: Emit, *, channels: set[str] | None = None, options: dict[str, Any]) -> None:
        await self.register(emit, options=options)

    async def register(self, emit: Emit, *, options: dict[str, Any]) -> None:
        await client.Plugin(self._context(emit, options)).run()

    async def command(
        self, name: str, data: Any, *, options: dict[str, Any], timeout: float, wait: bool, emit: Emit
    ) -> CommandOutcome:
        return await client.command(self._context(emit, options), name, data, timeout)

    async def probe(self, *, warn: float, crit: float, options: dict[str, Any]) -> ProbeReport:
        return await client.probe(self._context(lambda msg: None, options), warn, crit)

    async def publish(
        self, messages: list[Message], emit: Emit, *, wait_s: float, realtime: bool, options: dict[str, Any]
    ) -> None:
        from . import simulator

        await simulator.publish(self._context(emit, options), messages, options, realtime)

    async def simulate(
        self, emit: Emit, *, scenario: list[Message] | None, timeline: bool, options: dict[str, Any]
    ) -> None:
        from . import simulator

        self.simulator = simulator.Simulator(replace(self._context(emit, options), listening="master"))
        await self.simulator.run(scenario, timeline)

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`publish tracim KIND --via SOCKET`: the running simulator sends it to its clients."""
        if verb != "publish" or self.simulator is None:
            return await super().control(verb, msg, emit)
        return await self.simulator.inject(msg, emit)
