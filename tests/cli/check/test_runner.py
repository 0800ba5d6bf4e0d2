"""The check runner in-process, where a subprocess cannot stand in: a listener whose driver reports
the device's presence (BaseDriver.presence) is ready when the device is `present`, not when its
connection to the broker is."""

from __future__ import annotations

import asyncio
from typing import Any

from fieldctl.cli.check.checkfile import parse
from fieldctl.cli.check.runner import FileRun
from fieldctl.profiles import load_profile
from fieldctl.protocols.core.message import link
from fieldctl.protocols.runtime.registry import driver_for

EVENT = 'target = "autotrainer"\n[[step]]\nevent = { channel = "event", kind = "trialStarted" }\nwithin_s = 1\n'


def test_a_presence_listener_is_ready_when_the_device_is_present() -> None:
    profile = load_profile("autotrainer")
    said: list[str] = []

    async def listen(self: Any, context: Any, channels: Any = None) -> None:
        emit = context.emit
        for state, after_s in (("ready", 0.0), ("present", 0.5)):  # the broker first, then the device
            await asyncio.sleep(after_s)
            said.append(state)
            emit(link(profile.name, "events", state))
        await asyncio.Event().wait()

    plain = driver_for(profile, print)
    brokered = type("Brokered", (type(plain),), {"presence": True, "listen": listen})(profile, print)
    run = FileRun(parse(EVENT, "t.toml"), profile, brokered, {"listen": {}}, None, print, lambda: False)

    async def setup() -> list[str]:
        try:
            assert await run._setup() is None
            return list(said)
        finally:
            await run._close()

    assert asyncio.run(setup()) == ["ready", "present"]
