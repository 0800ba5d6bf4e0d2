"""`fieldctl check`: check files (model, loader, validator), the runner, subset matching and the
reports (a table, NDJSON, JUnit XML)."""
