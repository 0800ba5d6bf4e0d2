"""Vantiq extension sources (connectors), JSON over WebSocket: frames (codec), the connector's
Machine (client_state), the connector side (client: register, publish, probe; answers: how queries
are answered), what a role shows with its secrets masked (masking), the server's state machine
(simulator_state), the server side (simulator: simulate and its control path; scenario:
contract-test steps and checks) and the Driver that wires them (driver)."""
