"""The Driver contract: what every protocol package offers the CLI, so a new system needs no
CLI change. docs/plugins.md is the full text; tests/contract holds every installed protocol to it.

A protocol package registers a ``Driver`` (a subclass of ``BaseDriver``) in the
``fieldctl.protocols`` entry-point group and names the roles it plays in ``roles``; the others
raise ``Unsupported``. Each role gets one ``Context``: it reports traffic through ``emit``
(Messages, link states included) and human warnings through ``notify``; it never prints. Commands
go only through a ``ClientSession``; ``simulator`` returns a ``Simulation`` handle that runs the
other side and answers its control requests. Link states (channel ``link``, the state as ``kind``):
``bound`` (a simulator listens; ``payload.url`` is the real address, and demo, fleets and tests
wait for it), ``connected``/``ready`` (a client's connection is up / its handshake done),
``peer-connected``, ``retrying`` (another attempt follows), ``disconnected``;
``present``/``absent`` (a driver with ``presence``: the device itself is heard / known gone, behind
a broker); ``stale``/``alive`` come from the CLI's heartbeat watch. A protocol may add its own
(``logged-in``, ``configured``). A role's own command-line options are declared in the package's
``options.py`` (protocols/sdk/options.py); the CLI parses them and the role receives them as
``context.options``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

from fieldctl.profiles import Profile
from fieldctl.profiles.schema import SECONDS, TEXTS, Setting
from fieldctl.protocols.core.errors import NagiosCode, Unsupported
from fieldctl.protocols.core.limits import Limits
from fieldctl.protocols.core.message import Message, link
from fieldctl.protocols.core.readable import value_text
from fieldctl.protocols.sdk.faults import Faults

Emit = Callable[[Message], None]
Notify = Callable[[str], None]


def link_emitter(profile: str, emit: Emit) -> Callable[[str, str, Any], None]:
    """A transport's connection-state callback that reports as link Messages."""
    return lambda endpoint, state, detail: emit(link(profile, endpoint, state, detail))


def _uncounted(msg: Message) -> None:
    """A duplicate nobody counts (a role run outside a view)."""


@dataclass(frozen=True)
class Context:
    """What one run of a role gets, the same for every role: where its messages go, where a
    person's warnings go, its protocol options (parsed: see options.py) and what one frame may
    cost. The CLI builds it with `BaseDriver.context`; a driver keeps no run's state of its own."""

    emit: Emit
    notify: Notify
    options: dict[str, Any]
    limits: Limits
    #: A message heard again and not emitted (a device's re-sent emergency): the views count it.
    duplicate: Callable[[Message], None] = _uncounted


@dataclass
class CommandOutcome:
    ok: bool
    summary: str
    messages: list[Message] = field(default_factory=list)
    #: Seconds from the request leaving to its answer arriving (the first reply), when one came.
    rtt_s: float | None = None
    #: The data a person or script wants from this command (a device's reply data, a call's return
    #: value, a query's rows), shown as JSON after the exchange; None when there is nothing to show.
    #: The driver picks it, so the CLI never reads a protocol's payload; the CLI scrubs it.
    result: Any = None


@dataclass
class ProbeReport:
    status: NagiosCode
    summary: str
    #: Durations in seconds, one per step of the probe, named with the unit (`command_rtt_seconds`).
    metrics: dict[str, float] = field(default_factory=dict)
    warn: float = 0.0
    crit: float = 0.0


#: The looks a driver may give a channel in `BaseDriver.styles`; the CLI maps each to its own
#: rendering. alarm: needs attention now; quiet: routine traffic (heartbeats, keepalives);
#: request: a command or query going to the other side; reply: its answer; link: connection states.
LOOKS = frozenset({"alarm", "quiet", "request", "reply", "link"})


@dataclass(frozen=True)
class CommandRequest:
    """One command as a session sends it: the name and data the user gave; `timeout`, a hard
    deadline for the whole exchange, whatever keeps arriving (Timeout past it); `wait`, also wait
    for a result the protocol delivers after the first reply (an asynchronous command), where it
    has one; where this command's messages go, and its options (its own over the session's)."""

    name: str
    data: Any
    timeout: float
    wait: bool
    emit: Emit
    options: dict[str, Any]


Send = Callable[[CommandRequest], Awaitable[CommandOutcome]]


