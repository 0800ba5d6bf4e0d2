"""What a vantiq role shows and raises: the credentials its frames carry masked, and every secret
known so far scrubbed from its messages and error texts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import FieldctlError
from fieldctl.protocols.sdk.contract import Emit


def shown(emit: Emit) -> Emit:
    """`emit` for a vantiq role. Credentials a frame carries (the accessToken and idToken a
    server hands out, a reconnectSecret, which lets anyone take the source over) are masked in
    payload and raw, and remembered; then every secret known so far is scrubbed, so a peer that
    echoes one back (or a control client in another process, which knows none) never shows it."""
    return lambda msg: emit(redact.scrub(redact.mask(msg)))


@contextlib.contextmanager
def scrubbed_errors() -> Iterator[None]:
    """Error texts quote what peers sent; a peer may have sent a secret."""
    try:
        yield
    except FieldctlError as exc:
        raise type(exc)(redact.scrub_text(str(exc))) from None
