"""A value the command line cannot take, told in fieldctl's words. Typer converts typed options
(`--clients 0`, `--format xml`) through pydantic, whose texts are for programmers ("Input should be
a valid integer, unable to parse string as an integer"); a person reads what the option expects
and what it got, as fieldctl's own parsers say it (cli/framework/bounded.py)."""

from __future__ import annotations

from typing import Any


def message(exc: Any) -> str:
    """`exc`'s one line (a Typer usage error), with a library's validation text replaced."""
    errors = getattr(exc.__cause__, "errors", None)  # a pydantic ValidationError, found without importing pydantic
    param, ctx = getattr(exc, "param", None), getattr(exc, "ctx", None)
    if callable(errors) and param is not None and ctx is not None and hasattr(exc, "message"):
        found = errors()
        got = found[0].get("input") if found else None
        exc.message = f"expected {expected(param, ctx)}, got {str(got)!r}"
    text: str = exc.format_message()
    return text


def expected(param: Any, ctx: Any) -> str:
    """What a typed parameter takes: its choices, or a number within its range."""
    label = str(param.display_type(ctx)).strip("<>")
    if "|" in label:
        return "one of " + ", ".join(label.split("|"))
    if label.startswith(("int", "float")):
        return ("an integer" if label.startswith("int") else "a number") + _within(param.min, param.max)
    return "a valid value"


def _within(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" of at least {low}"
    if high is not None:
        return f" of at most {high}"
    return ""
