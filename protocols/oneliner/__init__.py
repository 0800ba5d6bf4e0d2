"""one-liner 0.1.1 (AllenNeuralDynamics RouterServer/RouterClient) over ZeroMQ: pickle safety
(safe_pickle), packets and requests (codec), the simulated server's state machine (simulator_state),
the client roles (client), the server roles (simulator) and the Driver that wires them (driver)."""
