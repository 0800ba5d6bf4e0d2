"""The simulated platform's rules, pure (no I/O): gateways with their committed hash and devices,
the device registry, and one session's answers with the Go connector's status codes and error
texts (spec §5, §5.10, §13.1)."""

from __future__ import annotations

import hmac
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fieldctl.profiles.secrets import Secret
from fieldctl.protocols.core.limits import Malformed

from . import codec

OK = "ok"

#: The Go structs the platform decodes payloads into: JSON key -> Go type (spec §5.3, §5.7).
DEVICE_FIELDS = {"uri": "string", "name": "string", "iot_type": "string", "tags": "[]string"}
EVENT_FIELDS = {"device_uri": "string", "service_uri": "string", "value": "[]model.ProtocolPart"}
PART_FIELDS = {"name": "string", "value": "string"}


def go_unmarshal(body: dict[str, Any], struct: str, fields: dict[str, str]) -> tuple[dict[str, Any], str | None]:
    """The struct Go's encoding/json fills from `body`: keys matched case-insensitively (the last
    one wins), null as the zero value, unknown keys ignored; and the first type error, in Go's
    words (Go goes on decoding after one; the platform then answers with the error)."""
    filled: dict[str, Any] = {key: ("" if kind == "string" else []) for key, kind in fields.items()}
    errors: list[str] = []

    def wrong(value: Any, where: str, kind: str) -> None:
        errors.append(f"json: cannot unmarshal {codec.go_type_name(value)} into Go struct field {where} of type {kind}")

    for key, value in ((k.lower(), v) for k, v in body.items()):
        kind, where = fields.get(key), f"{struct}.{key}"
        if kind is None or value is None:
            continue
        if kind == "string":
            if isinstance(value, str):
                filled[key] = value
            else:
                wrong(value, where, kind)
        elif not isinstance(value, list):
            wrong(value, where, kind)
        elif kind == "[]string":
            filled[key] = [item or "" for item in value if item is None or isinstance(item, str)]
            for item in value:
                if item is not None and not isinstance(item, str):
                    wrong(item, where, "string")
        else:  # []model.ProtocolPart
            filled[key] = []
            for item in value:
                if item is None or isinstance(item, dict):
                    part, error = go_unmarshal(item or {}, "ProtocolPart", PART_FIELDS)
                    errors.extend([error] if error else [])
                    filled[key].append(part)
                else:
                    wrong(item, where, "model.ProtocolPart")
    return filled, (errors[0] if errors else None)


@dataclass
class Gateway:
    gid: str
    hash: str = ""
    devices: list[str] = field(default_factory=list)  # uris listened to at the last commit


@dataclass(frozen=True)
class Answer:
    status: int
    token: str
    payload: Any
    handler: str = ""  # the request's handler ("" when it could not be parsed)


class Registry:
    """Everything the platform keeps between sessions."""

    def __init__(self, services: list[str], gid_prefix: str = "fieldctl-gateway-") -> None:
        self.services = list(services)
        self.gateways: dict[str, Gateway] = {}
        self.devices: dict[str, dict[str, Any]] = {}  # uri -> {name, iot_type, tags}
        self._numbers = itertools.count(1)
        self.gid_prefix = gid_prefix

    def login(self, creds: dict[str, Any], users: Mapping[str, Secret]) -> LoginVerdict:
        """The credentials object (the first frame) against the accepted users; an accepted
        login gets its gateway provided and a session."""
        try:
            fields = codec.login_fields(creds)
        except Malformed as exc:  # the Go platform cannot decode it
            return LoginVerdict(refused=str(exc), undecodable=True)
        user, expected = fields["user"], users.get(fields["user"])
        if expected is None or not hmac.compare_digest(expected.reveal().encode(), fields["pw"].encode()):
            return LoginVerdict(user, refused="wrong user or password")
        return LoginVerdict(user, Session(self, self.provide(fields["gid"])), fields["token"])

    def provide(self, gid: str) -> Gateway:
        """/gateway/<gid>/provide: an empty or unknown id gets a new gateway."""
        if gid not in self.gateways:
            gid = f"{self.gid_prefix}{next(self._numbers):04d}"
            self.gateways[gid] = Gateway(gid)
        return self.gateways[gid]


@dataclass(frozen=True)
class LoginVerdict:
    """The verdict on a login: the session, or why it was `refused` (the platform then drops the
    connection without a frame); `undecodable` when Go could not even decode the credentials."""

    user: str = ""
    session: Session | None = None
    token: str = ""
    refused: str | None = None
    undecodable: bool = False


