"""The command line: Typer app, one module per subcommand, rich views. Never touches sockets."""
