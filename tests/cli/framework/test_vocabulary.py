"""Names and payload fields checked against the profile, in this process: what each check
refuses, with its did-you-mean, and what it passes because the profile declares nothing."""

from __future__ import annotations

import pytest

from fieldctl.cli.framework.vocabulary import (
    channel_problem,
    check_command,
    command_problem,
    field_problems,
    filter_values,
    kind_problem,
)
from fieldctl.profiles import load_profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.runtime.registry import driver_for
from fieldctl.protocols.sdk.contract import BaseDriver


def driver(name: str) -> BaseDriver:
    return driver_for(load_profile(name), lambda text: None)


def test_a_command_is_known_by_name_code_or_number() -> None:
    autotrainer, tracim = load_profile("autotrainer"), load_profile("tracim")
    assert command_problem(autotrainer, "get-status") is None
    assert command_problem(autotrainer, "4242") is None  # a code the profile does not name (user-defined)
    assert command_problem(tracim, "daemon_get_clients") is None  # the wire type of get-clients
    assert command_problem(autotrainer, "get-stauts") == "unknown command 'get-stauts' (did you mean get-status?)"
    assert command_problem(autotrainer, "xyzzy") == "unknown command 'xyzzy' (see: fieldctl profiles show autotrainer)"
    tracim = driver("tracim").profile  # few enough to list
    assert command_problem(tracim, "xyzzy") == (
        "unknown command 'xyzzy' (commands: do-request, get-account-info, get-clients, ping)"
    )


def test_a_profile_without_commands_passes_every_name() -> None:
    """The device's services are the peer's names: `command sepl dev-1:sepl_set --via S`."""
    assert not load_profile("sepl").commands
    assert command_problem(load_profile("sepl"), "dev-1:sepl_set") is None


def test_undeclared_fields_are_refused_where_the_command_declares_fields() -> None:
    profile = load_profile("autotrainer")
    assert field_problems(profile, "set-application-mode", {"mode": 100}) == []
    assert field_problems(profile, "set-application-mode", {"mdoe": 100, "zzz": 1}) == [
        ("mdoe", "set-application-mode takes no field 'mdoe' (did you mean mode?)"),
        ("zzz", "set-application-mode takes no field 'zzz' (its fields: mode)"),
    ]
    assert field_problems(profile, "get-status", {"anything": 1}) == []  # no fields declared: passed through
    assert field_problems(profile, "set-application-mode", 100) == []  # no object: no field names to check
    assert field_problems(load_profile("vantiq"), "query", {"sorce": "s"}) == [
        ("sorce", "query takes no field 'sorce' (did you mean source?)")
    ]


def test_check_command_raises_one_line_and_force_sends_anyway() -> None:
    profile = load_profile("autotrainer")
    with pytest.raises(UsageError, match=r"^unknown command 'get-stauts' \(did you mean get-status\?\)$"):
        check_command(profile, "get-stauts", None, force=True)  # --force is for fields, not names
    with pytest.raises(UsageError) as caught:
        check_command(profile, "set-application-mode", {"mdoe": 100}, force=False)
    assert str(caught.value) == (
        "--data: set-application-mode takes no field 'mdoe' (did you mean mode?); --force sends it anyway"
    )
    check_command(profile, "set-application-mode", {"mdoe": 100}, force=True)


def test_channels_and_kinds_are_checked_where_the_protocol_reports_only_the_profiles() -> None:
    autotrainer = driver("autotrainer")
    assert channel_problem(autotrainer, "event") is None and channel_problem(autotrainer, "4001") is None
    assert channel_problem(autotrainer, "evnt") == "unknown channel 'evnt' (did you mean event?)"
    for kind in ("trialStarted", "heartbeat", "set-application-mode", "1301"):
        assert kind_problem(autotrainer, kind) is None
    assert kind_problem(autotrainer, "trialStared") == "unknown kind 'trialStared' (did you mean trialStarted?)"


@pytest.mark.parametrize("name", ["oneliner", "sepl", "vantiq", "linejson"])
def test_a_protocol_whose_peer_names_channels_passes_them(name: str) -> None:
    """Streams, sources, services: names the profile cannot list."""
    assert channel_problem(driver(name), "any-stream") is None and kind_problem(driver(name), "any-kind") is None


def test_tracim_checks_its_channels_and_passes_the_event_types_the_daemon_names() -> None:
    tracim = driver("tracim")
    assert channel_problem(tracim, "tracim") is None and kind_problem(tracim, "content.created.thread") is None
    assert channel_problem(tracim, "trcim") == "unknown channel 'trcim' (did you mean tracim?)"


def test_filter_values_are_the_profiles_names_within_what_the_driver_reports() -> None:
    autotrainer = load_profile("autotrainer")
    assert set(filter_values(autotrainer, "channel")) == set(autotrainer.channels)
    assert filter_values(autotrainer, "kind")["tunnelEnter"] == "event 1101"
    assert list(filter_values(autotrainer, "direction")) == ["in", "out"]
    assert list(filter_values(autotrainer, "endpoint")) == list(autotrainer.endpoints)
    assert set(filter_values(autotrainer, "kind", driver("autotrainer").vocabulary)) == set(autotrainer.events)


def test_filter_values_offer_nothing_where_the_driver_says_the_peer_names_its_own() -> None:
    tracim = driver("tracim")
    assert filter_values(tracim.profile, "kind", tracim.vocabulary) == {}  # the daemon's types, not the profile's
    assert set(filter_values(tracim.profile, "channel", tracim.vocabulary)) == set(tracim.profile.channels)
    assert filter_values(load_profile("autotrainer"), "target") == {}  # a fleet's key: no profile names it
