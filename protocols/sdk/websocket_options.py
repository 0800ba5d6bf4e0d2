"""Options every WebSocket client role shares (vantiq, sepl), declared once. Light: the
protocols' options.py modules import OPTIONS on the --help path; the transport loads when used."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fieldctl.protocols.sdk.options import OptionSpec

if TYPE_CHECKING:
    import ssl

    from fieldctl.protocols.transport.backoff import Backoff

OPTIONS = {
    "--insecure": OptionSpec("insecure", "flag", "wss:// without certificate verification (never the default)"),
    "--ca-file": OptionSpec("ca_file", "str", "trust this CA bundle for wss:// as well"),
    "--max-retries": OptionSpec("max_retries", "int", "give up after N reconnect attempts (default: keep trying)"),
}
#: A proxy's upstream side: its TLS (no retries: each client's reconnect is the next attempt).
PROXY_OPTIONS = {name: OPTIONS[name] for name in ("--insecure", "--ca-file")}


def connection_settings(
    url: str, options: dict[str, Any], notify: Callable[[str], None]
) -> tuple[ssl.SSLContext | None, Backoff]:
    """TLS and backoff for one client role from its parsed options."""
    from fieldctl.protocols.transport.backoff import Backoff
    from fieldctl.protocols.transport.websocket import tls_context

    if options.get("insecure"):
        notify(f"--insecure: the certificate of {url} is not verified")
    tls = tls_context(url, insecure=bool(options.get("insecure")), cafile=options.get("ca_file"))
    return tls, Backoff(max_retries=options.get("max_retries"))
