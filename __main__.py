"""`python -m fieldctl`."""

from fieldctl.cli.app import main

main()
