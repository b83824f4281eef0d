"""Ansible filters for device profiles: the same profile (``orchestrator/profiles/``, issue 11) drives the
engine and the playbooks.

``{{ cmspatch_profile | default('') | cmspatch_profile_commands(name=..., upload_dir=..., base=...) }}``
reads the host's profile (a shipped name, or a path relative to ``base``, the inventory's directory; ''
is the shipped default) through ``adapters.profile_file.load_profile`` and returns its commands filled in
by ``DeviceProfile.command`` (each value ``shlex.quote``d): ``status``, ``firmware``, ``hash``,
``remove``, ``install``, ``reboot`` and ``free_space`` for the package ``name`` in ``upload_dir``
(else the profile's), plus ``path``, ``upload_dir``, ``grammar`` (for ``cmspatch_clinical``),
``installer`` (for ``cmspatch_install_reason``) and ``refusal`` (non-empty: the profile could not be
read, and why). Nothing is filled in here: a second template filler is how a playbook and the engine
would drift apart.

``{{ rc | cmspatch_install_reason(installer, message) }}``: the install's outcome by the profile's exit
code table (``Installer.outcome``), ``ok`` or a failure reason.
"""

from __future__ import annotations

import functools
import posixpath
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[2]
if (_REPO / "orchestrator" / "domain" / "profile.py").is_file() and str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from orchestrator.adapters.profile_file import load_profile  # noqa: E402
from orchestrator.domain.profile import DEFAULT_PROFILE, NAME_RE, DeviceProfile, Installer  # noqa: E402
from orchestrator.errors import UsageError  # noqa: E402

# The playbooks' word for a failed install (what `cmspatch import` has always read from them).
_PLAYBOOK_REASON = {"installer-failed": "install-failed"}


@functools.cache
def _profile(ref: str) -> DeviceProfile:
    return load_profile(ref)


def _resolve(ref: str, base: str) -> str:
    if not ref:
        return DEFAULT_PROFILE
    if NAME_RE.fullmatch(ref) or ref.startswith("/") or not base:
        return ref
    return str(Path(base) / ref)


def cmspatch_profile_commands(ref: Any, name: str, upload_dir: str = "", base: str = "") -> dict[str, Any]:
    try:
        profile = _profile(_resolve(str(ref or "").strip(), str(base or "")))
    except UsageError as exc:  # a bad or missing profile: the play fails this host with its reason
        return {"refusal": f"cmspatch-reason={getattr(exc, 'reason', 'bad-profile')}: {exc}"}
    directory = str(upload_dir or "") or profile.upload_dir
    path = posixpath.join(directory, posixpath.basename(str(name)))
    grammar = profile.status
    installer = profile.installer
    return {
        "refusal": "",
        "name": profile.name,
        "path": path,
        "upload_dir": directory,
        "status": profile.command("clinical_status"),
        "firmware": profile.command("firmware_read"),
        "hash": profile.command("hash_file", path=path),
        "remove": profile.command("remove_file", path=path),
        "install": profile.command("install", path=path),
        "reboot": profile.command("reboot"),
        "free_space": profile.command("free_space", dir=directory),
        "grammar": {role: {"key": k.key, "clear": k.clear, "busy": list(k.busy)}
                    for role, k in (("patient", grammar.patient), ("alarm", grammar.alarm))},
        "installer": {"exit_codes": {str(c): r for c, r in installer.exit_codes.items()},
                      "other_exit": installer.other_exit, "message_words": dict(installer.message_words)},
    }


def cmspatch_install_reason(rc: Any, installer: Mapping[str, Any], message: Any = "") -> str:
    table = Installer(exit_codes={int(c): str(r) for c, r in installer["exit_codes"].items()},
                      other_exit=str(installer["other_exit"]),
                      message_words={str(w): str(r) for w, r in installer.get("message_words", {}).items()})
    code = rc if isinstance(rc, int) and not isinstance(rc, bool) else None
    if isinstance(rc, str) and rc.strip().isdigit():
        code = int(rc)
    outcome = table.outcome(code, str(message or ""))
    return _PLAYBOOK_REASON.get(outcome, outcome)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"cmspatch_profile_commands": cmspatch_profile_commands,
                "cmspatch_install_reason": cmspatch_install_reason}
