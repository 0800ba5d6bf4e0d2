"""A connector built on the REAL vantiqconnectorsdk 1.3.7 (PyPI), run from its own venv by the
interop tests. It reads server.config from its working directory, as every SDK connector does,
and reports what its handlers see as JSON lines on stdout.

- connect: {"event": "connected", "source", "config"}
- publish: {"event": "published", ...} and a notification back {event, source, count, received}
- query: rows of a small "items" table. Parameters: chunk N (partial frames of N rows, then
  complete; default 2), id (204 when no row has it), name, as_object; anything else is a query error
  (peer.query.unsupported) naming the allowed parameters.
- close: {"event": "closed", "source"}; the process exits 0 once every source stopped
  (testRequestsClientClose) and 2 when the SDK raises its configuration exception.
"""

from __future__ import annotations

import asyncio
import json
import sys

import vantiqconnectorsdk as sdk
from vantiqconnectorsdk import VantiqConnector, VantiqConnectorConfigException, VantiqConnectorSet

ROWS = [
    {"id": 1, "name": "alpha", "value": 10.5, "tags": ["a", "first"]},
    {"id": 2, "name": "beta", "value": 20, "tags": []},
    {"id": 3, "name": "gamma", "value": -3, "tags": ["last"]},
]
ALLOWED = ["as_object", "chunk", "error", "id", "name", "table"]


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class Peer:
    def __init__(self, connectors: VantiqConnectorSet) -> None:
        self.connectors = connectors
        self.published = 0

    def connection(self, ctx: dict) -> sdk.VantiqSourceConnection:
        return self.connectors.get_connection_for_source(ctx[VantiqConnector.SOURCE_NAME])

    async def on_connect(self, ctx: dict, config: dict) -> None:
        say(event="connected", source=ctx[VantiqConnector.SOURCE_NAME], config=config)

    async def on_close(self, ctx: dict) -> None:
        say(event="closed", source=ctx[VantiqConnector.SOURCE_NAME])

    async def on_publish(self, ctx: dict, message: dict) -> None:
        self.published += 1
        source = ctx[VantiqConnector.SOURCE_NAME]
        say(event="published", source=source, received=message)
        await self.connection(ctx).send_notification(
            {"event": "published", "source": source, "count": self.published, "received": message}
        )

    async def on_query(self, ctx: dict, params: dict) -> None:
        conn = self.connection(ctx)
        params = params or {}
        say(event="query", source=ctx[VantiqConnector.SOURCE_NAME], params=params)
        unknown = sorted(set(params) - set(ALLOWED))
        if unknown or "error" in params:
            await conn.send_query_error(
                ctx,
                {
                    VantiqConnector.ERROR_CODE: "peer.query.unsupported",
                    VantiqConnector.ERROR_TEMPLATE: "Unsupported query parameter {0}; allowed: {1}",
                    VantiqConnector.ERROR_PARAMETERS: [(unknown or ["error"])[0], ALLOWED],
                },
            )
            return
        rows = [row for row in ROWS if all(row.get(key) == params[key] for key in ("id", "name") if key in params)]
        if not rows:
            await conn.send_query_response(ctx, VantiqConnector.QUERY_EMPTY, None)
            return
        if params.get("as_object") and len(rows) == 1:
            await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, rows[0])
            return
        chunk = int(params.get("chunk") or 2)
        while len(rows) > chunk:
            await conn.send_query_response(ctx, VantiqConnector.QUERY_PARTIAL, rows[:chunk])
            rows = rows[chunk:]
        await conn.send_query_response(ctx, VantiqConnector.QUERY_COMPLETE, rows)


async def main() -> int:
    sdk.setup_logging()  # mandatory before anything else (spec §2)
    try:
        connectors = VantiqConnectorSet()
        peer = Peer(connectors)
        connectors.configure_handlers_for_all(peer.on_close, peer.on_connect, peer.on_publish, peer.on_query)
        say(event="starting", sources=connectors.get_sources())
        await connectors.run_connectors()
    except VantiqConnectorConfigException as exc:
        say(event="exit", reason="configuration error", error=str(exc))
        return 2
    say(event="exit", reason="all sources stopped")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
