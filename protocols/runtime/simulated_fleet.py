"""Many simulated devices of one profile in one process (`simulate --devices N`): each on its own
private addresses (free loopback ports, socket paths in a private folder), each a full simulator
(heartbeats, timeline, answers), and the fleet file's targets that reach them once all are bound.
A broker's endpoint is shared by every device (each connects to it); the driver's
`device_settings` tell the devices apart there (a topic prefix), in the simulators and the targets."""

from __future__ import annotations

import asyncio
import copy
import gc
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from fieldctl.profiles import Profile
from fieldctl.profiles.loader import merge_tables, parse_value
from fieldctl.profiles.schema import check
from fieldctl.profiles.targets import Target
from fieldctl.protocols.core.errors import Timeout, UsageError
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.runtime.endpoints import (
    all_announced,
    check_free,
    is_socket_path,
    per_target_url,
    private_endpoints,
    with_port,
)
from fieldctl.protocols.runtime.registry import driver_for
from fieldctl.protocols.sdk.contract import Emit, Notify
from fieldctl.protocols.transport import together

#: The setting a simulator announces itself by (autotrainer's heartbeat `identifier`): each device
#: gets its own name there, so a board tells the devices apart. Profiles without it are unchanged.
IDENTIFIER = "simulate.identifier"
#: The setting that seeds a simulator's run (autotrainer's timeline and phases): each device gets
#: its own, derived from the profile's and its name, so devices differ and a run repeats.
SEED = "simulate.seed"
#: A simulated device's own id in the configuration it reports (autotrainer's get-configuration).
DEVICE_ID = "simulate.configuration.deviceId"
#: How long binding may take: a base plus a little per device (1,000 devices bind in a few seconds).
BOUND_BASE_S, BOUND_PER_DEVICE_S = 10.0, 0.05


