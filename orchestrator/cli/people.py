"""Who decides: the one place the CLI and the TUI learn the name recorded on approvals and runs.

Regulators and auditors read "approved by" as a person. A login name such as ``root`` is not one, and the
old default took it silently. The name comes from ``--operator``, else ``$CMSPATCH_OPERATOR`` (for a
site's service account or an AWX job), else the login name, and then the record says so in words
("root (login name; no --operator given)") and a warning on stderr asks for a name.
"""

from __future__ import annotations

import getpass
import os
import sys

ENV = "CMSPATCH_OPERATOR"


def operator_name(given: str | None, *, warn: bool = True) -> str:
    for value in (given, os.environ.get(ENV)):
        if value is not None and value.strip():
            return value.strip()
    login = getpass.getuser()
    if warn:
        print(f"cmspatch: warning: no operator named; decisions are recorded as the login name {login!r}. "
              f"Give --operator NAME (or set {ENV}) so the journal and the exports name a person",
              file=sys.stderr)
    return f"{login} (login name; no --operator given)"
