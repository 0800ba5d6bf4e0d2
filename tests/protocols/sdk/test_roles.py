"""Every registered driver says which roles it plays, and says it truly: a declared role has its
method, and a role method of its own is declared (the CLI only asks `roles`)."""

from __future__ import annotations

import pytest

from fieldctl.protocols.runtime.registry import driver_class, protocol_names
from fieldctl.protocols.sdk.contract import BaseDriver
from fieldctl.protocols.sdk.options import ROLES

#: role -> the methods that play it (a command role may keep its connections in a session).
METHODS = {role: (role,) for role in ROLES} | {"command": ("command", "session")}


@pytest.mark.parametrize("protocol", protocol_names())
def test_declared_roles_are_the_played_ones(protocol: str) -> None:
    driver = driver_class(protocol)
    played = {
        role
        for role, methods in METHODS.items()
        if any(getattr(driver, method) is not getattr(BaseDriver, method) for method in methods)
    }
    assert driver.roles <= set(ROLES)
    assert driver.roles == played
