"""The I/O runners protocol packages share, one per interaction shape: each owns its sockets and
drives a protocol's sans-I/O state (protocols/sdk/machine.py), so a protocol supplies codecs and
machines and writes no socket loop of its own."""
