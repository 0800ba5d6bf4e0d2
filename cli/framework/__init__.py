"""The app framework every command group uses: lazy subcommands, the options every subcommand
shares, protocol options as real click options, completers and text made safe for a terminal."""
