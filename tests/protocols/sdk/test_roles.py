"""Every registered driver says which roles it plays, and says it truly: a declared role has its
method, and a role method of its own is declared (the CLI only asks `roles`)."""

from __future__ import annotations

import pytest

from fieldctl.protocols.runtime.registry import driver_class, protocol_names
from fieldctl.protocols.sdk.contract import BaseDriver
from fieldctl.protocols.sdk.options import ROLES

#: role -> the method that plays it.
METHODS = {role: role for role in ROLES} | {"command": "session", "simulate": "simulator"}


@pytest.mark.parametrize("protocol", protocol_names())
def test_declared_roles_are_the_played_ones(protocol: str) -> None:
    driver = driver_class(protocol)
    played = {role for role, method in METHODS.items() if getattr(driver, method) is not getattr(BaseDriver, method)}
    assert driver.roles <= set(ROLES)
    assert driver.roles == played
