"""Where a stream of Messages goes and how it looks: filters, NDJSON, --record, the live table,
one-shot renderings and the quiet announcer of a background simulator."""
