"""Transports do only I/O: sockets, connection state, timeouts. No protocol knowledge."""
