"""Private runs and simulated fleets by the profile's [topology]: a broker's endpoint is where both
sides meet, so it is never moved, never waited for, and shared by every simulated device; the
driver's device_settings tell those devices apart, in their simulators and their targets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fieldctl.profiles import load_profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import link
from fieldctl.protocols.runtime import simulated_fleet
from fieldctl.protocols.runtime.endpoints import all_announced, private_endpoints
from fieldctl.protocols.runtime.registry import driver_for
from fieldctl.protocols.runtime.simulated_fleet import SimulatedFleet
from fieldctl.protocols.sdk.contract import Simulation
from tests.helpers.waiting import until

BROKER = "tcp://broker.example:1883"


def brokered(*endpoints: str) -> Any:
    """autotrainer with these endpoints a broker's, events at BROKER."""
    return load_profile(
        "autotrainer",
        endpoints=[f"events={BROKER}"],
        sets=[f"topology.{name}=broker" for name in endpoints],
    )


def test_a_private_run_keeps_a_brokers_endpoint_as_resolved(tmp_path: Path) -> None:
    private = private_endpoints(brokered("events"), str(tmp_path))
    assert private == {"events": BROKER, "commands": "tcp://127.0.0.1:*"}
    tracim = load_profile("tracim")
    assert private_endpoints(tracim, str(tmp_path)) == {
        "master": str(tmp_path / "master.sock"),
        "client": str(tmp_path / "client.sock"),  # the client's own: still private
    }


def test_only_the_endpoints_a_simulator_binds_are_waited_for() -> None:
    profile = brokered("events")
    reached = {"events": BROKER, "commands": "tcp://127.0.0.1:*"}
    assert not all_announced(profile, reached, set())
    assert all_announced(profile, {**reached, "commands": "tcp://127.0.0.1:4000"}, {"commands"})
    assert all_announced(brokered("events", "commands"), {"events": BROKER, "commands": BROKER}, set())
    tracim = load_profile("tracim")  # socket paths: bound once one `bound` came; the client's needs none
    paths = {"master": "/tmp/m.sock", "client": "/tmp/c.sock"}
    assert not all_announced(tracim, paths, set()) and all_announced(tracim, paths, {"master"})


def hooked(monkeypatch: pytest.MonkeyPatch, **methods: Any) -> None:
    """The fleet's driver: autotrainer's with these methods of its own."""

    def with_hook(profile: Any, notify: Any) -> Any:
        driver = driver_for(profile, notify)
        return type("Hooked", (type(driver),), methods)(profile, notify)

    monkeypatch.setattr(simulated_fleet, "driver_for", with_hook)


def own_versions(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """A device_settings of the driver's own, for the fleet to ask."""
    hooked(monkeypatch, device_settings=lambda self, device, index: settings(device, index))


def test_fleet_devices_share_the_broker_and_carry_their_own_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_versions(monkeypatch, lambda device, index: {"simulate.version": f"{device}/{index}"})
    fleet = SimulatedFleet(brokered("events"), 3, str(tmp_path), lambda name: print)
    assert [device.profile.endpoints["events"] for device in fleet.devices] == [BROKER] * 3
    commands = {device.profile.endpoints["commands"] for device in fleet.devices}
    assert commands == {"tcp://127.0.0.1:*"}, "each its own port, the system's choice"
    assert [driver.profile.setting("simulate.version") for driver in fleet.drivers] == [
        "sim-001/0",
        "sim-002/1",
        "sim-003/2",
    ]
    assert load_profile("autotrainer").setting("simulate.version") != "sim-001/0", "the base keeps its own"
    targets = fleet.targets({"heartbeat.interval_s": 1}, "room")
    assert [target.endpoints["events"] for target in targets] == [BROKER] * 3
    assert [target.sets for target in targets] == [
        {"heartbeat.interval_s": 1, "simulate.version": f"sim-00{n}/{n - 1}"} for n in (1, 2, 3)
    ]


def test_a_device_setting_the_driver_does_not_declare_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_versions(monkeypatch, lambda device, index: {"simulate.verson": device})
    with pytest.raises(UsageError, match=r"device_settings\('sim-001'\): simulate.verson: unknown key"):
        SimulatedFleet(brokered("events"), 2, str(tmp_path), lambda name: print)


def test_devices_that_only_connect_to_a_broker_are_ready_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker protocol's simulator binds nothing and announces no `bound` (a `connected` at most):
    the fleet is ready without one."""

    class Connecting(Simulation):
        def __init__(self, profile: Any, emit: Any) -> None:
            super().__init__(profile)
            self.emit = emit

        async def run(self) -> None:
            self.emit(link(self.profile.name, "events", "connected", {"url": BROKER}))
            await asyncio.Event().wait()

    hooked(monkeypatch, simulator=lambda self, context, **_: Connecting(self.profile, context.emit))
    fleet = SimulatedFleet(brokered("events", "commands"), 3, str(tmp_path), lambda name: print)
    shown: list[tuple[str, Any]] = []

    async def main() -> None:
        ready = asyncio.Event()
        run = asyncio.ensure_future(
            fleet.run(
                lambda name: lambda msg: shown.append((name, msg.kind)),
                scenario=None,
                timeline=False,
                options={},
                on_bound=ready.set,
            )
        )
        await asyncio.wait_for(ready.wait(), 5)
        await until(lambda: len(shown) == 3, what="every device's connected link")
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)

    asyncio.run(main())
    assert sorted(shown) == [("sim-001", "connected"), ("sim-002", "connected"), ("sim-003", "connected")]


def test_base_port_numbers_only_the_endpoints_each_device_binds(tmp_path: Path) -> None:
    from tests.helpers.ports import free_port

    base = free_port()
    fleet = SimulatedFleet(brokered("events"), 1, str(tmp_path), lambda name: print, base)
    assert fleet.devices[0].profile.endpoints == {"events": BROKER, "commands": f"tcp://127.0.0.1:{base}"}
    with pytest.raises(
        UsageError,
        match=r"--base-port: the autotrainer devices bind no port \(they share the broker at commands, events\)",
    ):
        SimulatedFleet(brokered("events", "commands"), 2, str(tmp_path), lambda name: print, base)