def nested(settings: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys as the nested tables a profile holds them in."""
    tree: dict[str, Any] = {}
    for dotted, value in settings.items():
        *tables, last = dotted.split(".")
        node = tree
        for part in tables:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def device_names(count: int, prefix: str = "sim") -> list[str]:
    """sim-001, sim-002 ...: zero-padded so they sort as they count."""
    width = max(3, len(str(count)))
    return [f"{prefix}-{number:0{width}d}" for number in range(1, count + 1)]


def device_seed(seed: int, name: str) -> int:
    """A device's own seed: the same for the same fleet seed and name, unrelated between devices
    (a string seeds Random through a hash, the same in every process)."""
    return random.Random(f"{seed}:{name}").getrandbits(63)


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
    #: The profile settings that are this device's own (BaseDriver.device_settings), dotted.
    settings: dict[str, Any] = field(default_factory=dict)
    announced: set[str] = field(default_factory=set)

    @property
    def bound(self) -> bool:
        """Announced, with no port still left to the system (demo's rule, per device)."""
        return all_announced(self.profile, self.reached, self.announced)

    def note(self, msg: Message) -> bool:
        """Takes in a `bound` announcement (True), so it is not shown per device."""
        if not (msg.is_link and msg.kind == "bound" and msg.endpoint in self.reached):
            return False
        url = msg.payload.get("url") if isinstance(msg.payload, dict) else None
        if isinstance(url, str) and url:
            self.reached[msg.endpoint] = url
        self.announced.add(msg.endpoint)
        return True


def settle_collector() -> None:
    """The devices' long-lived state (sockets, profiles, tasks) leaves the garbage collector's reach
    once bound: a full collection over 1,000 devices' state stalls every heartbeat for a quarter of
    a second (measured); frozen, it is never walked again. One collection first, so that no garbage
    is kept forever."""
    gc.collect()
    gc.freeze()


class SimulatedFleet:
    """`base_port`: the devices' ports are consecutive from it (device by device, endpoint by
    endpoint in the profile's order), checked free first; None: each port is the system's choice."""

    def __init__(
        self, base: Profile, count: int, folder: str, notify_for: Callable[[str], Notify], base_port: int | None = None
    ) -> None:
        if count < 1:
            raise UsageError("--devices: at least 1")
        self.base, self.folder = base, folder
        self.ports: Iterator[int] | None = None
        #: the endpoints each device binds on a port of its own (a broker's is everyone's)
        self.ported = [
            name
            for name, url in base.endpoints.items()
            if name not in base.broker_endpoints and not is_socket_path(url)
        ]
        if base_port is not None and self.ported:
            ports = range(base_port, base_port + count * len(self.ported))
            check_free(ports)
            self.ports = iter(ports)
        elif base_port is not None and base.broker_endpoints:
            shared = ", ".join(sorted(base.broker_endpoints))
            raise UsageError(
                f"--base-port: the {base.name} devices bind no port (they share the broker at {shared}); leave it out"
            )
        template = driver_for(base, notify_for(base.name))  # the profile's settings checked once
        self.kind = type(template)
        self.devices = [
            self._device(name, template.device_settings(name, index)) for index, name in enumerate(device_names(count))
        ]
        self.drivers = [self.kind(device.profile, notify_for(device.name)) for device in self.devices]

    def _device(self, name: str, settings: dict[str, Any]) -> Device:
        """The base profile with private endpoints, its own identifier and the driver's settings for
        it: a copy, not a reload (a thousand loads and checks of the same profile took seconds)."""
        own = os.path.join(self.folder, name)
        private = private_endpoints(self.base, own)
        if self.ports is not None:
            private = {
                name: with_port(url, next(self.ports)) if name in self.ported else url for name, url in private.items()
            }
        if any(is_socket_path(url) for url in self.base.endpoints.values()):
            os.makedirs(own, mode=0o700, exist_ok=True)
        data = {**self.base.data, "endpoints": dict(private)}
        if settings:
            data = self._own_settings(data, name, settings)
        if "simulate" in data:  # a simulator may keep and change what it reads from here: its own copy
            data["simulate"] = copy.deepcopy(data["simulate"])
            own_settings = data["simulate"]
            if self.base.setting(IDENTIFIER) is not None:
                own_settings[IDENTIFIER.partition(".")[2]] = name
            seed = self.base.setting(SEED)
            if seed is not None:
                own_settings[SEED.partition(".")[2]] = device_seed(seed, name)
            if self.base.setting(DEVICE_ID) is not None:
                own_settings["configuration"]["deviceId"] = name
        return Device(name, replace(self.base, endpoints=dict(private), data=data), dict(private), dict(settings))

    def _own_settings(self, data: dict[str, Any], name: str, settings: dict[str, Any]) -> dict[str, Any]:
        """`data` with a device's own settings (dotted keys), each checked as the driver declares
        it; the tables on their way are copies, so the base profile and the other devices keep theirs."""
        tree = nested(settings)
        problems = check(tree, self.kind.settings, only=set(tree))
        if problems:
            key, reason = problems[0]
            raise UsageError(f"{self.kind.__name__}.device_settings({name!r}): {key}: {reason}")
        return merge_tables(data, tree)

    def targets(self, sets: dict[str, Any], group: str | None) -> list[Target]:
        """What reaches each device: the URLs it announced; a broker's URL as it is (every device
        connects there); an endpoint no simulator binds (a client's own socket) keeps the profile's
        URL, made distinct per target. Each target's `set` table carries the device's own settings."""
        targets = []
        brokers = self.base.broker_endpoints
        for device in self.devices:
            endpoints = {
                name: url
                if name in brokers
                else device.reached[name]
                if name in device.announced
                else per_target_url(url, device.name)
                for name, url in self.base.endpoints.items()
            }
            own = {**sets, **device.settings}
            targets.append(Target(device.name, self.base.name, None, endpoints, own, (group,) if group else ()))
        return targets

    async def run(
        self,
        emit_for: Callable[[str], Emit],
        *,
        scenario: list[Message] | None,
        timeline: bool,
        options: dict[str, Any],
        on_bound: Callable[[], None],
    ) -> None:
        """Runs every device until cancelled; `on_bound` once all have announced their addresses
        (each device's own `bound` links are taken in here, not passed on)."""
        all_bound = asyncio.Event()
        waiting = {device.name for device in self.devices if not device.bound}  # a broker's alone: none
        if not waiting:
            all_bound.set()

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

        # together, not gather: one device failing cancels the rest and waits for their clean-up
        running = asyncio.ensure_future(
            together(
                *(
                    driver.simulator(
                        driver.context(emitter(device), options), scenario=scenario, timeline=timeline
                    ).run()
                    for device, driver in zip(self.devices, self.drivers, strict=True)
                )
            )
        )
        try:
            bound = asyncio.ensure_future(all_bound.wait())
            limit = BOUND_BASE_S + BOUND_PER_DEVICE_S * len(self.devices)
            await asyncio.wait([running, bound], timeout=limit, return_when=asyncio.FIRST_COMPLETED)
            bound.cancel()
            if running.done():
                running.result()  # a device's error (a port, a path) ends the run with its exit code
            if not all_bound.is_set():
                raise Timeout(
                    f"{len(waiting)} of {len(self.devices)} {self.base.name} devices did not announce "
                    f"their endpoints within {limit:g} s"
                )
            settle_collector()
            on_bound()
            await running
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
