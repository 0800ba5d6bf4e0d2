"""SEPL connector-client <-> platform connector, JSON over WebSocket: codec (frames, hashes),
store (sqlite devices), connection (one logged-in connection) and its state (client_state), client
(the connector: register, publish, probe), the platform's state machine (simulator_state), simulator
(the platform: simulate) and the Driver that wires them (driver)."""
