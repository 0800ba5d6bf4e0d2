"""What the fleet board and the Prometheus exporter know of each target: link state, heartbeat
age, last event, message rate and counts, malformed frames, errors, the last round trip, and while
it is down, why and since when (a refused or failed listen, or a link that went away).

Pure bookkeeping on Messages (no I/O, no rich), so the board draws it, the exporter reads it at
scrape time and the bench feeds it synthetic messages. It lives in cli/, not protocols/: it is the
operators' view of many drivers, not part of the Driver contract. Memory is fixed per target
whatever the run time or the peer sends: a rate over fixed one-second buckets, at most
KINDS_KEPT (channel, kind) counters, every wire string cut to NAME_CHARS.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from time import monotonic
from typing import TYPE_CHECKING

from fieldctl.protocols.core.message import LINK

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.protocols.core.message import Message

#: Seconds the message rate is averaged over (one bucket a second).
RATE_WINDOW_S = 10
#: Distinct (channel, kind) counters per target; later newcomers count under kind OTHER.
KINDS_KEPT = 64
OTHER = "other"
#: Characters kept of a channel, kind, link state or error text from a wire.
NAME_CHARS = 64
#: Link states that mean a connection is not there (a driver's, or the fleet runner's own DOWN).
DOWN = "down"
UNSUPPORTED = "unsupported"
#: `absent`: a driver with presence (BaseDriver.presence) knows the device gone, its broker still there.
PRESENT, ABSENT = "present", "absent"
DOWN_STATES = frozenset({DOWN, UNSUPPORTED, "retrying", "disconnected", ABSENT})
#: The heartbeat watch's pseudo-endpoint (protocols/runtime/heartbeat.py): its stale/alive are not a link.
HEARTBEAT_ENDPOINT = "heartbeat"


class Rate:
    """Events per second over the last RATE_WINDOW_S whole seconds, in fixed memory. Reading it
    changes nothing, so a board or a scrape may read it from its own thread."""

    __slots__ = ("counts", "seconds")

    def __init__(self) -> None:
        self.counts = [0] * RATE_WINDOW_S
        self.seconds = [-1] * RATE_WINDOW_S  # the whole second each bucket counts

    def add(self, now: float) -> None:
        second = int(now)
        index = second % RATE_WINDOW_S
        if self.seconds[index] != second:
            self.seconds[index], self.counts[index] = second, 0
        self.counts[index] += 1

    def per_second(self, now: float) -> float:
        """The rate over the window's complete seconds (the current one is still filling)."""
        second = int(now)
        total = sum(
            count for count, at in zip(self.counts, self.seconds, strict=True) if second - RATE_WINDOW_S < at < second
        )
        return total / (RATE_WINDOW_S - 1)


@dataclass
class TargetState:
    name: str
    profile: str
    heartbeat_channel: str | None
    stale_after_s: float
    groups: tuple[str, ...] = ()
    started: float = field(default_factory=time.monotonic)
    #: endpoint -> its last link state; DOWN under the runner's own endpoint while listen fails.
    links: dict[str, str] = field(default_factory=dict)
    last_link: str = ""
    heard: bool = False  # a message (not a link line) arrived since the last failure
    last_beat: float | None = None  # monotonic
    last_event: tuple[str, str, float] | None = None  # channel, kind, wall-clock ts
    rate: Rate = field(default_factory=Rate)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    malformed: int = 0
    errors: int = 0
    last_error: str = ""
    #: While down: why, in a word or two ("refused", "timed out", "disconnected") and in full (the
    #: error, when there is one), and since when (wall clock, as Message.ts). Kept through the
    #: retries of one outage; read only while down.
    outage: str = ""
    outage_detail: str = ""
    down_since: float | None = None
    #: The lost link of this outage counted as an error, so the failed listen it ends in does not again.
    loss_counted: bool = False
    last_rtt_s: float | None = None
    #: The last probe: Nagios code and metrics (seconds); None until one ran.
    probe: tuple[int, dict[str, float]] | None = None
    #: Its driver's links say whether the device is there (BaseDriver.presence): up only while
    #: `present`, the latest of its links' `present` and `absent` (a down link forgets it).
    presence: bool = False
    present: bool = False

    @property
    def up(self) -> bool:
        """Linked: no endpoint in a down state, and either a link came up or a message arrived."""
        # copy(): the board and the exporter read from their own threads while ingest writes
        states = [state for endpoint, state in self.links.copy().items() if endpoint != HEARTBEAT_ENDPOINT]
        if UNSUPPORTED in states:  # a profile that cannot listen: up is what its probe says
            return self.probe is not None and self.probe[0] < 2
        if any(state in DOWN_STATES for state in states):
            return False
        if self.presence:
            return self.present
        return bool(states) or self.heard

    @property
    def link(self) -> str:
        """One word for the board: a down state if any endpoint is down, else the latest state."""
        for state in self.links.copy().values():
            if state in DOWN_STATES:
                return state
        return self.last_link or ("up" if self.heard else "connecting")

    def heartbeat_age(self, now: float) -> float | None:
        """Seconds since the last heartbeat (since the start while none came); None without heartbeats."""
        if self.heartbeat_channel is None:
            return None
        return now - (self.last_beat if self.last_beat is not None else self.started)

    def stale(self, now: float) -> bool:
        age = self.heartbeat_age(now)
        return age is not None and age > self.stale_after_s


