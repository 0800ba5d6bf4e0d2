"""Wire protocols: the Message model, errors, transports and one module per system.

Nothing here imports cli/ or rich; codecs are pure, roles run over transport/.
"""