class Session:
    """One websocket session: the devices it listens to and its answers to requests."""

    def __init__(self, registry: Registry, gateway: Gateway) -> None:
        self.registry, self.gateway = registry, gateway
        self.listening: set[str] = {uri for uri in gateway.devices if uri in registry.devices}
        self.consecutive_errors = 0

    def handle(self, text: str, envelope: Any = ...) -> list[Answer]:
        """The answers to one frame. `envelope`: the frame as the caller decoded it already
        (codec.decode_frame: the object, or None when it is not one); decoded here if not given."""
        answers = self._answers(text, envelope)
        for answer in answers:
            self.consecutive_errors = 0 if answer.status == 200 else self.consecutive_errors + 1
        return answers

    def _answers(self, text: str, envelope: Any) -> list[Answer]:
        if envelope is ...:
            try:
                envelope = codec.parse_object(text)
            except Malformed:
                envelope = None
        if envelope is None:  # Go's two answers; the frame quoted whole once, then only its start
            start = text if len(text) <= codec.QUOTED else text[: codec.QUOTED] + "..."
            return [
                Answer(400, "", f"unable to parse request from message ({text})"),
                Answer(400, "", f"unknown handler in request ({start})"),
            ]
        request = {k.lower(): v for k, v in envelope.items()}  # Go matches names case-insensitively
        token = codec.text_of(request.get("token"))
        handler = codec.text_of(request.get("handler"))
        method = getattr(self, f"_{handler}", None) if handler in codec.HANDLERS else None
        if method is None:
            return [Answer(400, token, f"unknown handler in request ({text})")]
        status, payload = method(request.get("payload"))
        return [Answer(status, token, payload, handler)]

    def _clear(self, _: Any) -> tuple[int, Any]:
        self.listening.clear()
        self.gateway.hash, self.gateway.devices = "", []
        return 200, OK

    def _put(self, payload: Any) -> tuple[int, Any]:
        if not isinstance(payload, dict):
            return (
                500,
                f"json: cannot unmarshal {codec.go_type_name(payload)} into Go value of type model.ConnectorDevice",
            )
        device, error = go_unmarshal(payload, "ConnectorDevice", DEVICE_FIELDS)
        if error:
            return 500, error
        uri = device["uri"]
        tags = dict(t.partition(":")[::2] for t in device["tags"])
        known = self.registry.devices.get(uri)
        if known is None:
            if not device["iot_type"]:
                return 500, "empty iot_type"
            self.registry.devices[uri] = {"name": device["name"], "iot_type": device["iot_type"], "tags": tags}
        else:  # name replaced, tags merged by key (client wins, others kept), type changes ignored
            known["name"] = device["name"]
            known["tags"] = {**known["tags"], **tags}
        self.listening.add(uri)
        return 200, OK

    def _disconnect(self, payload: Any) -> tuple[int, Any]:
        if not isinstance(payload, str):
            return 400, "expect uri as string in payload"
        if payload not in self.listening:
            return 500, f"not listening to device with uri '{payload}'"
        self.listening.discard(payload)
        return 200, OK

    def _delete(self, payload: Any) -> tuple[int, Any]:
        if not isinstance(payload, str):
            return 400, "expect uri as string in payload"
        if payload not in self.registry.devices:
            return 500, "cant find exactly one device with given uri"
        self.listening.discard(payload)
        del self.registry.devices[payload]
        return 200, OK

    def _commit(self, payload: Any) -> tuple[int, Any]:
        if not isinstance(payload, str):
            return 400, "expect hash as string in payload"
        self.gateway.hash, self.gateway.devices = payload, sorted(self.listening)
        return 200, OK

    def _event(self, payload: Any) -> tuple[int, Any]:
        if not isinstance(payload, dict):
            return 400, f"json: cannot unmarshal {codec.go_type_name(payload)} into Go value of type model.Event"
        body, error = go_unmarshal(payload, "Event", EVENT_FIELDS)
        if error:
            return 400, error
        if body["device_uri"] not in self.listening:
            return 400, f"error event: not listen to this device {codec.go_sprint_event(body)}"
        if body["service_uri"] not in self.registry.services:
            return 400, f"no matching service to '{body['service_uri']}' found in[{' '.join(self.registry.services)}]"
        return 200, OK

    def _response(self, payload: Any) -> tuple[int, Any]:
        try:
            json.dumps(payload, allow_nan=False)
        except ValueError as exc:
            return 400, f"ERROR: cannot parse response msg: {exc}"
        return 200, OK
