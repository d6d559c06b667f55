"""The audit trail's permanent store: sl:audit (Redis, the recent window) archived into SQLite.

web/audit.py appends; audit_trail.archiver (run inside the historian process) copies the stream
into <data_dir>/audit_trail.sqlite3 as a hash chain (audit_trail.chain) and trims Redis behind
it; `python -m audit_trail verify` recomputes the chain. docs/audit.md has the guarantees.
"""
