"""What a protocol package builds on besides the core and the profiles: the Driver contract,
option declarations, replay pacing, probe verdicts, periodic schedules and the options every
WebSocket client shares. No I/O of its own beyond the transports it names."""
