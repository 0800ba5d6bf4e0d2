"""auto-trainer-api 0.12.0 over ZeroMQ: the codec (codec, casing), the device's state machine
(simulator_state, timeline), the client's (client_state), the client roles (client), the device roles
(simulator) and the Driver that wires them (driver)."""
