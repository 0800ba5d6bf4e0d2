"""Vantiq extension-source frames (docs/protocols/vantiq.md): JSON objects over WebSocket.

Pure: text <-> Message, no I/O. Frames fieldctl sends are `json.dumps` with default separators and
key order, so they are byte-equal to the Python SDK's. A Message's channel is the op (or
`response` for query responses, `status` for other op-less frames), its kind the source, its id
the query's reply address, its payload the part that matters (published object, query parameters,
configuration, rows); raw holds the exact frame, except that a token never appears in either.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fieldctl.protocols.core.limits import DEFAULT_LIMITS, Limits, Malformed, loads
from fieldctl.protocols.core.message import IN, OUT, Message

VALIDATE, AUTHENTICATE = "validate", "authenticate"
CONNECT, CONFIGURE = "connectExtension", "configureExtension"
PUBLISH, QUERY, NOTIFICATION = "publish", "query", "notification"
RECONNECT, TEST_CLOSE = "reconnectRequired", "testRequestsClientClose"
RESPONSE, STATUS, MALFORMED = "response", "status", "malformed"

PARTIAL, COMPLETE, EMPTY, QUERY_ERROR, AUTH_REFUSED = 100, 200, 204, 400, 401
REPLY_HEADER, REPLY_ADDRESS = "REPLY_ADDR_HEADER", "X-Reply-Address"
SOURCES = "sources"
CREDENTIALS = "system.credentials"
WEBSOCKET_PATH = "/api/v1/wsock/websocket"
_PATH_PATTERN = re.compile(r".*/api/v[0-9]+/wsock/websocket")
HIDDEN = "***"
#: How much of a peer's text an error line or table cell quotes.
QUOTED_CHARS = 300
_LONE_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def encode(frame: dict[str, Any]) -> str:
    """The Python SDK's layout: json.dumps defaults (", " and ": ", ASCII escapes)."""
    return json.dumps(frame)


# --- frames the connector sends ------------------------------------------------------------------


def validate(token: str) -> dict[str, Any]:
    return {"op": VALIDATE, "resourceName": CREDENTIALS, "object": token}


def connect_extension(source: str, secret: str) -> dict[str, Any]:
    return {"op": CONNECT, "resourceName": SOURCES, "resourceId": source, "parameters": {"reconnectSecret": secret}}


def notification(source: str, obj: Any) -> dict[str, Any]:
    return {"op": NOTIFICATION, "resourceName": SOURCES, "resourceId": source, "object": obj}


def query_response(reply_to: str | None, status: int, body: Any = None) -> dict[str, Any]:
    """Python leaves `body` out of a 204; every response carries the reply address (null when the
    query had none)."""
    frame: dict[str, Any] = {"status": status, "headers": {REPLY_ADDRESS: reply_to}}
    if status != EMPTY:
        frame["body"] = body
    return frame


def query_error(code: str, template: str, parameters: list[Any]) -> dict[str, Any]:
    return {"messageCode": code, "messageTemplate": template, "parameters": parameters}


def reconnect_secret(source: str, fixed: str | None = None) -> str:
    """`<source>_<value>` as the Python SDK makes it: stable for the life of the process."""
    return f"{source}_{fixed if fixed else uuid.uuid1()}"


# --- frames the server sends ---------------------------------------------------------------------


