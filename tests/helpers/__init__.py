"""What the tests share, one module per kind of thing: processes and ports, the repository and its
fence, captured fixtures, the real peers, each system's devices, fleets, terminals, Prometheus and
fuzzing. tests/conftest.py registers the modules that hold fixtures or hooks.

Every module's asserts are rewritten as a test module's are (a failing one shows its values),
registered or not: this runs before any of them is imported."""

import pkgutil

import pytest

pytest.register_assert_rewrite(*(f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__)))
