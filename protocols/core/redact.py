"""Secret values this process knows of, and scrubbing them from everything it shows or writes.

Protocols meet secrets: values resolved from a profile's secret references, credentials a client
sends (``password``, ``PW``), credentials a server hands out (``accessToken``, ``reconnectSecret``).
A role ``mask``s each message that carries one before emitting it, which also ``learn``s the
values; the CLI ``scrub``s every Message and every text line before it reaches a terminal, NDJSON,
a --record file or a child process, so a peer that echoes a secret back gets it masked too. The
set is process-wide because a secret is a secret wherever it turns up.

What is searched for, and for how long, is bounded: a peer must not make this process remember
without end (a simulator's failed logins, each with a new password of megabytes).

- ``remember``: a secret fieldctl holds itself (a resolved reference, a simulator's accepted
  tokens): searched for as long as the process lives. These are few, and the user's own.
- ``offered`` (and ``learn``, ``mask``): a secret a peer sent, right or wrong. Searched for while
  the connection it came on lives (``connection()``; HELD_PER_CONNECTION values and HELD_CHARS
  characters at most per connection), then among the RECENT most recent (RECENT_CHARS in all).
- A value longer than MAX_SEARCHED is never searched for in free text: it is masked where it
  stands (under a secret key, ``mask``), which needs no memory at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import re
from collections.abc import Callable, Iterator
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
#: A peer's longer values are masked where they stand, never searched for: real tokens (a JWT
#: with its claims) stay well below this; a megabyte "password" is an attack on our memory.
MAX_SEARCHED = 8192
#: What one live connection's offered secrets may hold in the search; more go to the recent window.
HELD_PER_CONNECTION = 8
HELD_CHARS = 16384
#: Offered secrets no live connection holds: the newest few, so an echo soon after still masks.
RECENT = 64
RECENT_CHARS = 65536
_MAX_DEPTH = 64


class _Index:
    """Which searched forms (str, or their UTF-8 bytes) stand in a text, found by one search for
    all of their first MIN_SEARCHED characters: a regular expression shaped like a trie, so the
    cost does not grow with the number of secrets (a simulator holding 2,000 connectors remembers
    2,000 reconnect secrets; a search per secret per message made that its bottleneck). Heads
    added since the last compile are looked for one by one until there are enough of them to
    compile again; the compiles add up to O(n log n) over n secrets. A head removed stays in the
    compiled expression, finding nothing, until the next compile leaves it out."""

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

    def remove(self, form: Any) -> None:
        head = form[:MIN_SEARCHED]
        forms = self.forms.get(head, [])
        if form in forms:
            forms.remove(form)
        if not forms:
            self.forms.pop(head, None)
            if head in self.pending:
                self.pending.remove(head)

    def found(self, data: Any) -> list[Any]:
        """The searched forms in `data`, longest first."""
        if len(self.pending) > max(16, self.size // 8):
            self.compiled = re.compile(_lookahead(list(self.forms))) if self.forms else None
            self.size, self.pending = len(self.forms), []
        heads = set(self.compiled.findall(data)) if self.compiled is not None else set()
        heads.update(head for head in self.pending if head in data)
        forms = (form for head in heads for form in self.forms.get(head, ()) if form in data)
        return sorted(forms, key=len, reverse=True)


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


def _forms(value: str) -> set[str]:
    """The value as it may stand in text: itself and JSON-escaped (ASCII or not)."""
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}


class _Known:
    """Every value searched for, why it is, and the indexes of its forms."""

    def __init__(self) -> None:
        self.own: set[str] = set()
        self.held: dict[str, int] = {}  # value -> how many live connections hold it
        self.recent: dict[str, None] = {}  # oldest first
        self.recent_chars = 0
        self.owners: dict[str, set[str]] = {}  # a searched form -> the values it is a form of
        self.text = _Index()
        self.bytes = _Index()

    def searched(self, value: str) -> bool:
        return value in self.own or value in self.held or value in self.recent

    def index(self, value: str) -> None:
        for form in _forms(value):
            owners = self.owners.setdefault(form, set())
            if not owners:
                self.text.add(form)
                self.bytes.add(form.encode("utf-8", "surrogatepass"))
            owners.add(value)

    def unindex(self, value: str) -> None:
        for form in _forms(value):
            owners = self.owners.get(form, set())
            owners.discard(value)
            if not owners:
                self.owners.pop(form, None)
                self.text.remove(form)
                self.bytes.remove(form.encode("utf-8", "surrogatepass"))

    def keep_recent(self, value: str) -> None:
        """`value` (searched already) joins the recent window; the oldest beyond its bounds are
        no longer searched for, unless something else keeps them."""
        if value in self.recent:
            del self.recent[value]
        else:
            self.recent_chars += len(value)
        self.recent[value] = None
        while len(self.recent) > RECENT or self.recent_chars > RECENT_CHARS:
            oldest = next(iter(self.recent))
            del self.recent[oldest]
            self.recent_chars -= len(oldest)
            if oldest not in self.own and oldest not in self.held:
                self.unindex(oldest)

    def family(self, forms: list[str]) -> list[str]:
        """Every form of every value these forms stand for, longest first."""
        values = {value for form in forms for value in self.owners[form]}
        return sorted({form for value in values for form in _forms(value)}, key=len, reverse=True)


_known = _Known()


class _Holder:
    """The secrets offered on one connection, searched for while it lives."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.chars = 0
        self.open = True

    def take(self, value: str) -> bool:
        """Holds `value` unless full (or closed); False leaves it to the recent window."""
        if value in self.values:
            return True
        if not self.open or len(self.values) >= HELD_PER_CONNECTION or self.chars + len(value) > HELD_CHARS:
            return False
        self.values.append(value)
        self.chars += len(value)
        _known.held[value] = _known.held.get(value, 0) + 1
        return True

    def release(self) -> None:
        self.open = False
        for value in self.values:
            _known.held[value] -= 1
            if not _known.held[value]:
                del _known.held[value]
                if value not in _known.own:
                    _known.keep_recent(value)
        self.values, self.chars = [], 0


