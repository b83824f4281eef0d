"""Ansible filter ``cmspatch_netguard``: cmspatch's one network guard, for the playbooks.

``{{ [ansible_host | default(inventory_hostname), ansible_ssh_host | default('')] | cmspatch_netguard }}``
returns ``""`` when every address the given names resolve to may be connected to, or the refusal in plain
words when one of them is in 202.114.4.0/24 (``orchestrator.domain.netguard``; a name, a legacy form
such as ``3396469879`` and an IPv4-mapped IPv6 literal are refused like the plain address). It runs on
the controller, before any task connects to the monitor; ``orchestrator.adapters.guarded_net`` does the
resolving, as it does for cmspatch's own SSH and Ansible transports. A name that does not resolve is
left to OpenSSH, which reports the host unreachable.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[2]
if (_REPO / "orchestrator" / "domain" / "netguard.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from orchestrator.adapters.guarded_net import resolve_checked  # noqa: E402
from orchestrator.domain.netguard import IndicatorAddressRefused  # noqa: E402


def cmspatch_netguard(addresses: Any) -> str:
    names = addresses if isinstance(addresses, list | tuple) else [addresses]
    for name in (str(n).strip() for n in names if n is not None):
        if not name:
            continue
        try:
            resolve_checked(name, 22)
        except IndicatorAddressRefused as exc:
            return exc.message
        except OSError:
            continue
    return ""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"cmspatch_netguard": cmspatch_netguard}
