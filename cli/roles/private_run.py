"""A profile's simulator in this process on private loopback addresses and socket paths, for a
self-contained run (`demo`, `check --simulate`, the console's `simulate`): nothing else on the
machine is touched, and the client side is pointed at the addresses the simulator announces. A
broker's endpoint stays where the profile points (both sides connect to it; nobody binds it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fieldctl.cli.framework import common
from fieldctl.profiles import Profile
from fieldctl.protocols.core.errors import Timeout
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.contract import Emit
from fieldctl.protocols.transport import together

if TYPE_CHECKING:
    from fieldctl.cli.framework.common import ProfileOptions

BOUND_WITHIN_S = 10.0
CONTROL = "control"


def throwaway_credentials(profile: Profile) -> None:
    """The profile's secret references that are unset get a throwaway value, in this process only:
    both sides of a private run read the same one."""
    for ref in profile.auth.values():
        if ref.env and ref.env not in os.environ:
            os.environ[ref.env] = "fieldctl-demo"


@contextlib.asynccontextmanager
async def private_simulator(
    profile: Profile,
    folder: str,
    *,
    options: dict[str, Any] | None = None,
    control: str | None = None,
    emit: Emit | None = None,
    scenario: list[Message] | None = None,
    timeline: bool = True,
) -> AsyncIterator[dict[str, str]]:
    """Runs the simulator of `profile` (resolved, with its overrides) on private endpoints until the
    block ends; yields endpoint name -> the URL it bound, a broker's as the profile has it (and,
    with `control`, a socket path, "control" -> its control socket, see
    protocols/runtime/control.py). `emit` gets what the simulator reports but the private
    addresses it binds; `scenario` and `timeline` are `simulate`'s."""
    from fieldctl.protocols.runtime.endpoints import all_announced, on_endpoints, private_endpoints

    throwaway_credentials(profile)
    private = private_endpoints(profile, folder)
    prof = on_endpoints(profile, private)
    device = common.driver(prof)
    bound: dict[str, str] = dict(private)
    heard: set[str] = set()
    announced = asyncio.Event()

    def check() -> None:
        if all_announced(prof, bound, heard) and (control is None or CONTROL in bound):
            announced.set()

    def device_sink(msg: Message) -> None:
        if msg.is_link and msg.kind == "bound" and (msg.endpoint in private or msg.endpoint == CONTROL):
            bound[msg.endpoint] = msg.payload["url"]
            if msg.endpoint in private:
                heard.add(msg.endpoint)
                check()
                return
        if emit is not None:
            emit(msg)
        check()

    check()  # a profile whose endpoints are all a broker's: nothing to wait for
    simulation = device.simulator(device.context(device_sink, options), scenario=scenario, timeline=timeline)
    work = [simulation.run()]
    if control is not None:
        from fieldctl.protocols.runtime.control import ControlServer

        work.append(ControlServer(control, simulation.control, device_sink, prof.name).run())
    simulator = asyncio.ensure_future(together(*work))  # one failing cancels the other, and waits
    try:
        await common.wait_while_running(simulator, announced.wait(), BOUND_WITHIN_S)
        if simulator.done():
            simulator.result()
        if not announced.is_set():
            raise Timeout(f"the {prof.name} simulator did not announce its endpoints within {BOUND_WITHIN_S:g} s")
        yield bound
    finally:
        simulator.cancel()
        await asyncio.gather(simulator, return_exceptions=True)


def broker_overrides_only(given: ProfileOptions, profile: Profile, run: str) -> None:
    """A private run (`run`: "demo", "--devices") picks its own addresses: an `--endpoint` may move
    only a broker's endpoint (where both sides meet), and `--host` only fills in a broker's; else
    a usage error that says why, before anything runs."""
    from fieldctl.protocols.core.errors import UsageError

    brokers = profile.broker_endpoints
    for override in given.endpoints:
        name = override.partition("=")[0]
        if name in profile.endpoints and name not in brokers:
            which = f"broker endpoints: {', '.join(sorted(brokers))}" if brokers else f"{profile.name} has none"
            raise UsageError(
                f"--endpoint {name}: {run} puts {name} on a private address of its own; "
                f"--endpoint may move a broker's endpoint only ({which})"
            )
    if given.host is not None and not brokers:
        raise UsageError(
            f"--host: {run} puts every endpoint of {profile.name} on a private address of its own "
            "(--host fills in a broker's host only)"
        )
