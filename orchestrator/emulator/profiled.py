"""A monitor's root made to follow a device profile other than the emulated CMS service shell.

The emulator's device underneath stays one device (its state files, ``cms-install``'s checks, the
reboot and trigger requests of ``scripts``); what a profile changes is how that device is spoken to.
``profile_layout(profile)`` reads the profile and says what to add to a root so that every command and
path the profile names answers as the profile says, and nothing else does:

- **status**: the profile's status program (e.g. ``/usr/bin/devstatus``) prints the emulated
  ``patient=``/``alarm=`` state in the profile's grammar (its keys; "connected"/"active" as its first
  busy value, "none" as its clear value, anything else passed through, so a garbled status stays one
  the profile reads as "do not disturb");
- **install**: the profile's installer (e.g. ``sysupgrade``) runs the emulated installer and exits with
  the profile's code for each outcome (ok, disk-full, otherwise a code the profile does not list); its
  message avoids the profile's ``message_words``, so the exit code alone must carry the reason;
- **firmware read** (``cat PATH``), **binaries** and **upload dir**: relative links to where the
  emulated device keeps them (``/etc/firmware_version``, ``/opt/cms/bin``, ``/data``), so an install,
  a rollback and the data partition's accounting are the same device's;
- **reboot**: the profile's program is the emulated ``reboot`` (its arguments are ignored);
- **triggers**: no ``cms-service`` unless the profile names it; a null trigger is a technician's.

The shipped profile needs nothing (``profile_layout`` returns an empty layout). A profile asking for
what the emulated device cannot do (another boot identity path, a firmware read that is not ``cat``,
a trigger command that is not ``cms-service``) is refused with ``EmulatorError`` (reason
``unsupported-profile``), never served half-faithfully.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.domain.profile import DEFAULT_PROFILE, BootPaths, DeviceProfile
from orchestrator.emulator.scripts import CMS_INSTALL, REBOOT
from orchestrator.errors import EmulatorError

CORE_INSTALLER = "usr/sbin/.emulated-install"  # the emulated installer, out of the profile's sight
_DEVICE_PATHS = {"monitor": "opt/cms/bin/monitor", "update": "opt/cms/bin/update"}
_EMULATED_STATUS = {"patient": ("connected", "none"), "alarm": ("active", "none")}
_SHIPPED_PROGRAMS = ("usr/sbin/cms-install", "usr/sbin/cms-status", "usr/sbin/cms-service")


@dataclass(frozen=True)
class ProfileLayout:
    """What to do to a freshly built root: scripts to write, links to make, files to remove."""

    scripts: dict[str, str] = field(default_factory=dict)  # root-relative path -> script text
    links: dict[str, str] = field(default_factory=dict)  # root-relative path -> relative target
    remove: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()  # created (parents first) before the links

    def apply(self, root: Path, owner: tuple[int, int] | None) -> None:
        r = str(root)
        for rel in self.remove:
            os.unlink(f"{r}/{rel}")
        for rel in self.dirs:
            os.makedirs(f"{r}/{rel}", exist_ok=True)
            if owner is not None and rel.startswith("data/"):
                os.chown(f"{r}/{rel}", *owner)
        for rel, text in self.scripts.items():
            os.makedirs(posixpath.dirname(f"{r}/{rel}"), exist_ok=True)
            with open(f"{r}/{rel}", "w") as f:
                f.write(text)
            os.chmod(f"{r}/{rel}", 0o755)
        for rel, target in self.links.items():
            os.makedirs(posixpath.dirname(f"{r}/{rel}"), exist_ok=True)
            os.symlink(target, f"{r}/{rel}")


def _refuse(profile: DeviceProfile, what: str) -> EmulatorError:
    return EmulatorError(f"the emulator cannot serve profile {profile.name!r}: {what}",
                         reason="unsupported-profile")


def _program(profile: DeviceProfile, step: str, default_dir: str) -> str:
    """The root-relative path of the program a step's command runs (a bare name lands in default_dir)."""
    word = shlex.split(profile.commands[step])[0]
    if "/" not in word:
        return f"{default_dir}/{word}"
    if not word.startswith("/") or ".." in word.split("/"):
        raise _refuse(profile, f"commands.{step} runs {word!r}, not a plain absolute path")
    return word.lstrip("/")


def _link(at: str, target: str) -> str:
    """``target`` (root-relative) as a link at ``at``, relative: it resolves inside the monitor's root
    whether read through its chroot or from the host (SFTP)."""
    return posixpath.relpath(target, posixpath.dirname(at) or ".")