class ClientSession:
    """A long-lived client of one profile: many commands over the same connections, until closed.
    An async context manager, and the only way commands are sent: `fieldctl command` uses one
    once, the console and check keep one per profile. A driver that plays the command role
    returns one from `session`: this class with the `send` that does one command on connections
    of its own, or a subclass whose `send` keeps them. Without either, every command is refused."""

    def __init__(self, driver: BaseDriver, context: Context, send: Send | None = None) -> None:
        self.driver, self.context, self._send = driver, context, send

    async def command(
        self,
        name: str,
        data: Any,
        *,
        timeout: float,
        wait: bool,
        emit: Emit | None = None,
        options: dict[str, Any] | None = None,
    ) -> CommandOutcome:
        """One request and its answer (see CommandRequest); `emit` and `options` are this
        command's own, over the session's. Emits the request and every reply; the outcome's rtt_s
        runs from the request leaving to the first reply."""
        merged = {**self.context.options, **(options or {})}
        return await self.send(CommandRequest(name, data, timeout, wait, emit or self.context.emit, merged))

    async def send(self, request: CommandRequest) -> CommandOutcome:
        if self._send is not None:
            return await self._send(request)
        profile = self.driver.profile.name
        if self.driver.commands_from_simulator:
            raise Unsupported(
                f"a {profile} command goes from the other side to a client, so fieldctl sends one as that side:"
                f" start `fieldctl simulate {profile} --control SOCKET` and add --via SOCKET"
            )
        raise Unsupported(f"command is not supported for profile {profile}")

    async def close(self) -> None:
        """Closes what the session holds open; it can be closed more than once."""

    async def __aenter__(self) -> ClientSession:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class Simulation:
    """A running simulator, as `BaseDriver.simulator` returns it: `run` plays the other side until
    cancelled; `control` answers a request on its control path (`publish|command --via SOCKET`,
    see protocols/runtime/control.py) while it runs."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    async def run(self) -> None:
        raise NotImplementedError

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        raise Unsupported(f"the {self.profile.name} simulator does not take {verb} requests")


class BaseDriver:
    #: The roles this driver plays, of ROLES (protocols/sdk/options.py): listen, register, command,
    #: publish, simulate, probe, proxy. The CLI and the conformance kit ask this, never whether a method is
    #: overridden; a role left out answers Unsupported, with the reason where there is one.
    roles: ClassVar[frozenset[str]] = frozenset()
    #: The profile keys this protocol reads (dotted, ``*`` for any one name) and their types, beyond
    #: the core tables: `profiles validate` refuses undeclared keys, and every run refuses
    #: declared ones of the wrong type. A driver extends these: ``{**BaseDriver.settings, ...}``.
    settings: ClassVar[dict[str, Setting]] = {
        "timeouts.command_s": SECONDS,  # cli/roles/command.py, console
        "demo.set": TEXTS,  # cli/roles/demo.py: --set assignments the demo needs
    }
    #: channel -> one of LOOKS, for the live table and a command's exchange; other channels look
    #: plain. A driver extends these: ``{**BaseDriver.styles, "emergency": "alarm"}``.
    styles: ClassVar[dict[str, str]] = {"link": "link", "heartbeat": "quiet", "command": "request", "reply": "reply"}
    #: The link state a client role reports once it can send and receive (its handshake done):
    #: tools that must not act before then (a check's listener) wait for it.
    ready_state: ClassVar[str] = "ready"
    #: role -> the open files (descriptors) one run of it holds at most: its sockets, and what its
    #: transport adds to each (a ZeroMQ socket's mailbox and monitor: 4 a socket). Fleets multiply
    #: these (a fleet's listens, a wave of probes, simulated devices, bench's clients) and refuse
    #: to start what the process's limit cannot hold (protocols/runtime/open_files.py). A role
    #: the driver plays and leaves out counts as one ZeroMQ socket.
    open_files: ClassVar[dict[str, int]] = {}
    #: The protocol's commands go from the other side to a client (a platform commands its
    #: connectors): fieldctl sends one only as that side, `command --via` a running simulator.
    commands_from_simulator: ClassVar[bool] = False
    #: True when a client's connection being up does not mean the device is there (a broker): the
    #: driver's listen then emits a link state `present` when it hears the device and `absent` when
    #: it knows the device is gone (e.g. a last will, or no heartbeat), and the fleet board, the
    #: exporter's `fieldctl_up` and check's waits count the device up only while `present`.
    presence: ClassVar[bool] = False

    def __init__(self, profile: Profile, notify: Notify) -> None:
        self.profile = profile
        self.notify = notify

    def context(
        self, emit: Emit, options: dict[str, Any] | None = None, duplicate: Callable[[Message], None] = _uncounted
    ) -> Context:
        """The Context one run of a role gets (see Context)."""
        return Context(emit, self.notify, options or {}, self.profile.limits, duplicate)

    def device_settings(self, device: str, index: int) -> dict[str, Any]:
        """Profile settings (dotted keys -> values) that give simulated device `device` (the
        `index`-th, from 0) its own identity when devices share an address (a broker): e.g. a topic
        prefix. Applied to that device's simulator and written into its fleet-file target's `set`
        table, so a client of the target talks to that device. Default: {} (devices told apart by
        their addresses)."""
        return {}

    def summarize(self, msg: Message) -> str:
        """A short text for one table cell."""
        return "" if msg.payload is None else value_text(msg.payload)

    def vocabulary(self, key: str) -> frozenset[str] | None:
        """Every value this profile's messages can carry in the Message field `key` ("channel",
        "kind"), so a --filter value or a check's event step no message can have is refused
        before anything connects; None where the other side names its own (the default: nothing
        is refused)."""
        return None

    def publication(self, kind: str, data: Any) -> Message:
        """The Message `publish PROFILE KIND --data JSON` sends."""
        raise Unsupported(f"publish KIND is not supported for profile {self.profile.name}")

    async def listen(self, context: Context, channels: set[str] | None = None) -> None:
        """Follows the other side until cancelled, emitting every message received (malformed ones
        with ``error`` set). `channels`: the --filter channel= values, a hint for subscribing (the
        CLI filters again). Raises ConnectFailure when the other side cannot be reached at the
        start; reconnects when it goes away later."""
        raise Unsupported(f"listen is not supported for profile {self.profile.name}")

    async def register(self, context: Context) -> None:
        """Signs on as the other side's client (connector, plugin) and answers what it asks, until
        cancelled; emits what it sends and receives."""
        raise Unsupported(f"register is not supported for profile {self.profile.name}")

    def session(self, context: Context) -> ClientSession:
        """A client session for many commands (see ClientSession); the context's options are the
        command role's, used by every command of the session unless one overrides them."""
        return ClientSession(self, context)

    async def publish(self, context: Context, messages: list[Message], *, wait_s: float, realtime: bool) -> None:
        """Sends each message as this side of the protocol does. `wait_s`: how long to wait for the
        other side to be ready to receive (a subscriber, a connection); `realtime`: keep the
        recorded gaps (replay.paced). Messages that do not replay are skipped (replay.replayable)."""
        raise Unsupported(f"publish is not supported for profile {self.profile.name}")

    def simulator(self, context: Context, *, scenario: list[Message] | None, timeline: bool) -> Simulation:
        """The other side on the profile's endpoints: its `run` serves them until cancelled,
        announcing each it binds with a ``bound`` link (a broker's endpoint, which it connects to:
        ``connected`` at most). `scenario`: messages to play instead of the built-in timeline;
        `timeline`: play the built-in one. Survives any peer: a bad one gets a notify line, an
        error answer where the protocol has one, and only its own connection dropped."""
        raise Unsupported(f"simulate is not supported for profile {self.profile.name}")

    async def proxy(self, context: Context, *, upstream: dict[str, str], faults: Faults) -> None:
        """Stands between the other side's clients and the other side: binds the profile's
        endpoints (announcing each with a ``bound`` link), connects each to `upstream` (endpoint
        -> URL) and relays every frame both ways unchanged through a Pipe per direction
        (protocols/sdk/runners/relay.py), which emits what the frame decodes to (``in``: from
        upstream, ``out``: to it) and applies `faults`. Runs until cancelled: a client or the
        upstream going away is a link state and the proxy keeps serving the others."""
        raise Unsupported(f"proxy is not supported for profile {self.profile.name}")

    async def probe(self, context: Context, *, warn: float, crit: float) -> ProbeReport:
        """A health check. `crit`: the hard time limit and the CRITICAL threshold (seconds), `warn`
        the WARNING one; metrics in seconds (probing.verdict applies the thresholds). An
        unreachable peer raises ConnectFailure, which the CLI reports as CRITICAL."""
        raise Unsupported(f"probe is not supported for profile {self.profile.name}")
