"""Vantiq extension sources (connectors), JSON over WebSocket: frames (codec), the connector side
(client: register, publish, probe; answers: how queries are answered), the server's state machine
(simulator_state), the server side (simulator: simulate and its control path; scenario:
contract-test steps and checks) and the Driver that wires them (driver)."""