def status_script(profile: DeviceProfile) -> str:
    """The profile's status program: the emulated patient/alarm state in the profile's grammar."""
    edits = []
    for role, key in (("patient", profile.status.patient), ("alarm", profile.status.alarm)):
        busy, clear = _EMULATED_STATUS[role]
        edits += [f"-e 's/^{role}={busy}$/{key.key.upper()}={key.busy[0]}/'",
                  f"-e 's/^{role}={clear}$/{key.key.upper()}={key.clear}/'",
                  f"-e 's/^{role}=/{key.key.upper()}=/'"]
    name = shlex.split(profile.commands["clinical_status"])[0]
    return (f"#!/bin/sh\n# {name}: this monitor's clinical state (profile {profile.name}).\n"
            f'[ -e /var/lib/cms/faults/status-fail ] && {{ echo "{posixpath.basename(name)}: cannot read '
            'the clinical state" >&2; exit 1; }\n'
            f"sed {' '.join(edits)} /var/lib/cms/status\n")


def install_script(profile: DeviceProfile) -> str:
    """The profile's installer: the emulated installer, its outcome told by the profile's exit codes."""
    codes = profile.installer.exit_codes
    ok = min(c for c, reason in codes.items() if reason == "ok")
    full = min((c for c, reason in codes.items() if reason == "disk-full"), default=None)
    other = next(c for c in range(1, 256) if c not in codes)
    name = posixpath.basename(shlex.split(profile.commands["install"])[0])
    full_line = (f'    6) echo "{name}: not enough free storage for the image" >&2; exit {full} ;;\n'
                 if full is not None else "")
    return (f"#!/bin/sh\n# {name} [OPTIONS] FILE: apply an upgrade package (profile {profile.name}); it "
            "never reboots by itself.\n"
            f"# Exit codes: {', '.join(f'{c} {r}' for c, r in sorted(codes.items()))}, {other} any other "
            "failure.\n"
            'PKG=""; for a in "$@"; do PKG="$a"; done\n'
            f'[ -n "$PKG" ] || {{ echo "usage: {name} [OPTIONS] FILE" >&2; exit {other}; }}\n'
            f'OUT=$(/{CORE_INSTALLER} "$PKG" 2>&1); CODE=$?\n'
            "case $CODE in\n"
            f'    0) echo "{name}: image applied; reboot to activate"; exit {ok} ;;\n'
            f"{full_line}"
            f'    *) echo "{name}: image rejected: ${{OUT#*: }}" >&2; exit {other} ;;\n'
            "esac\n")


def profile_layout(profile: DeviceProfile) -> ProfileLayout:
    """What a root needs to follow ``profile`` (see the module doc); empty for the shipped profile."""
    if profile.name == DEFAULT_PROFILE:
        return ProfileLayout()
    if profile.boot != BootPaths():
        raise _refuse(profile, "its boot identity paths are not the emulated kernel's")
    scripts: dict[str, str] = {}
    links: dict[str, str] = {}
    dirs: list[str] = []
    scripts[_program(profile, "clinical_status", "usr/bin")] = status_script(profile)
    scripts[_program(profile, "install", "usr/sbin")] = install_script(profile)
    scripts[CORE_INSTALLER] = CMS_INSTALL
    reboot = _program(profile, "reboot", "sbin")
    if reboot != "sbin/reboot":
        scripts[reboot] = REBOOT
    firmware = shlex.split(profile.commands["firmware_read"])
    if len(firmware) != 2 or firmware[0] != "cat" or not firmware[1].startswith("/"):
        raise _refuse(profile, "commands.firmware_read is not `cat /PATH`")
    if firmware[1] != "/etc/firmware_version":
        links[firmware[1].lstrip("/")] = _link(firmware[1].lstrip("/"), "etc/firmware_version")
    for role, path in profile.binaries.items():
        if path.lstrip("/") != _DEVICE_PATHS[role]:
            links[path.lstrip("/")] = _link(path.lstrip("/"), _DEVICE_PATHS[role])
    upload = profile.upload_dir.strip("/").split("/")
    if upload[0] != "data":  # the profile's partition is the emulated data partition
        links[upload[0]] = "data"
        dirs += ["/".join(["data", *upload[1:i + 1]]) for i in range(1, len(upload))]
    wants_service = any(t is not None for t in profile.triggers.values())
    for trigger, command in profile.triggers.items():
        if command is not None and command != f"cms-service trigger {trigger}":
            raise _refuse(profile, f"triggers.{trigger} is not `cms-service trigger {trigger}`")
    clash = set(scripts) & set(links)
    if clash:
        raise _refuse(profile, f"{', '.join(sorted(clash))} would be both a program and a link")
    remove = tuple(p for p in _SHIPPED_PROGRAMS if p not in scripts
                   and (p != "usr/sbin/cms-service" or not wants_service))
    return ProfileLayout(scripts=scripts, links=links, remove=remove, dirs=tuple(dirs))
