"""What the tests share, one module per kind of thing: processes and ports, the repository and its
fence, captured fixtures, the real peers, each system's devices, fleets, terminals, Prometheus and
fuzzing. tests/conftest.py registers the modules that hold fixtures or hooks."""