class FleetState:
    """Per-target state, fed every Message of every target (`add`) and the runner's verdicts."""

    def __init__(
        self,
        profiles: Iterable[tuple[str, Profile]],
        groups: Mapping[str, tuple[str, ...]] | None = None,
        presence: Collection[str] = (),
    ) -> None:
        """`presence`: the targets whose drivers report the device's presence (BaseDriver.presence)."""
        groups = groups or {}
        self.targets: dict[str, TargetState] = {
            name: TargetState(
                name,
                profile.name,
                profile.heartbeat.channel,
                profile.heartbeat.stale_after_s,
                groups.get(name, ()),
                presence=name in presence,
            )
            for name, profile in profiles
        }

    def add(self, target: str, msg: Message) -> None:
        """One message of `target`: the hot path of a fleet's ingest, so kept to plain operations."""
        state = self.targets[target]
        channel, kind = msg.channel, msg.kind
        if len(channel) > NAME_CHARS:
            channel = channel[:NAME_CHARS]
        if type(kind) is not str or len(kind) > NAME_CHARS:
            kind = str(kind)[:NAME_CHARS]
        if channel == LINK:
            if msg.endpoint == HEARTBEAT_ENDPOINT:
                state.links[msg.endpoint] = kind
                return
            was_up = state.up  # link lines are rare: what a transition costs, not each message
            state.links[msg.endpoint] = kind
            state.last_link = kind
            if kind == PRESENT or kind in DOWN_STATES:
                state.present = kind == PRESENT
            if kind in DOWN_STATES and (was_up or state.down_since is None):
                payload = msg.payload if isinstance(msg.payload, dict) else {}
                said = payload.get("error") or payload.get("reason")
                state.outage, state.outage_detail = kind, str(said)[:200] if said else ""
                state.down_since = msg.ts
                if was_up:  # a link lost counts as an error, as a failed listen does
                    state.errors += 1
                    state.loss_counted = True
            return
        now = monotonic()
        state.heard = True
        state.rate.add(now)
        if msg.rtt_s is not None:
            state.last_rtt_s = msg.rtt_s
        if msg.error:
            state.malformed += 1
            return
        if channel == state.heartbeat_channel and msg.direction == "in":
            state.last_beat = now
        state.last_event = (channel, kind, msg.ts)
        key = (channel, kind)
        counts = state.counts
        if key not in counts and len(counts) >= KINDS_KEPT:
            key = (channel, OTHER)
            if key not in counts and len(counts) >= KINDS_KEPT + KINDS_KEPT:
                key = (OTHER, OTHER)  # a peer inventing channels too: one more bucket, no more
        counts[key] = counts.get(key, 0) + 1

    def down(self, target: str, reason: str, link: str = DOWN, outage: str = "failed") -> None:
        """The runner's verdict: listen failed (or ended), or (`unsupported`) never can run;
        `outage` says why in a word or two (`reason` in full)."""
        state = self.targets[target]
        if state.up or state.down_since is None:
            state.down_since = time.time()
        state.outage, state.outage_detail = outage, reason[:200]
        state.links = {DOWN: link}
        state.last_link = link
        state.heard = state.present = False
        if state.loss_counted:
            state.loss_counted = False
        else:
            state.errors += 1
        state.last_error = reason[:200]

    def retrying(self, target: str) -> None:
        """A new attempt starts: the old endpoint states no longer say anything."""
        self.targets[target].links.pop(DOWN, None)

    def error(self, target: str, text: str) -> None:
        """A driver's warning about this target (notify)."""
        state = self.targets[target]
        state.errors += 1
        state.last_error = text[:200]

    def rtt(self, target: str, seconds: float) -> None:
        self.targets[target].last_rtt_s = seconds

    def probed(self, target: str, status: int, metrics: dict[str, float]) -> None:
        self.targets[target].probe = (status, dict(metrics))
