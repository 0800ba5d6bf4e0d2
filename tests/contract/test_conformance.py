"""The Driver contract, held against every installed protocol: the five built-ins and any plugin
(make test installs examples/plugin), by the conformance kit a plugin's author runs
(fieldctl.testing), one check at a time."""

from __future__ import annotations

import pytest

from fieldctl.profiles import available_profiles, load_profile
from fieldctl.protocols.runtime.registry import driver_class, protocol_names
from fieldctl.testing import CHECKS, conformance_failures

PROTOCOLS = protocol_names()


def test_the_builtins_and_the_example_plugin_are_registered() -> None:
    assert {"autotrainer", "oneliner", "sepl", "tracim", "vantiq", "linejson"} <= set(PROTOCOLS)
    assert set(PROTOCOLS) <= set(available_profiles()), "every protocol ships a profile of its own name"


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_protocol_passes_the_conformance_check(protocol: str, check: str, request: pytest.FixtureRequest) -> None:
    if check == "publish" and not {"listen", "publish"} <= driver_class(protocol).roles:
        pytest.skip(f"{protocol} has no listen and publish pair: its register and publish roles have their own tests")
    if check == "proxy" and "proxy" not in driver_class(protocol).roles:
        pytest.skip(f"{protocol} plays no proxy")
    brokers = load_profile(protocol).broker_endpoints  # both sides reach these at the tests' own broker
    endpoints = {name: request.getfixturevalue("mosquitto").url for name in brokers}
    assert conformance_failures(protocol, [check], endpoints=endpoints or None) == []
