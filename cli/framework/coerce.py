"""Parameter values without pydantic where there is nothing to convert.

Typer 0.29 converts every parameter of the invoked command through a pydantic TypeAdapter, which
it builds on first use even for an absent value: importing pydantic and building the schemas costs
about 250 ms of every `fieldctl command ...`, `listen ...` or `simulate ...` (`python -X importtime`).
Most values need no conversion: an absent one, a `str` given as text, a `list[str]` given as texts.
Those are passed through here, as the adapter would have returned them; any other value (a number,
a path, a choice) gets Typer's own adapter, built on first need, so what is converted and every
error message stay Typer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typer._click import Context
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer.core import _TyperParameter

_LIST_OF_STR = list[str]


@dataclass(frozen=True)
class _Deferred(RuntimeParam):
    """RuntimeParam.coerce settles absent values; this settles texts and defers the rest."""

    descriptor: TypeDescriptor

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if self.annotation is str and type(value) is str:
            return value
        if (
            self.annotation == _LIST_OF_STR
            and isinstance(value, (tuple, list))
            and all(type(item) is str for item in value)
        ):
            return list(value)
        real = param._runtime_param = build_runtime_param(self.descriptor)
        return real._coerce_value(value, param=param, ctx=ctx)


def _runtime_param(self: _TyperParameter) -> RuntimeParam:
    if self._runtime_param is None:
        desc = self.type_descriptor
        self._runtime_param = _Deferred(parameter_info=desc.parameter_info, annotation=desc.annotation, descriptor=desc)
    return self._runtime_param


def install() -> None:
    """Every Typer parameter from now on takes its values through _Deferred."""
    _TyperParameter.get_runtime_param = _runtime_param  # type: ignore[method-assign]
