"""A profile's simulator in this process on private loopback addresses and socket paths, for a
self-contained run (`demo`, `check --simulate`): nothing else on the machine is touched, and the client
side is pointed at the addresses the simulator announces."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from fieldctl.cli.framework import common
from fieldctl.profiles import load_profile
from fieldctl.protocols.core.errors import Timeout
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.transport import together

BOUND_WITHIN_S = 10.0
CONTROL = "control"


def throwaway_credentials(name: str, profile_files: Iterable[str | Path] = ()) -> None:
    """The profile's secret references that are unset get a throwaway value, in this process only:
    both sides of a private run read the same one."""
    for ref in load_profile(name, profile_files=profile_files).auth.values():
        if ref.env and ref.env not in os.environ:
            os.environ[ref.env] = "fieldctl-demo"


@contextlib.asynccontextmanager
async def private_simulator(
    name: str,
    folder: str,
    *,
    sets: list[str],
    profile_files: Iterable[str | Path] = (),
    options: dict[str, Any] | None = None,
    control: bool = False,
) -> AsyncIterator[dict[str, str]]:
    """Runs the simulator of profile `name` until the block ends; yields endpoint name -> the URL it
    bound (and, with `control`, "control" -> its control socket, see protocols/runtime/control.py)."""
    from fieldctl.protocols.runtime.endpoints import is_wildcard, private_endpoints

    files = tuple(profile_files)
    throwaway_credentials(name, files)
    private = private_endpoints(load_profile(name, profile_files=files, sets=sets), folder)
    prof = load_profile(name, profile_files=files, sets=sets, endpoints=[f"{k}={v}" for k, v in private.items()])
    device = common.driver(prof)
    bound: dict[str, str] = dict(private)
    announced = asyncio.Event()

    def device_sink(msg: Message) -> None:
        if msg.is_link and msg.kind == "bound" and (msg.endpoint in private or msg.endpoint == CONTROL):
            bound[msg.endpoint] = msg.payload["url"]
        if not any(is_wildcard(url) for url in bound.values()) and (not control or CONTROL in bound):
            announced.set()

    simulation = device.simulator(device.context(device_sink, options), scenario=None, timeline=True)
    work = [simulation.run()]
    if control:
        from fieldctl.protocols.runtime.control import ControlServer

        work.append(
            ControlServer(os.path.join(folder, "control.sock"), simulation.control, device_sink, prof.name).run()
        )
    simulator = asyncio.ensure_future(together(*work))  # one failing cancels the other, and waits
    try:
        await common.wait_while_running(simulator, announced.wait(), BOUND_WITHIN_S)
        if simulator.done():
            simulator.result()
        if not announced.is_set():
            raise Timeout(f"the {name} simulator did not announce its endpoints within {BOUND_WITHIN_S:g} s")
        yield bound
    finally:
        simulator.cancel()
        await asyncio.gather(simulator, return_exceptions=True)
