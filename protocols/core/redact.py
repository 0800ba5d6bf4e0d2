"""Secret values this process knows of, and scrubbing them from everything it shows or writes.

Protocols meet secrets: values resolved from a profile's secret references, credentials a client
sends (``password``, ``PW``), credentials a server hands out (``accessToken``, ``reconnectSecret``).
A role ``mask``s each message that carries one before emitting it, which also ``remember``s the
values; the CLI ``scrub``s every Message and every text line before it reaches a terminal, NDJSON,
a --record file or a child process, so a peer that echoes a secret back gets it masked too. The
set is process-wide because a secret is a secret wherever it turns up.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from fieldctl.protocols.core.message import Message

MASK = "***"

#: Field names (compared case-insensitively, ignoring '_' and '-') whose values are credentials.
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "pw",
        "pwd",
        "secret",
        "token",
        "accesstoken",
        "idtoken",
        "refreshtoken",
        "reconnectsecret",
        "authtoken",
        "apikey",
        "authorization",
        "clientsecret",
    }
)
#: Shorter values are masked where they stand under a secret key (``mask``), but not searched for
#: everywhere (``scrub``), where they would mask ordinary words and digits.
MIN_SEARCHED = 4
_MAX_DEPTH = 64

_values: set[str] = set()
_searched: list[str] = []  # longest first, so a secret containing another is masked whole
_family: dict[str, list[str]] = {}  # a searched form -> every form of its value


class _Index:
    """Which searched forms (str, or their UTF-8 bytes) stand in a text, found by one search for
    all of their first MIN_SEARCHED characters: a regular expression shaped like a trie, so the
    cost does not grow with the number of secrets (a simulator holding 2,000 connectors remembers
    2,000 reconnect secrets; a search per secret per message made that its bottleneck). Heads
    added since the last compile are looked for one by one until there are enough of them to
    compile again; the compiles add up to O(n log n) over n secrets."""

    def __init__(self) -> None:
        self.forms: dict[Any, list[Any]] = {}  # head -> the forms that start with it
        self.pending: list[Any] = []
        self.compiled: Any = None
        self.size = 0

    def add(self, form: Any) -> None:
        head = form[:MIN_SEARCHED]
        forms = self.forms.setdefault(head, [])
        if not forms:
            self.pending.append(head)
        if form not in forms:
            forms.append(form)

    def found(self, data: Any) -> list[Any]:
        """The searched forms in `data`, longest first."""
        if len(self.pending) > max(16, self.size // 8):
            self.compiled = re.compile(_lookahead(list(self.forms)))
            self.size, self.pending = len(self.forms), []
        heads = set(self.compiled.findall(data)) if self.compiled is not None else set()
        heads.update(head for head in self.pending if head in data)
        return sorted((form for head in heads for form in self.forms[head] if form in data), key=len, reverse=True)


def _lookahead(heads: list[Any]) -> Any:
    """`(?=(...))` over same-length strings (or bytes), factored by common prefixes: finds every
    position where one starts, overlapping ones too."""
    as_type = str if isinstance(heads[0], str) else (lambda text: text.encode())
    root: dict[Any, Any] = {}
    for head in heads:
        node = root
        for index in range(len(head)):
            node = node.setdefault(head[index : index + 1], {})

    def branch(node: dict[Any, Any]) -> Any:
        alternatives = [re.escape(char) + branch(child) for char, child in node.items()]
        if len(alternatives) <= 1:
            return alternatives[0] if alternatives else as_type("")
        return as_type("(?:") + as_type("|").join(alternatives) + as_type(")")

    return as_type("(?=(") + branch(root) + as_type("))")


_text_index = _Index()
_bytes_index = _Index()


def is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in SECRET_KEYS


def _forms(value: str) -> set[str]:
    """The value as it may stand in text: itself and JSON-escaped (ASCII or not)."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


def remember(value: Any) -> None:
    """From now on, `value` never appears in output."""
    if not isinstance(value, str) or not value or value in _values:
        return
    _values.add(value)
    if len(value) >= MIN_SEARCHED:
        forms = _forms(value)
        _searched.extend(forms - set(_searched))
        _searched.sort(key=len, reverse=True)
        family = sorted(forms, key=len, reverse=True)
        for form in forms:
            _family[form] = family
            _text_index.add(form)
            _bytes_index.add(form.encode("utf-8", "surrogatepass"))


def learn(payload: Any) -> list[str]:
    """Remembers, and returns, every string under a secret key anywhere in a decoded payload."""
    found: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if is_secret_key(key) and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value, depth + 1)
        elif isinstance(node, list):
            for item in node:
                walk(item, depth + 1)

    walk(payload, 0)
    for value in found:
        remember(value)
    return found


def scrub_text(text: str, values: list[str] | None = None) -> str:
    for value in _searched if values is None else values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def _scrub_bytes(frame: bytes, values: list[str], mask: bytes = MASK.encode()) -> bytes:
    for value in values:
        form = value.encode("utf-8", "surrogatepass")
        if form in frame:
            frame = frame.replace(form, mask)
    return frame


def _scrub_value(node: Any, values: list[str], depth: int = 0) -> Any:
    if isinstance(node, str):
        return scrub_text(node, values)
    if depth > _MAX_DEPTH:
        return node
    if isinstance(node, dict):
        return {
            key: (MASK if is_secret_key(key) and isinstance(value, str) else _scrub_value(value, values, depth + 1))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_scrub_value(item, values, depth + 1) for item in node]
    return node


def scrub_value(value: Any) -> Any:
    """A decoded value (a command's result) as it may be shown: strings under secret keys masked,
    known secrets masked in every other string."""
    return _scrub_value(value, _searched)


def _replace(msg: Message, values: list[str], raw: tuple[bytes, ...]) -> Message:
    return dataclasses.replace(
        msg,
        payload=_scrub_value(msg.payload, values),
        raw=raw,
        id=_scrub_value(msg.id, values),
        kind=_scrub_value(msg.kind, values),
        error=None if msg.error is None else scrub_text(msg.error, values),
    )


def mask(msg: Message) -> Message:
    """A message that carries credentials, with them masked whatever their length (as whole JSON
    strings, so a short password does not mask parts of other fields); remembers them."""
    found = learn(msg.payload)
    if not found:
        return msg
    quoted = sorted({json.dumps(v, ensure_ascii=a) for v in found for a in (True, False)}, key=len, reverse=True)
    raw = tuple(_scrub_bytes(frame, quoted, json.dumps(MASK).encode()) for frame in msg.raw)
    return _replace(msg, [], raw)


def scrub(msg: Message) -> Message:
    """The message as it may be shown: no known secret in payload, raw frames, id, kind or error.
    The same object when there is nothing to hide (the common, fast case)."""
    if not _searched:
        return msg
    raw = tuple(_masked(frame, _bytes_index.found(frame)) for frame in msg.raw)
    found = _text_index.found(msg.to_json())
    if raw == msg.raw and not found:
        return msg
    values = sorted({form for each in found for form in _family[each]}, key=len, reverse=True)
    return _replace(msg, values, raw)


def _masked(frame: bytes, forms: list[bytes], mask: bytes = MASK.encode()) -> bytes:
    for form in forms:
        frame = frame.replace(form, mask)
    return frame
