"""The pure core: values and rules, no I/O.

Nothing here opens a file, a socket or a process, and nothing imports paramiko, asyncssh,
ansible_runner, tenacity, textual or sqlite3 (enforced by import-linter, see pyproject.toml).
Callers hand in bytes and values; these modules hand back values or raise typed errors.
"""
