"""pytest's hooks for the whole suite, and the helper modules that hold fixtures (tests/helpers/)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

#: Registered, their fixtures serve every test by name, none imported: autouse, the repository's
#: fence and no process or remembered secret outliving its test; on request, `endpoints`,
#: `simulator` and `device` (autotrainer), `fleet`, `terminals`, `prometheus`, `mosquitto` (a broker),
#: `sockdir` (tracim) and `workdir` (vantiq). fuzzing loads the hypothesis profile every fuzz test runs with.
pytest_plugins = [
    "tests.helpers.repository",
    "tests.helpers.processes",
    "tests.helpers.secrets",
    "tests.helpers.fuzzing",
    "tests.helpers.autotrainer",
    "tests.helpers.fleets",
    "tests.helpers.terminals",
    "tests.helpers.prometheus",
    "tests.helpers.mosquitto",
    "tests.helpers.tracim",
    "tests.helpers.vantiq",
]


def pytest_configure(config: pytest.Config) -> None:
    """No test, and no fieldctl it starts, sees the developer's own profiles, saved targets, default
    or current target, console history, installed completions or kept identities (a SEPL gateway
    id): XDG_CONFIG_HOME, XDG_DATA_HOME and XDG_STATE_HOME point into a fresh folder (a test that
    needs its own still passes it)."""
    base = tempfile.mkdtemp(prefix="fieldctl-tests-")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        os.environ[name] = os.path.join(base, name.lower())
    os.environ.pop("FIELDCTL_TARGET", None)  # a default target moves every PROFILE-less line's arguments
    config.add_cleanup(lambda: shutil.rmtree(base, ignore_errors=True))
