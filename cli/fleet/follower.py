"""A fleet's targets followed at once: one driver `listen` per target on one asyncio loop, every
Message tagged with its target and counted in a FleetState; the board (`listen --fleet`) and the
exporter (`export prometheus`) both run on this.

A target that cannot be reached, or whose driver fails, shows as down and is tried again with a
capped backoff: it never stops the others. This is driver-API-level code, like cli/roles/listen.py: the
drivers own every socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldctl.cli.fleet.state import UNSUPPORTED, FleetState
from fieldctl.protocols.core.errors import FieldctlError, Unsupported, UsageError
from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, together

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.profiles.targets import Target
    from fieldctl.protocols.core.message import Message
    from fieldctl.protocols.sdk.contract import BaseDriver, ProbeReport

#: Seconds before the first retry of a failed target, and the cap the backoff doubles up to.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 15.0
#: Unobserved failures of drivers' background tasks reported on stderr; the rest are only counted.
STRAYS_SHOWN = 10

TaggedEmit = Callable[[str, "Message"], None]


@dataclass
class Member:
    """One target of the fleet, resolved: its profile and a driver of its own."""

    name: str
    profile: Profile
    driver: BaseDriver
    groups: tuple[str, ...] = ()


def picked(path: str | Path, targets: dict[str, Target], key: str, patterns: set[str]) -> dict[str, Target]:
    """The targets whose name (`key` "target") or one of whose groups (`key` "group") matches one
    of the globs (fnmatch: `sim-15*`, `rig-[12]`); a glob that matches none is a usage error,
    with the nearest name, rather than a fleet silently smaller than asked for."""
    from fnmatch import fnmatchcase

    from fieldctl.profiles.schema import did_you_mean

    def names(target: Target) -> Iterable[str]:
        return (target.name,) if key == "target" else target.groups

    for pattern in sorted(patterns):
        if not any(fnmatchcase(name, pattern) for target in targets.values() for name in names(target)):
            known = {name for target in targets.values() for name in names(target)}
            what = "no such target" if key == "target" else "no such group"
            hint = did_you_mean(pattern, known) or (f" ({len(known)} {key}s, none matches)" if known else "")
            raise UsageError(f"--filter {key}={pattern}: {what} in {path}{hint}")
    return {
        name: target
        for name, target in targets.items()
        if any(fnmatchcase(each, pattern) for pattern in patterns for each in names(target))
    }


def outage_of(exc: BaseException) -> str:
    """Why a target's listen failed, in a word or two for the board (the message says it in full)."""
    from fieldctl.protocols.core.errors import ConnectFailure, ProtocolFailure, Timeout

    if isinstance(exc, Timeout):
        return "timed out"
    if isinstance(exc, ConnectFailure):
        text = str(exc).lower()
        if "auth" in text or "password" in text or "token" in text:
            return "auth refused"
        return "refused" if "refused" in text else "unreachable"
    if isinstance(exc, ProtocolFailure):
        return "protocol error"
    return "failed" if isinstance(exc, FieldctlError) else "internal error"


