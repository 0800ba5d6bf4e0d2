"""The leaf core every other layer stands on: the exit-code errors, the one Message model, the
decoding limits, the masking of secrets and the entry-point reader. It imports nothing of fieldctl."""
