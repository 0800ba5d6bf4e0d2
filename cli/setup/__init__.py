"""Setting fieldctl up: profiles, saved targets and shell completion."""