class FleetFollower:
    """The targets of a fleet file (or of one --group), with the state they feed."""

    def __init__(self, members: list[Member], *, quiet: bool = False) -> None:
        self.adopt(members)
        #: Warnings go to the state (errors) and, unless quiet (a board on the terminal), to stderr.
        self.quiet = quiet
        self.strays = 0

    @classmethod
    def load(
        cls,
        path: str | Path,
        group: str | None = None,
        only: set[str] | None = None,
        *,
        groups: set[str] | None = None,
        quiet: bool = False,
        sets: Iterable[str] = (),
        profile_files: Iterable[str | Path] = (),
    ) -> FleetFollower:
        """Resolves every target up front, so a bad fleet file or profile is exit 2 before anything
        runs; `sets` and `profile_files` (the command line's) apply to every target. `only` and
        `groups` are globs (`--filter target=` and `group=`): the targets followed are those that
        match one of each."""
        from fieldctl.profiles.targets import load_fleet

        targets = load_fleet(written(path), group)
        if only is not None:
            targets = picked(path, targets, "target", only)
        if groups is not None:
            targets = picked(path, targets, "group", groups)
        if not targets:
            raise UsageError(f"{path}: no targets")
        fleet = cls([], quiet=quiet)
        members = []
        for name, target in targets.items():
            from fieldctl.protocols.runtime.registry import driver_for

            try:
                profile = target.load(profile_files=profile_files, sets=sets)
                members.append(Member(name, profile, driver_for(profile, fleet.notifier(name)), target.groups))
            except UsageError as exc:  # which target of the file, first
                raise UsageError(f"{path}: targets.{name}: {exc}") from None
        fleet.adopt(members)
        return fleet

    def reserve_open_files(self, source: str | Path, *, probing: bool = False, serving: int = 0) -> None:
        """Raises the process's limit on open files and refuses (exit 2, before anything runs) a
        fleet that the hard limit cannot hold: every target's listen, and when `probing` a wave of
        PROBES_AT_ONCE probes besides, at what their drivers declare (`BaseDriver.open_files`), and
        `serving` connections of the process's own (the exporter's scrapers)."""
        from fieldctl.protocols.runtime.open_files import per_run, reserve
        from fieldctl.protocols.sdk.probing import PROBES_AT_ONCE

        drivers = [member.driver for member in self.members]
        needed = sum(per_run(driver, "listen") for driver in drivers)
        if probing and drivers:
            needed += min(len(drivers), PROBES_AT_ONCE) * max(per_run(driver, "probe") for driver in drivers)
        reserve(needed + serving, f"{source}: {len(drivers)} targets")

    def adopt(self, members: list[Member]) -> None:
        """These members, and a fresh state for them (their drivers' notifiers come from `notifier`)."""
        self.members = members
        self.state = FleetState(
            ((m.name, m.profile) for m in members),
            {m.name: m.groups for m in members},
            {m.name for m in members if m.driver.presence},
        )

    def notifier(self, name: str) -> Callable[[str], None]:
        def notify(text: str) -> None:
            self.state.error(name, text)
            self._report(name, text)

        return notify

    async def follow(self, emit: TaggedEmit, channels: set[str] | None = None) -> None:
        """Every target's listen until cancelled; each Message goes to the state, then to `emit`."""
        asyncio.get_running_loop().set_exception_handler(self._stray)
        await together(*(self._follow(member, emit, channels) for member in self.members))

    def intake(self, name: str, emit: TaggedEmit) -> Callable[[Message], None]:
        """The Emit a target's driver reports to: the state first, then `emit` with the target's name."""
        add = self.state.add

        def tagged(msg: Message) -> None:
            add(name, msg)
            emit(name, msg)

        return tagged

    async def _follow(self, member: Member, emit: TaggedEmit, channels: set[str] | None) -> None:
        from fieldctl.protocols.runtime.heartbeat import HeartbeatWatch

        name, state = member.name, self.state
        tagged = self.intake(name, emit)
        wanted = channels
        beat = member.profile.heartbeat.channel
        if wanted and beat is not None:
            wanted = wanted | {beat}  # as listen: the watch must hear heartbeats the filters hide
        delay = RETRY_FIRST_S
        reported = False  # this outage is on stderr already: one line per outage, however long
        while True:
            watch = HeartbeatWatch(member.profile, tagged)
            # Its own task, ended with each attempt: gather would leave it running when listen fails.
            beats = asyncio.ensure_future(watch.run())
            try:
                await member.driver.listen(member.driver.context(watch), wanted)
                reason, outage = "listen ended", "ended"
            except Unsupported as exc:
                state.down(name, str(exc), UNSUPPORTED, "unsupported")
                self._report(name, str(exc))
                return
            except FieldctlError as exc:
                reason, outage = str(exc), outage_of(exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001  a driver's bug takes down its own target only
                reason, outage = f"internal error: {type(exc).__name__}: {exc}", outage_of(exc)
            finally:
                beats.cancel()
            if state.targets[name].heard:  # it was up: a new outage, and the backoff starts afresh
                delay, reported = RETRY_FIRST_S, False
            state.down(name, reason, outage=outage)
            if not reported:
                self._report(name, f"down: {reason}; retrying")
                reported = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            state.retrying(name)

    def _stray(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """A driver's background task that failed unobserved: one warning line, not a traceback
        (with hundreds of targets, one bad one must not flood the terminal with them)."""
        self.strays += 1
        if self.strays > STRAYS_SHOWN:
            return
        error = context.get("exception")
        text = (
            f"{context.get('message', 'background task failed')}: {error!r}" if error else str(context.get("message"))
        )
        self._report("fleet", text + (" (further ones not shown)" if self.strays == STRAYS_SHOWN else ""))

    def _report(self, name: str, text: str) -> None:
        """A warning naming the target, unless quiet; a stderr that is gone stops no target."""
        from fieldctl.cli.framework.common import warn

        if not self.quiet:
            with contextlib.suppress(BrokenPipeError, ValueError):
                warn(f"{name}: {text}")

    async def probe(self, member: Member) -> ProbeReport:
        """The driver's probe with `fieldctl probe`'s default thresholds; any failure is a report."""
        from fieldctl.protocols.core.errors import NagiosCode
        from fieldctl.protocols.sdk.contract import ProbeReport
        from fieldctl.protocols.sdk.probing import probed, thresholds

        try:
            return await probed(member.driver, *thresholds(member.profile), {})
        except Exception as exc:  # noqa: BLE001  a driver's bug: UNKNOWN, and the others go on
            return ProbeReport(NagiosCode.UNKNOWN, f"internal error: {type(exc).__name__}: {exc}")


def written(path: str | Path) -> Path:
    """The fleet file, once it is there: `simulate --devices N --write-fleet FILE &` writes it (whole,
    by a rename) when its devices are up, and a script starts the reader at once; it gets the time
    `listen` gives a peer to appear, then a missing file is the usual error."""
    source = Path(path)
    deadline, pause = time.monotonic() + LISTEN_REFUSED_AFTER_S, 0.02
    while not source.exists() and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 2, 0.25)
    return source
