"""`fieldctl publish` refuses a kind the profile does not know before it plays the device: a
did-you-mean, exit 2, and no publisher bound (a listener on the same port never hears of it)."""

from __future__ import annotations

from tests.helpers.autotrainer import Endpoints
from tests.helpers.processes import FIELDCTL, Proc, lines_of, one_line, run_cli


def test_a_misspelt_event_kind_gets_a_did_you_mean_and_nothing_is_published(endpoints: Endpoints) -> None:
    listener = Proc([*FIELDCTL, "listen", "autotrainer", "--json", *endpoints.args])
    try:
        listener.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "retrying")  # nobody publishes yet
        result = run_cli("publish", "autotrainer", "trialStared", "--data", "{}", "--wait", "5", *endpoints.args)
    finally:
        listener.stop()
    assert (result.returncode, result.stdout) == (2, "")
    assert one_line(result.stderr) == "fieldctl: unknown event kind 'trialStared' (did you mean trialStarted?)"
    assert [m for m in lines_of("\n".join(listener.output())) if m["kind"] in ("connected", "ready")] == []
