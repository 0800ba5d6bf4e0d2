"""The secrets fieldctl.protocols.core.redact remembers are process-wide: every test works on a copy
of what was remembered before it, so none leaves secrets behind for the tests after it (which would
then see text masked, or not, depending on the order they run in)."""

from __future__ import annotations

import copy

import pytest

from fieldctl.protocols.core import redact

#: redact's module state: what it searches for, why, and the indexes.
STATE = ("_known",)


@pytest.fixture(autouse=True)
def _no_secret_outlives_its_test(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in STATE:
        monkeypatch.setattr(redact, name, copy.deepcopy(getattr(redact, name)))
