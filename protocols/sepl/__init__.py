"""SEPL connector-client <-> platform connector, JSON over WebSocket: codec (frames, hashes),
store (sqlite devices), client_state (the connector's Machines: login, device sync, commands,
keep-alive), connection (timings, a refused login, secrets scrubbed), client (the connector:
register, publish, probe, on the stream runner), the platform's state machine (simulator_state),
simulator (the platform: simulate) and the Driver that wires them (driver)."""
