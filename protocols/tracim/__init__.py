"""TracimDaemon's local protocol over Unix sockets: codec (codec), the daemon's state machine
(simulator_state, timeline), the client's (client_state), where the sockets are (paths), the client
roles (client), the daemon roles (simulator) and the Driver that wires them (driver)."""
