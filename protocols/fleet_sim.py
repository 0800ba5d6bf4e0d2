"""Many simulated devices of one profile in one process (`simulate --devices N`): each on its own
private addresses (free loopback ports, socket paths in a private folder), each a full simulator
(heartbeats, timeline, answers), and the fleet file's targets that reach them once all are bound."""

from __future__ import annotations

import asyncio
import copy
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from fieldctl.profiles import Profile
from fieldctl.profiles.loader import build, parse_value
from fieldctl.profiles.targets import Target

from .driver import Emit, Notify, driver_for
from .endpoints import is_wildcard, per_target_url, private_endpoints
from .errors import Timeout, UsageError
from .message import Message

#: The setting a simulator announces itself by (autotrainer's heartbeat `identifier`): each device
#: gets its own name there, so a board tells the devices apart. Profiles without it are unchanged.
IDENTIFIER = "simulate.identifier"
#: How long binding may take: a base plus a little per device (1,000 devices bind in a few seconds).
BOUND_BASE_S, BOUND_PER_DEVICE_S = 10.0, 0.05


def device_names(count: int, prefix: str = "sim") -> list[str]:
    """sim-001, sim-002 ...: zero-padded so they sort as they count."""
    width = max(3, len(str(count)))
    return [f"{prefix}-{number:0{width}d}" for number in range(1, count + 1)]


def raise_fd_limit() -> None:
    """Two sockets per device (and a monitor each, with ZeroMQ) outgrow the usual soft limit of 1024
    open files: the soft limit goes up to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass  # a container may refuse; a smaller fleet still runs


def client_sets(assignments: list[str]) -> dict[str, Any]:
    """The command line's --set values a client needs too (heartbeat pace, limits ...): all but the
    simulator's own `simulate.*` keys, as the fleet file's `set` table."""
    sets: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if sep and not key.startswith("simulate."):
            sets[key.strip()] = parse_value(value)
    return sets


@dataclass
class Device:
    """One simulated device: its profile on private addresses, and where it was reached."""

    name: str
    profile: Profile
    #: endpoint -> URL: the private one, then the real one from its `bound` announcement.
    reached: dict[str, str]
    announced: set[str] = field(default_factory=set)

    @property
    def bound(self) -> bool:
        """Announced, with no port still left to the system (demo's rule, per device)."""
        return bool(self.announced) and not any(is_wildcard(url) for url in self.reached.values())

    def note(self, msg: Message) -> bool:
        """Takes in a `bound` announcement (True), so it is not shown per device."""
        if not (msg.is_link and msg.kind == "bound" and msg.endpoint in self.reached):
            return False
        url = msg.payload.get("url") if isinstance(msg.payload, dict) else None
        if isinstance(url, str) and url:
            self.reached[msg.endpoint] = url
        self.announced.add(msg.endpoint)
        return True


class Fleet:
    def __init__(self, base: Profile, count: int, folder: str) -> None:
        if count < 1:
            raise UsageError("--devices: at least 1")
        self.base = base
        self.devices = [self._device(name, folder) for name in device_names(count)]

    def _device(self, name: str, folder: str) -> Device:
        own = os.path.join(folder, name)
        os.makedirs(own, mode=0o700, exist_ok=True)
        private = private_endpoints(self.base, own)
        data = copy.deepcopy(self.base.data)
        data["endpoints"] = dict(private)
        if self.base.setting(IDENTIFIER) is not None:
            data["simulate"][IDENTIFIER.partition(".")[2]] = name
        return Device(name, build(data, self.base.source, self.base.host), dict(private))

    def targets(self, sets: dict[str, Any], group: str | None) -> list[Target]:
        """What reaches each device: the URLs it announced; an endpoint no simulator binds (a
        client's own socket) keeps the profile's URL, made distinct per target."""
        targets = []
        for device in self.devices:
            endpoints = {name: device.reached[name] if name in device.announced else per_target_url(url, device.name)
                         for name, url in self.base.endpoints.items()}
            targets.append(Target(device.name, self.base.name, None, endpoints, dict(sets),
                                  (group,) if group else ()))
        return targets

    async def run(self, emit_for: Callable[[str], Emit], notify_for: Callable[[str], Notify], *,
                  scenario: list[Message] | None, timeline: bool, options: dict[str, Any],
                  on_bound: Callable[[], None]) -> None:
        """Runs every device until cancelled; `on_bound` once all have announced their addresses
        (each device's own `bound` links are taken in here, not passed on)."""
        all_bound = asyncio.Event()
        waiting = {device.name for device in self.devices}

        def emitter(device: Device) -> Emit:
            emit = emit_for(device.name)

            def device_emit(msg: Message) -> None:
                if device.note(msg):
                    if device.bound and device.name in waiting:
                        waiting.discard(device.name)
                        if not waiting:
                            all_bound.set()
                    return
                emit(msg)
            return device_emit

        tasks = []
        for device in self.devices:
            driver = driver_for(device.profile, notify_for(device.name))
            tasks.append(asyncio.ensure_future(driver.simulate(emitter(device), scenario=scenario,
                                                               timeline=timeline, options=options)))
        running = asyncio.gather(*tasks)
        try:
            bound = asyncio.ensure_future(all_bound.wait())
            limit = BOUND_BASE_S + BOUND_PER_DEVICE_S * len(self.devices)
            await asyncio.wait([running, bound], timeout=limit, return_when=asyncio.FIRST_COMPLETED)
            bound.cancel()
            if running.done():
                running.result()  # a device's error (a port, a path) ends the run with its exit code
            if not all_bound.is_set():
                raise Timeout(f"{len(waiting)} of {len(self.devices)} {self.base.name} devices did not announce "
                              f"their endpoints within {limit:g} s")
            on_bound()
            await running
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
