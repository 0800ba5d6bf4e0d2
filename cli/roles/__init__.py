"""The subcommands that play a protocol role (listen, register, command, publish, simulate,
probe), declared once in verbs.py for the app and the console, and those built on them (demo, bench)."""
