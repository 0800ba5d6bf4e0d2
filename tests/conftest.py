"""pytest's hooks for the whole suite, and the helper modules that hold fixtures (tests/helpers/)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

#: Their fixtures are there for every test (the autouse ones apply to every test): the repository's
#: fence, no process and no remembered secret outliving its test, the hypothesis profile, and
#: `endpoints`/`simulator`/`device` (autotrainer), `fleet`, `terminals`, `prometheus`, `sockdir`
#: (tracim) and `workdir` (vantiq).
pytest_plugins = [
    "tests.helpers.repository",
    "tests.helpers.processes",
    "tests.helpers.secrets",
    "tests.helpers.fuzzing",
    "tests.helpers.autotrainer",
    "tests.helpers.fleets",
    "tests.helpers.terminals",
    "tests.helpers.prometheus",
    "tests.helpers.tracim",
    "tests.helpers.vantiq",
]


def pytest_configure(config: pytest.Config) -> None:
    """No test, and no fieldctl it starts, sees the developer's own profiles, saved targets, default
    target or installed completions: XDG_CONFIG_HOME and XDG_DATA_HOME point into a fresh folder (a test that
    needs its own still passes it)."""
    base = tempfile.mkdtemp(prefix="fieldctl-tests-")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        os.environ[name] = os.path.join(base, name.lower())
    os.environ.pop("FIELDCTL_TARGET", None)  # a default target moves every PROFILE-less line's arguments
    config.add_cleanup(lambda: shutil.rmtree(base, ignore_errors=True))
