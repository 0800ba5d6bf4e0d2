"""Prometheus' text exposition format, checked by its rules line by line and then by Prometheus'
own parser (prometheus_client)."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

# The text exposition format, line by line (https://prometheus.io/docs/instrumenting/exposition_formats/).
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
LABELS = rf"\{{(?:[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE}(?:,[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE})*)?\}}"
VALUE = r"(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf)|NaN)"
SAMPLE = re.compile(rf"^({NAME})(?:{LABELS})? {VALUE}$")
COMMENT = re.compile(rf"^# (HELP|TYPE) ({NAME}) (.*)$")


def strictly_valid(text: str) -> dict[str, list]:
    """Every line by the format's rules, then Prometheus' parser: family -> samples."""
    assert text.endswith("\n") and "\n\n" not in text
    typed: set[str] = set()
    helped: set[str] = set()
    for line in text.splitlines():
        comment = COMMENT.match(line)
        if comment:
            kind, name, rest = comment.groups()
            (typed if kind == "TYPE" else helped).add(name)
            assert kind != "TYPE" or rest in ("gauge", "counter", "untyped", "summary", "histogram"), line
            continue
        sample = SAMPLE.match(line)
        assert sample, f"not a valid sample line: {line!r}"
        assert sample.group(1) in typed and sample.group(1) in helped, f"{line!r} has no HELP and TYPE before it"
    families = {family.name: family.samples for family in text_string_to_metric_families(text)}
    assert set(families) == typed == helped
    return families
