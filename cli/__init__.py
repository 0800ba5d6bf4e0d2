"""The command line, grouped as `fieldctl --help` reads: app.py (the root and exit codes), roles/
(listen, register, command, publish, simulate, probe, bench, demo), check/, console/, fleet/,
setup/ (profiles, target, completion), views/ and framework/. Never touches sockets or wire formats."""