def _server_op(op: str, source: str, obj: Any, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """Server operations carry the extras a real server adds (both SDKs ignore them)."""
    return {
        "op": op,
        "resourceName": SOURCES,
        "resourceId": source,
        "isSystemResource": True,
        "contentType": "application/json",
        "skipMonitoring": False,
        "isExternal": False,
        "address": str(uuid.uuid4()),
        "messageHeaders": headers or {},
        "object": obj,
    }


def configure_extension(source: str, config: Any) -> dict[str, Any]:
    return _server_op(CONFIGURE, source, {"config": config})


def publish(source: str, obj: Any) -> dict[str, Any]:
    return _server_op(PUBLISH, source, obj)


def query(source: str, params: Any, reply_to: str) -> dict[str, Any]:
    return _server_op(QUERY, source, params, {REPLY_HEADER: reply_to})


def reconnect_required(source: str) -> dict[str, Any]:
    return {"op": RECONNECT, "resourceName": SOURCES, "resourceId": source}


def client_close() -> dict[str, Any]:
    return {"op": TEST_CLOSE}


def status(code: int) -> dict[str, Any]:
    return {"status": code}


def validated(user: str = "fieldctl__token", namespace: str = "fieldctlNs") -> dict[str, Any]:
    info = {
        "username": user,
        "namespace": namespace,
        "homeNamespace": namespace,
        "userType": "node",
        "profiles": ["system.user"],
        "accessToken": "simulated-access-token",
    }
    return {"status": 200, "contentType": "application/json", "body": {"anonymous": False, "userInfo": info}}


def refusal(code: int, error_id: str, message: str, params: list[Any] | None = None) -> dict[str, Any]:
    """Refusals carry a LIST of {code, message, params}: the Python SDK stops for good on that shape."""
    return {"status": code, "body": [{"code": error_id, "message": message, "params": params or []}]}


# --- decoding ------------------------------------------------------------------------------------


def parse(frame: str | bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """A frame's JSON within the limits (size, depth; NaN/Infinity as null). A string escaped as a
    lone surrogate (\\ud800) is not Unicode: no terminal or file can take it, so it is refused
    too. Raises ValueError (Malformed, JSONDecodeError, UnicodeError) and nothing else."""
    limits.check_size(len(frame))
    data = loads(frame, limits.max_depth)
    text = frame if isinstance(frame, str) else frame.decode("utf-8")  # valid: loads took it
    if _LONE_SURROGATE_HINT.search(text):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Malformed("a string holds a lone surrogate (\\ud800-\\udfff): not Unicode text") from None
    return data


def decode(
    frame: str | bytes,
    *,
    profile: str,
    endpoint: str,
    direction: str = IN,
    source: str = "",
    limits: Limits = DEFAULT_LIMITS,
) -> Message:
    """One frame as a Message; a frame that is not a JSON object within the limits, or whose
    members have the wrong types, becomes a Message with `error` (shown, counted, never raised)."""
    raw = frame.encode("utf-8") if isinstance(frame, str) else bytes(frame)
    msg = Message(profile=profile, endpoint=endpoint, direction=direction, channel=MALFORMED, kind=source, raw=(raw,))
    try:
        data = parse(raw, limits)
    except ValueError as exc:
        msg.payload, msg.error = quoted(raw[:200].decode("utf-8", "replace")), f"not JSON: {quoted(str(exc))}"
        return msg
    return _message_of(msg, data)


def sent(frame: dict[str, Any], text: str, *, profile: str, endpoint: str, source: str = "") -> Message:
    """The Message for a frame we have just encoded (text = encode(frame)): built from the frame
    itself, not parsed back from the text."""
    msg = Message(
        profile=profile, endpoint=endpoint, direction=OUT, channel=MALFORMED, kind=source, raw=(text.encode("utf-8"),)
    )
    return _message_of(msg, frame)


def _message_of(msg: Message, data: Any) -> Message:
    """Fills `msg` from a parsed frame: channel, kind, id and payload, or `error`."""
    if not isinstance(data, dict):
        msg.payload, msg.error = data, "not a JSON object"
        return msg
    resource = data.get("resourceId")
    if resource is not None and not isinstance(resource, str):
        msg.payload, msg.error = data, "resourceId is not a string"
        return msg
    op = data.get("op")
    if op is not None:
        return _decode_op(msg, data, op)
    code = data.get("status")
    if isinstance(code, bool) or not isinstance(code, int):
        msg.payload, msg.error = data, "neither op nor an integer status"
        return msg
    headers = data.get("headers")
    reply_to = headers.get(REPLY_ADDRESS) if isinstance(headers, dict) else None
    msg.payload = {"status": code, **({"body": data["body"]} if "body" in data else {})}
    if reply_to is not None and not isinstance(reply_to, str):
        msg.error = f"headers.{REPLY_ADDRESS} is not a string"
        return msg
    msg.channel = RESPONSE if reply_to is not None else STATUS
    msg.id = reply_to
    return msg


def _decode_op(msg: Message, data: dict[str, Any], op: Any) -> Message:
    if not isinstance(op, str):
        msg.payload, msg.error = data, "op is not a string"
        return msg
    msg.channel = op
    resource = data.get("resourceId")
    if isinstance(resource, str):
        msg.kind = resource
    if op in (VALIDATE, AUTHENTICATE):
        # The token (or password) never reaches a screen, a record or a log: not even in raw.
        hidden = dict(data, object=HIDDEN)
        msg.payload, msg.raw = {"credentials": HIDDEN}, (encode(hidden).encode("utf-8"),)
        return msg
    headers = data.get("messageHeaders")
    reply_to = headers.get(REPLY_HEADER) if isinstance(headers, dict) else None
    if reply_to is not None and not isinstance(reply_to, str):
        msg.payload, msg.error = data, f"messageHeaders.{REPLY_HEADER} is not a string"
        return msg
    msg.id = reply_to
    if op == CONNECT:
        parameters = data.get("parameters")
        secret = parameters.get("reconnectSecret") if isinstance(parameters, dict) else None
        if (parameters is not None and not isinstance(parameters, dict)) or not isinstance(secret, (str, type(None))):
            msg.payload, msg.error = data, "connectExtension parameters are not {reconnectSecret: string}"
            return msg
        msg.payload = parameters
    elif op == CONFIGURE:
        obj = data.get("object")
        if not isinstance(obj, dict) or "config" not in obj:
            msg.payload, msg.error = data, "configureExtension without object.config"
        else:
            msg.payload = obj["config"]
    else:
        msg.payload = data.get("object")
    if op == QUERY and msg.id is None:
        msg.error = "query without messageHeaders.REPLY_ADDR_HEADER: it cannot be answered"
    return msg


def credentials_of(frame: str | bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[str | None, Any]:
    """(op, credentials) of a frame, for the server's check only: decode() hides them."""
    try:
        data = parse(frame, limits)
    except ValueError:
        return None, None
    return (data.get("op"), data.get("object")) if isinstance(data, dict) else (None, None)


def frame_of(msg: Message) -> Any:
    """The parsed frame behind a Message decoded without error (raw is always one frame)."""
    return loads(msg.raw[0])


def quoted(text: str, limit: int = QUOTED_CHARS) -> str:
    """A peer's text as one line may quote it: control characters escaped, length capped."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)[: QUOTED_CHARS + 1]


def refusal_text(data: Any) -> str:
    """`401 io.vantiq.authentication.failed: The supplied access token is not valid`, from a
    refusal of either body shape (list of {code, message}, or one object); one line, capped."""
    if not isinstance(data, dict):
        return quoted(_text(data))
    status, body = _text(data.get("status")), data.get("body")
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict):
        code = first.get("code") or first.get("messageCode") or ""
        text = first.get("message") or render_template(first.get("messageTemplate"), first.get("parameters"))
        return quoted(f"{status} {_text(code)}: {_text(text)}".strip())
    return quoted(f"{status} {'' if body is None else _text(body)}".strip())


def render_template(template: Any, parameters: Any) -> str:
    """`messageTemplate` with its zero-based {n} placeholders filled in (the first hundred: no
    template names more, and a peer's million parameters must not cost a million passes)."""
    text = _text(template or "")[: QUOTED_CHARS + 1]
    for index, value in enumerate(parameters[:100] if isinstance(parameters, list) else []):
        text = text.replace(f"{{{index}}}", _text(value))
    return text


# --- query results (server side) -----------------------------------------------------------------


def rows_of(body: Any) -> list[Any]:
    """A response body is one row (an object) or a list of rows."""
    if body is None:
        return []
    return list(body) if isinstance(body, list) else [body]


@dataclass
class QueryResult:
    """Collects a query's responses: 0..n partial (100) frames, then the first non-100 ends it.
    Rows are kept from the first max_bytes of response frames only; later ones are counted."""

    source: str
    reply_to: str
    rows: list[Any] = field(default_factory=list)
    partials: int = 0
    status: int | None = None
    error: Any = None
    problem: str | None = None  # no final frame: timeout or lost connection
    sent_at: float | None = None  # monotonic clock: when the query went out
    rtt_s: float | None = None  # from sent_at to the first response
    max_bytes: int = 64 << 20
    kept_bytes: int = 0
    dropped: int = 0  # rows past max_bytes: counted, not kept

    @property
    def count(self) -> int:
        return len(self.rows) + self.dropped

    @property
    def done(self) -> bool:
        return self.status is not None or self.problem is not None

    @property
    def ok(self) -> bool:
        return self.status in (COMPLETE, EMPTY)

    def add(self, code: int, body: Any, now: float | None = None, size: int = 0) -> bool:
        """Takes one response of `size` bytes, received at `now` (monotonic); True when it ended
        the query."""
        if self.rtt_s is None and self.sent_at is not None and now is not None:
            self.rtt_s = round(now - self.sent_at, 6)
        if code == PARTIAL:
            self.partials += 1
            self._keep(rows_of(body), size)
            return False
        self.status = code
        if code == COMPLETE:
            self._keep(rows_of(body), size)
        elif code >= 300:
            self.error = body
        return True

    def _keep(self, rows: list[Any], size: int) -> None:
        self.kept_bytes += size
        if self.kept_bytes > self.max_bytes:
            self.dropped += len(rows)
        else:
            self.rows.extend(rows)

    def summary(self) -> str:
        head = f"query {self.source}: {self.count} row(s) in {self.partials} partial frame(s)"
        if self.dropped:
            head += f" ({self.dropped} past the first {self.max_bytes} bytes counted, not kept)"
        if self.problem is not None:
            return f"{head}, then {self.problem}"
        if self.status is not None and self.status >= 300:
            return f"{head}, error {refusal_text({'status': self.status, 'body': self.error})}"
        return f"{head}, final {self.status}"


# --- connector start-up configuration ------------------------------------------------------------


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties as jprops reads them: `k=v`, `k:v`, `k v`; # and ! comments; a trailing
    backslash continues the line; leading whitespace dropped, trailing whitespace kept."""
    result: dict[str, str] = {}
    logical = ""
    for line in text.splitlines():
        stripped = line.lstrip()
        if not logical and (not stripped or stripped[0] in "#!"):
            continue
        if _continues(stripped):
            logical += stripped[:-1]
            continue
        logical += stripped
        key, value = _split_property(logical)
        result[key] = value
        logical = ""
    if logical:
        key, value = _split_property(logical)
        result[key] = value
    return result


def _continues(line: str) -> bool:
    backslashes = len(line) - len(line.rstrip("\\"))
    return backslashes % 2 == 1


def _split_property(line: str) -> tuple[str, str]:
    index = 0
    while index < len(line) and line[index] not in "=: \t\f":
        index += 2 if line[index] == "\\" else 1
    key = line[:index]
    rest = line[index:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return _unescape(key), _unescape(rest)


def _unescape(text: str) -> str:
    escapes = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
    return re.sub(
        r"\\(u[0-9a-fA-F]{4}|.)",
        lambda m: chr(int(m.group(1)[1:], 16)) if len(m.group(1)) == 5 else escapes.get(m.group(1), m.group(1)),
        text,
    )


def normalize_url(url: str) -> str:
    """targetServer as a WebSocket URL. Like the SDKs: http -> ws, https -> wss, and the path
    must end in /api/vN/wsock/websocket. Stricter than Python's sanitize_url (spec §3, §12 #15):
    a prefix path is kept (Java does so), a trailing slash is ignored, and a URL without a
    scheme becomes wss:// instead of a broken one."""
    url = url.strip()
    if "://" not in url:
        url = "wss://" + url
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme.startswith("https"):
        scheme = "wss"
    elif scheme.startswith("http"):
        scheme = "ws"
    path = parts.path.rstrip("/")
    if not _PATH_PATTERN.fullmatch(path):
        path += WEBSOCKET_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, parts.fragment))


def is_websocket_path(path: str) -> bool:
    return bool(_PATH_PATTERN.fullmatch(path.split("?", 1)[0]))


TRUE_WORDS = ("true", "yes", "1", "on")


@dataclass(frozen=True)
class ServerConfig:
    """server.config with the SDK's bugs fixed (spec §13.1): booleans are booleans, and an
    empty authToken counts as absent rather than as an empty token."""

    target_server: str | None
    sources: tuple[str, ...]
    token: str | None = None
    send_pings: bool = False
    fail_on_connection_error: bool = False
    tcp_probe_port: int | None = None
    reconnect_secret: str | None = None

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> ServerConfig:
        target = props.get("targetServer")
        sources = tuple(name for name in props.get("sources", "").replace(" ", "").split(",") if name)
        port = props.get("tcpProbePort", "").strip()
        if port and not port.isdigit():
            raise ValueError(f"tcpProbePort: not a port number: {port!r}")
        return cls(
            target_server=normalize_url(target) if target and target.strip() else None,
            sources=sources,
            token=props.get("authToken") or None,
            send_pings=props.get("sendPings", "").strip().lower() in TRUE_WORDS,
            fail_on_connection_error=props.get("failOnConnectionError", "").strip().lower() in TRUE_WORDS,
            tcp_probe_port=int(port) if port else None,
            reconnect_secret=props.get("reconnectSecret") or None,
        )
