"""The daemon's dispatch table and client registry (spec §4, §5), pure: documents in, documents
out (each with its destination), no I/O, so every rule is testable without sockets."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fieldctl.protocols.core.limits import MAX_DEPTH
from fieldctl.protocols.sdk.runners.documents import Document

from . import codec
from .codec import DecodeError, Envelope

#: §4.1/§4.7: the real daemon panics (exit 2) on these `data` values for client_add / do_request.
FATAL_DATA = "data must be a JSON object: the real daemon panics and exits 2 on this"
ARRAY_DATA = "data is nil or of an invalid type"


@dataclass(frozen=True)
class Outgoing(Document):
    """A document to send, with the envelope its bytes encode (to show it without parsing it back)."""

    envelope: Envelope


@dataclass
class Entry:
    path: str
    pid: str
    alive: bool = True


@dataclass
class DocumentEffects:
    """What one incoming document causes: the envelope (None when it could not be parsed), a
    problem to report (the daemon's log line), and the documents to send, in order."""

    envelope: Envelope | None
    problem: str | None = None
    fatal_on_real_daemon: bool = False
    outbox: list[Outgoing] = field(default_factory=list)


def _string_field(data: dict[str, Any], key: str) -> str:
    """Only the exact lowercase key, and only a JSON string (§4.1: a numeric pid becomes "")."""
    value = data.get(key)
    return value if isinstance(value, str) else ""


class DaemonState:
    def __init__(
        self, master: str, user_id: str = "42", api_root_body: bytes | None = None, max_depth: int = MAX_DEPTH
    ) -> None:
        self.master, self.user_id, self.max_depth = master, user_id, max_depth
        self.api_root_body = api_root_body  # None: like a Tracim without a 200 at the API root
        self.registry: list[Entry] = []

    # --- what the daemon sends ---

    def _to(self, destination: str, type_: str, data: Any = None, *, generic: bool = False) -> Outgoing:
        return Outgoing(
            destination, codec.encode(self.master, type_, data, generic=generic), Envelope(self.master, type_, data)
        )

    def _broadcast(self, type_: str, data: Any = None, *, generic: bool = False) -> list[Outgoing]:
        """One encoding shared by every destination: a big document queued for many clients
        costs its size once."""
        raw, envelope = codec.encode(self.master, type_, data, generic=generic), Envelope(self.master, type_, data)
        return [Outgoing(entry.path, raw, envelope) for entry in self.registry]

    def account_info(self, destination: str) -> Outgoing:
        return self._to(destination, codec.ACCOUNT_INFO, {"user_id": self.user_id})

    def tracim_event(self, tlm_text: str) -> list[Outgoing]:
        """§4.9: the TLM text as a JSON string, to every registered client in order."""
        return self._broadcast(codec.TRACIM_EVENT, tlm_text)

    def broadcast(self, type_: str, data: Any = None) -> list[Outgoing]:
        return self._broadcast(type_, data, generic=True)

    def keepalive_tick(self) -> tuple[list[Entry], list[Outgoing]]:
        """§5: drop entries not alive (no broadcast), mark the rest not alive, ping them.
        Unlike the real loop, which walks a shrinking slice, every dead entry goes at once."""
        dropped = [entry for entry in self.registry if not entry.alive]
        self.registry = [entry for entry in self.registry if entry.alive]
        for entry in self.registry:
            entry.alive = False
        return dropped, self._broadcast(codec.PING)

    # --- what the daemon receives ---

    def handle(self, raw: bytes) -> DocumentEffects:
        try:
            envelope = codec.parse(raw, self.max_depth)
        except DecodeError as exc:
            return DocumentEffects(None, str(exc))
        handling = DocumentEffects(envelope)
        handlers: dict[str, Callable[[Envelope, DocumentEffects], None]] = {
            codec.CLIENT_ADD: self._client_add,
            codec.CLIENT_DELETE: self._client_delete,
            codec.GET_CLIENTS: self._get_clients,
            codec.GET_ACCOUNT_INFO: lambda env, h: h.outbox.append(self.account_info(env.path)),
            codec.DO_REQUEST: self._do_request,
            codec.PING: lambda env, h: h.outbox.append(self._to(env.path, codec.PONG)),
            codec.PONG: self._pong,
            codec.ACK: lambda env, h: None,
        }
        handlers.get(envelope.type, self._ack)(envelope, handling)
        return handling

    def _ack(self, envelope: Envelope, handling: DocumentEffects) -> None:
        """What a document of any other type gets."""
        handling.outbox.append(self._to(envelope.path, codec.ACK))

    @staticmethod
    def _object_data(envelope: Envelope, handling: DocumentEffects) -> dict[str, Any] | None:
        if isinstance(envelope.data, dict):
            return envelope.data
        if isinstance(envelope.data, list):
            handling.problem = ARRAY_DATA
        else:
            handling.problem, handling.fatal_on_real_daemon = FATAL_DATA, True
        return None

    def _client_add(self, envelope: Envelope, handling: DocumentEffects) -> None:
        data = self._object_data(envelope, handling)
        if data is None:
            return
        path, pid = _string_field(data, "path"), _string_field(data, "pid")
        existing = next((entry for entry in self.registry if entry.path == path), None)
        if existing is not None:
            existing.pid, existing.alive = pid, True
            handling.outbox.append(self.account_info(envelope.path))
            return
        self.registry.append(Entry(path, pid))
        handling.outbox.append(self.account_info(envelope.path))
        handling.outbox.extend(self._broadcast(codec.CLIENT_ADDED, {"path": path, "pid": pid}))

    def _client_delete(self, envelope: Envelope, handling: DocumentEffects) -> None:
        self.registry = [entry for entry in self.registry if entry.path != envelope.path]
        handling.outbox.extend(self.broadcast(codec.CLIENT_DELETED, envelope.data))

    def _get_clients(self, envelope: Envelope, handling: DocumentEffects) -> None:
        clients = [{"path": entry.path, "pid": entry.pid} for entry in self.registry]
        handling.outbox.append(self._to(envelope.path, codec.CLIENTS, clients))  # [] when empty (§4.5)

    def _do_request(self, envelope: Envelope, handling: DocumentEffects) -> None:
        """§4.7: every field is ignored; the reply only comes when the API root answered 200."""
        if self._object_data(envelope, handling) is None or self.api_root_body is None:
            return
        result = {
            "Request": {"Method": "", "Endpoint": "", "Body": None},
            "StatusCode": 200,
            "Status": "200 OK",
            "data": base64.b64encode(self.api_root_body).decode("ascii"),
        }
        handling.outbox.append(self._to(envelope.path, codec.REQUEST_RESULT, result))

    def _pong(self, envelope: Envelope, handling: DocumentEffects) -> None:
        for entry in self.registry:
            if entry.path == envelope.path:
                entry.alive = True
        handling.outbox.append(self._to(envelope.path, codec.ACK))
