"""The leaf core every other layer stands on: the exit-code errors, the one Message model, the
decoding limits, the masking of secrets, the entry-point reader and how a value or a duration
reads for a person. It imports nothing of fieldctl."""
