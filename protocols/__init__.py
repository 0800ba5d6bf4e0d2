"""Wire protocols, in layers (docs/architecture.md): core/ (errors, Message, limits, redaction),
sdk/ (the Driver contract and what protocol packages use), transport/ (sockets only), runtime/
(discovery and what runs protocols for the CLI), and one package per system.

Nothing here imports cli/ or rich; codecs are pure, roles run over transport/.
"""
