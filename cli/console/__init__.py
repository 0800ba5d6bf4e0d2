"""`fieldctl console`: the prompt, what it keeps open between lines, and its completion."""
