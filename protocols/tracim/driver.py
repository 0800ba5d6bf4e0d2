"""The tracim Driver: what fieldctl calls for each role, wired to this package's modules."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, ClassVar

from fieldctl.profiles import Profile
from fieldctl.profiles.schema import Setting
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import LINK, OUT, Message
from fieldctl.protocols.sdk.contract import (
    BaseDriver,
    ClientSession,
    CommandOutcome,
    CommandRequest,
    Context,
    Emit,
    Notify,
    ProbeReport,
    Simulation,
)
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.runners import relay_documents

from . import client, codec, paths
from .settings import SETTINGS


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset(
        {"listen", "register", "command", "publish", "simulate", "probe", "proxy"}
    )
    settings: ClassVar[dict[str, Setting]] = {**BaseDriver.settings, **SETTINGS}
    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, "keepalive": "quiet"}
    ready_state: ClassVar[str] = "registered"  # the daemon has confirmed us (daemon_client_added)
    #: A document is a connection of its own: a registered client holds its socket and, as it
    #: registers, the daemon's first documents and its own (3.2 a client measured, 300 at once); a
    #: probe or a command its temporary socket and a document each way; the daemon its socket; the
    #: proxy its master socket and, for each of at most relay_documents.MAX_ROUTES clients, a socket
    #: of its own and a document in flight each way and from the daemon.
    open_files: ClassVar[dict[str, int]] = {
        "listen": 4,
        "register": 4,
        "command": 3,
        "probe": 3,
        "publish": 1,
        "simulate": 1,
        "proxy": 4 + 4 * relay_documents.MAX_ROUTES,
    }

    def __init__(self, profile: Profile, notify: Notify) -> None:
        super().__init__(profile, notify)
        self.channels = codec.Channels.from_profile(profile)

    def vocabulary(self, key: str) -> frozenset[str] | None:
        """Channels: the profile's, `other` for every type it does not name (and what does not
        decode), and link lines; kinds are the DaemonEvent types, which the daemon names."""
        if key == "channel":
            return frozenset({*self.profile.channels, codec.OTHER_CHANNEL, codec.TRACIM_CHANNEL, LINK})
        return None

    def _wiring(self, emit: Emit, options: dict[str, Any]) -> client.Wiring:
        return client.Wiring(
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

    async def listen(self, context: Context, channels: set[str] | None = None) -> None:
        await self.register(context)

    async def register(self, context: Context) -> None:
        await client.Plugin(self._wiring(context.emit, context.options)).run()

    def session(self, context: Context) -> ClientSession:
        return ClientSession(self, context, self._command)

    async def _command(self, command: CommandRequest) -> CommandOutcome:
        """A document to the daemon and, where it answers, one back on a temporary socket."""
        wiring = self._wiring(command.emit, command.options)
        return await client.command(wiring, command.name, command.data, command.timeout)

    async def probe(self, context: Context, *, warn: float, crit: float) -> ProbeReport:
        return await client.probe(self._wiring(lambda msg: None, context.options), warn, crit)

    async def publish(self, context: Context, messages: list[Message], *, wait_s: float, realtime: bool) -> None:
        from . import simulator

        await simulator.publish(self._wiring(context.emit, context.options), messages, context.options, realtime)

    async def proxy(self, context: Context, *, upstream: dict[str, str], faults: Faults) -> None:
        from . import proxy

        await proxy.run(self.profile, context, upstream, faults)

    def simulator(self, context: Context, *, scenario: list[Message] | None, timeline: bool) -> Simulation:
        from . import simulator

        wiring = replace(self._wiring(context.emit, context.options), listening="master")
        return simulator.Simulator(wiring, scenario, timeline)