_connection: contextvars.ContextVar[_Holder | None] = contextvars.ContextVar("fieldctl_redact_holder", default=None)


@contextlib.contextmanager
def connection() -> Iterator[None]:
    """Around one connection a role serves or keeps: what peers offer inside (in this task and
    the tasks it starts) is searched for until it ends, then only while it is recent."""
    holder = _Holder()
    token = _connection.set(holder)
    try:
        yield
    finally:
        _connection.reset(token)
        holder.release()


def is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in SECRET_KEYS


def remember(value: Any) -> None:
    """A secret of fieldctl's own: from now on, `value` never appears in output."""
    if not isinstance(value, str) or len(value) < MIN_SEARCHED or value in _known.own:
        return
    if not _known.searched(value):
        _known.index(value)
    _known.own.add(value)


def offered(value: Any) -> None:
    """A secret a peer sent: searched for while its connection lives, then while it is recent."""
    if not isinstance(value, str) or not MIN_SEARCHED <= len(value) <= MAX_SEARCHED or value in _known.own:
        return
    if not _known.searched(value):
        _known.index(value)
    holder = _connection.get()
    if holder is None or not holder.take(value):
        _known.keep_recent(value)


def learn(payload: Any) -> list[str]:
    """Every string under a secret key anywhere in a decoded payload, each ``offered``."""
    found: list[str] = []
    _under_secret_keys(payload, found, 0)
    for value in found:
        offered(value)
    return found


def _under_secret_keys(node: Any, found: list[str], depth: int) -> None:
    """Not a closure: a recursive inner function is a reference cycle, and it would keep what it
    found (a peer's password of megabytes) until the next full garbage collection."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if is_secret_key(key) and isinstance(value, str):
                found.append(value)
            else:
                _under_secret_keys(value, found, depth + 1)
    elif isinstance(node, list):
        for item in node:
            _under_secret_keys(item, found, depth + 1)


def _replaced(text: Any, forms: list[Any], mask: Any) -> Any:
    for form in forms:
        if form in text:
            text = text.replace(form, mask)
    return text


def scrub_text(text: str) -> str:
    """`text` with every secret searched for masked."""
    return _replaced(text, _known.text.found(text), MASK) if _known.owners else text


def _scrub_value(node: Any, scrub: Callable[[str], str], depth: int = 0) -> Any:
    if isinstance(node, str):
        return scrub(node)
    if depth > _MAX_DEPTH:
        return node
    if isinstance(node, dict):
        return {
            key: (MASK if is_secret_key(key) and isinstance(value, str) else _scrub_value(value, scrub, depth + 1))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_scrub_value(item, scrub, depth + 1) for item in node]
    return node


def scrub_value(value: Any) -> Any:
    """A decoded value (a command's result) as it may be shown: strings under secret keys masked,
    known secrets masked in every other string."""
    return _scrub_value(value, scrub_text)


def _replace(msg: Message, scrub: Callable[[str], str], raw: tuple[bytes, ...]) -> Message:
    return dataclasses.replace(
        msg,
        payload=_scrub_value(msg.payload, scrub),
        raw=raw,
        id=_scrub_value(msg.id, scrub),
        kind=_scrub_value(msg.kind, scrub),
        error=None if msg.error is None else scrub(msg.error),
    )


def mask(msg: Message) -> Message:
    """A message that carries credentials, with them masked whatever their length (as whole JSON
    strings, so a short password does not mask parts of other fields); offers them."""
    found = learn(msg.payload)
    if not found:
        return msg
    quoted = {json.dumps(v, ensure_ascii=a).encode("utf-8", "surrogatepass") for v in found for a in (True, False)}
    longest_first = sorted(quoted, key=len, reverse=True)
    raw = tuple(_replaced(frame, longest_first, json.dumps(MASK).encode()) for frame in msg.raw)
    return _replace(msg, lambda text: text, raw)


def scrub(msg: Message) -> Message:
    """The message as it may be shown: no known secret in payload, raw frames, id, kind or error.
    The same object when there is nothing to hide (the common, fast case)."""
    if not _known.owners:
        return msg
    raw = tuple(_replaced(frame, _known.bytes.found(frame), MASK.encode()) for frame in msg.raw)
    found = _known.text.found(msg.to_json())
    if raw == msg.raw and not found:
        return msg
    forms = _known.family(found)
    return _replace(msg, lambda text: _replaced(text, forms, MASK), raw)
