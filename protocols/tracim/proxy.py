"""`proxy tracim`: fieldctl between client programs and a TracimDaemon, on the document relay
(protocols/sdk/runners/relay_documents.py). A client registers with the proxy's master socket;
the proxy registers upstream with a socket of its own in the client's place (a fresh path from the
profile's `client` endpoint, one per client), and relays what the daemon delivers there to the
client's socket. Socket paths are the protocol's addresses, so the proxy rewrites them, and only
them (docs/protocols/tracim.md, "Through the proxy")."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from fieldctl.profiles import Profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.sdk.runners import documents, relay_documents
from fieldctl.protocols.sdk.runners.relay import Tap

from . import codec, paths
from .client import REPLIES

#: The endpoint a document is shown on: where it goes (the daemon's socket), or where it comes
#: to (a client's), as the client roles show theirs.
ENDPOINTS = {OUT: "master", IN: "client"}


def routable(path: str) -> bool:
    """A path the proxy can listen for and deliver to in a client's place: anything else (empty, a
    NUL byte, too long) goes upstream as it is, for the daemon to fail on as it would."""
    try:
        return bool(path) and "\0" not in path and len(os.fsencode(path)) <= codec.MAX_SOCKET_PATH
    except UnicodeError:
        return False


class Naming(relay_documents.Naming):
    """What the relay needs to know of tracim's documents."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.channels = codec.Channels.from_profile(profile)
        self.max_depth = profile.limits.max_depth
        self.pid = str(os.getpid())

    def address(self, raw: bytes) -> relay_documents.Address:
        """The envelope's path, where the daemon answers (and a registration's key, §4.1)."""
        try:
            envelope = codec.parse(raw, self.max_depth)
        except codec.DecodeError:
            return relay_documents.Address(None)
        if not routable(envelope.path):
            return relay_documents.Address(None)
        signs = {codec.CLIENT_ADD: True, codec.CLIENT_DELETE: False}.get(envelope.type)
        return relay_documents.Address(envelope.path, signs)

    def rename(self, raw: bytes, names: Mapping[str, str]) -> bytes:
        return codec.rename_paths(raw, names)

    def sign_off(self, own: str) -> bytes:
        return codec.encode(own, codec.CLIENT_DELETE, {"path": own, "pid": self.pid})

    def taps(self, client: str | None) -> dict[str, Tap]:
        """Each document as the client roles show it, `id` the client's socket; a reply gets the
        time since its request on the same route (matched by type, as the protocol matches)."""
        asked: dict[str, float] = {}  # reply type -> when its request went: at most len(REPLIES)

        def decode(frame: Frame, direction: str) -> Message:
            return codec.decode(
                relay_documents.document(frame),
                profile=self.profile.name,
                channels=self.channels,
                endpoint=ENDPOINTS[direction],
                direction=direction,
                peer=client,
                max_depth=self.max_depth,
            )

        def out(frame: Frame) -> list[Message]:
            msg = decode(frame, OUT)
            reply = REPLIES.get(str(msg.kind))
            if reply is not None and not msg.error:
                asked[reply] = time.monotonic()
            return [msg]

        def inward(frame: Frame) -> list[Message]:
            msg = decode(frame, IN)
            sent = asked.pop(str(msg.kind), None)
            if sent is not None:
                msg.rtt_s = time.monotonic() - sent
            return [msg]

        return {OUT: out, IN: inward}


def sockets(profile: Profile, options: Mapping[str, object], upstream: Mapping[str, str]) -> relay_documents.Sockets:
    """The local master socket (the profile's, as a client would find it), the daemon's, and
    where each client's own socket upstream is: a fresh path of the `client` endpoint each."""
    if "master" not in upstream:
        raise UsageError("proxy tracim relays to a daemon's master socket: give --upstream-endpoint master=unix://PATH")
    local = paths.master_path(profile, dict(options))
    target = paths.daemon_socket(upstream["master"], "upstream endpoint master")
    if os.path.abspath(local) == os.path.abspath(target):
        raise UsageError(f"the proxy cannot listen on the daemon's own socket {target}: give another local master")
    return relay_documents.Sockets(local, target, lambda: paths.client_path(profile), ENDPOINTS[OUT], ENDPOINTS[IN])


async def run(profile: Profile, context: Context, upstream: dict[str, str], faults: Faults) -> None:
    where = sockets(profile, context.options, upstream)
    os.makedirs(os.path.dirname(where.local) or ".", mode=0o700, exist_ok=True)

    def timeout(key: str, default: float) -> float:
        return float(profile.setting(f"timeouts.{key}", default))

    timing = relay_documents.Timing(
        documents.Reading(timeout("read_s", 5.0), profile.limits.max_frame_bytes),
        timeout("send_s", 1.0),
        timeout("retry_s", 1.0),
    )
    await relay_documents.DocumentRelay(Naming(profile), context, faults, profile.name, where, timing).run()
