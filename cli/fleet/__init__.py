"""Many targets at once: following a fleet (follower, state), its board and NDJSON (listen, board),
the Prometheus exporter (export, metrics) and the output side of a simulated fleet (simulate)."""
