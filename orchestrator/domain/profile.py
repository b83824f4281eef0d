"""A device profile: one family of monitors' service procedure as a value (what cmspatch runs, and how
it reads the answers), validated from the YAML a hospital receives from the vendor.

Pure: ``parse_profile`` takes the strict loader's ``Loaded`` (value and positions) and returns a frozen
``DeviceProfile`` or raises a located ``StrictLoadError`` (reason ``bad-profile``) naming the file and
line to fix. ``adapters.profile_file`` reads the file; ``orchestrator/profiles/`` holds the shipped ones.

Rules a profile cannot break:

- **Templates take only their step's placeholders** (``{path}`` for hash/remove/install, ``{dir}`` for
  free space, none elsewhere), and ``fill`` puts each value in through ``shlex.quote``: whatever the
  package is called, it reaches the monitor's shell as one word.
- **Paths are plain absolute paths** (letters, digits, ``._-/``): a path is pasted into the batched
  check script and the lease commands, so a shell metacharacter there is refused, not quoted.
- **The status grammar says what "clear" is**, and anything else is "do not disturb"
  (``domain.clinical`` applies it; the grammar only names keys and values).
- **A trigger is a command or null**: null means a technician at the bed exercises it.

- **A profile declares the device checks it can run** (``device_checks``, names of
  ``checks.ON_DEVICE``): a check it does not declare is never run on the monitor, and every CVE that
  requires it stays inconclusive with that reason (``checks.not_declared``), never fixed. An unknown or
  network check's name is refused with its line.

Deliberately left out: per-model overrides, and any conditional logic (a profile is data; a procedure
that needs code is a new adapter, not a cleverer profile).
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.domain.boot import identity_command
from orchestrator.domain.checks import CATALOGUE, ON_DEVICE
from orchestrator.domain.clinical import DEFAULT_GRAMMAR, StatusGrammar, StatusKey
from orchestrator.domain.strict_load import MIB, Limits, Loaded, Path_, StrictLoadError

PROFILE_LIMITS = Limits("device profile", MIB // 4, max_nodes=5_000, max_aliases=0)
DEFAULT_PROFILE = "emulated-cms-service-shell"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
SAFE_PATH_RE = re.compile(r"/[A-Za-z0-9._/-]*")
TRIGGER_NAMES: tuple[str, ...] = ("menu-update", "boot-key")  # checks.TRIGGERS, in the same order
# Each step and the placeholders its template may use.
STEPS: dict[str, tuple[str, ...]] = {
    "clinical_status": (),
    "firmware_read": (),
    "hash_file": ("path",),
    "free_space": ("dir",),
    "remove_file": ("path",),
    "install": ("path",),
    "reboot": (),
}
READ_ONLY_STEPS: tuple[str, ...] = ("clinical_status", "firmware_read", "free_space")
INSTALL_REASONS = ("ok", "disk-full", "installer-failed")
_TOP = ("name", "description", "commands", "triggers", "status", "installer", "paths", "boot_identity",
        "udp_probe_ports", "timeouts", "vitals_tolerances", "device_checks", "hands_on")
# What a hands-on install step may name: the package file, where it sits on the USB stick, the upload
# directory, and this profile's own hash and install commands for the file there (a local console).
HANDS_ON_PLACEHOLDERS = ("name", "usb_path", "upload_dir", "hash", "install")
# What a vitals check against a patient simulator may differ by (domain.vitals: hr bpm, spo2 %, sys/dia
# mmHg, temp degC, resp rpm); a profile states the vendor's accuracy, else domain.vitals' defaults apply.
VITALS_PARAMETERS = ("hr", "spo2", "sys", "dia", "temp", "resp")


@dataclass(frozen=True)
class Installer:
    """The installer's exit codes -> outcome (``ok`` or a failure reason); words in its message that
    name a reason whatever the code (today: "space" means disk full)."""

    exit_codes: Mapping[int, str] = field(default_factory=lambda: {0: "ok", 6: "disk-full"})
    other_exit: str = "installer-failed"
    message_words: Mapping[str, str] = field(default_factory=lambda: {"space": "disk-full"})

    def outcome(self, exit_status: int | None, message: str) -> str:
        """``ok`` or the failure reason for one run of the install command."""
        by_code = self.exit_codes.get(exit_status, self.other_exit) if exit_status is not None \
            else self.other_exit
        if by_code == "ok":
            return "ok"
        lowered = message.lower()
        for word, reason in self.message_words.items():
            if word in lowered:
                return reason
        return by_code


@dataclass(frozen=True)
class BootPaths:
    """Where the boot identity is read (``domain.boot``): boot id, uptime, and the tmpfs marker file."""

    boot_id: str = "/proc/sys/kernel/random/boot_id"
    uptime: str = "/proc/uptime"
    marker: str = "/tmp/.cmspatch-boot-marker"


@dataclass(frozen=True)
class Timeouts:
    """Seconds the device needs; None leaves the campaign's own value (``CampaignPolicy``)."""

    command: float | None = None
    install: float | None = None
    reboot: float | None = None


@dataclass(frozen=True)
class HandsOn:
    """What a work order tells the technician at a unit on the hands-on path (cmspatch has no service
    access to it): where the file goes on the USB stick, how to install it, and where the running version
    is read afterwards. The defaults are the words cmspatch used before profiles said them."""

    usb_path: str = "{name}"  # on the stick; {name}: the package file's name
    install_steps: tuple[str, ...] = ("Copy the file to a clean USB stick as {usb_path} and install it from "
                                      "the monitor's service menu.",)
    about_screen: str = "the system information screen"
    version_label: str = "the version"

    def usb_path_for(self, package_name: str) -> str:
        return self.usb_path.replace("{name}", package_name)

    def steps_for(self, profile: DeviceProfile, package_name: str) -> tuple[str, ...]:
        """The install steps with their placeholders filled (text for a person: values as they are, the
        commands as the profile runs them, quoted)."""
        on_device = f"{profile.upload_dir}/{package_name}"
        values = {"name": package_name, "usb_path": self.usb_path_for(package_name),
                  "upload_dir": profile.upload_dir, "hash": profile.command("hash_file", path=on_device),
                  "install": profile.command("install", path=on_device)}
        return tuple(_fill_text(step, values) for step in self.install_steps)

    def version_step(self, target_version: str) -> str:
        return (f"After the monitor restarts, check {self.version_label} in {self.about_screen} reads "
                f"{target_version}.")


def _fill_text(template: str, values: Mapping[str, str]) -> str:
    out: list[str] = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            out.append(values[name])
    return "".join(out)


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    commands: Mapping[str, str]  # step -> template (see STEPS)
    triggers: Mapping[str, str | None]  # trigger -> command, None = ask the technician
    status: StatusGrammar = DEFAULT_GRAMMAR
    installer: Installer = field(default_factory=Installer)
    upload_dir: str = "/data/upgrade"
    binaries: Mapping[str, str] = field(default_factory=lambda: {"monitor": "/opt/cms/bin/monitor",
                                                                 "update": "/opt/cms/bin/update"})
    boot: BootPaths = field(default_factory=BootPaths)
    udp_probe_ports: tuple[int, ...] = (51000,)
    timeouts: Timeouts = field(default_factory=Timeouts)
    description: str = ""
    source: str = ""  # the file it was read from
    vitals_tolerances: Mapping[str, float] = field(default_factory=dict)  # parameter -> +- (domain.vitals)
    device_checks: frozenset[str] = frozenset(ON_DEVICE)  # the device checks it can run (module doc)
    hands_on: HandsOn = field(default_factory=HandsOn)  # what a hands-on work order says

    def command(self, step: str, **values: str) -> str:
        """The step's command with ``values`` filled in, each ``shlex.quote``d."""
        return fill(self.commands[step], STEPS[step], **values)

    def trigger_command(self, trigger: str) -> str | None:
        return self.triggers.get(trigger)

    def identity_command(self, marker: str = "") -> str:
        """The boot identity read (``domain.boot``) at this profile's paths."""
        return identity_command(marker, boot_id=self.boot.boot_id, uptime=self.boot.uptime,
                                marker_path=self.boot.marker)

    def read_only_commands(self, upload_dir: str | None = None) -> dict[str, str]:
        """What ``cmspatch profile check`` may run: nothing here changes the monitor (the boot identity
        is read without writing the marker)."""
        out = {step: self.command(step) for step in READ_ONLY_STEPS if step != "free_space"}
        out["free_space"] = self.command("free_space", dir=upload_dir or self.upload_dir)
        out["boot_identity"] = self.identity_command()
        return out


def fill(template: str, allowed: tuple[str, ...], **values: str) -> str:
    """``template`` with each ``{name}`` replaced by ``shlex.quote(values[name])``; only ``allowed``."""
    out: list[str] = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            raise ValueError(f"placeholder {{{name}}} is not one of {allowed}")
        out.append(shlex.quote(values[name]))
    return "".join(out)


def template_problem(template: str, allowed: tuple[str, ...]) -> str | None:
    """Why ``template`` is not a usable command template, or None."""
    if not template.strip():
        return "is empty"
    if any(c in template for c in "\n\r\x00"):
        return "must be one line"
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"is not a valid template ({exc}; write a literal brace as {{{{ or }}}})"
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in allowed:
            known = ", ".join("{" + a + "}" for a in allowed) or "none"
            return f"uses the unknown placeholder {{{name}}} (this step takes {known})"
        if spec or conversion:
            return f"placeholder {{{name}}} takes no format or conversion"
    return None


class _Reader:
    def __init__(self, loaded: Loaded, name: str) -> None:
        self.loaded, self.name = loaded, name

    def refuse(self, path: Path_, detail: str) -> StrictLoadError:
        line = self.loaded.line_of(path)
        while not line and path:
            path = path[:-1]
            line = self.loaded.line_of(path)
        return StrictLoadError(self.name, line, 0, detail, "bad-profile")

    def mapping(self, value: Any, path: Path_, keys: tuple[str, ...], required: tuple[str, ...] = ()
                ) -> dict[str, Any]:
        where = ".".join(str(p) for p in path) or "the profile"
        if not isinstance(value, dict):
            raise self.refuse(path, f"{where} must be a mapping")
        for key in value:
            if key not in keys:
                raise self.refuse((*path, key), f"unknown key {key!r} in {where} (known: {', '.join(keys)})")
        for key in required:
            if key not in value:
                raise self.refuse(path, f"{where} has no {key!r}")
        return value

    def text(self, value: Any, path: Path_) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.refuse(path, f"{'.'.join(map(str, path))} must be non-empty text")
        return value.strip()

    def safe_path(self, value: Any, path: Path_) -> str:
        text = self.text(value, path)
        if not SAFE_PATH_RE.fullmatch(text) or "/../" in f"{text}/":
            raise self.refuse(path, f"{'.'.join(map(str, path))} {text!r} must be an absolute path of "
                              "letters, digits and . _ - / only (no shell metacharacters, no ..)")
        return text

    def seconds(self, value: Any, path: Path_) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86400:
            raise self.refuse(path, f"{'.'.join(map(str, path))} must be seconds (0 to 86400) or null")
        return float(value)


def parse_profile(loaded: Loaded, name: str) -> DeviceProfile:
    """The profile in ``loaded`` (read from file ``name``), validated; ``StrictLoadError`` otherwise."""
    r = _Reader(loaded, name)
    top = r.mapping(loaded.value, (), _TOP, ("name", "commands", "triggers", "status", "device_checks"))
    profile_name = r.text(top["name"], ("name",))
    if not NAME_RE.fullmatch(profile_name):
        raise r.refuse(("name",), f"name {profile_name!r} must be lowercase letters, digits and -")
    commands_in = r.mapping(top["commands"], ("commands",), tuple(STEPS), tuple(STEPS))
    commands: dict[str, str] = {}
    for step, allowed in STEPS.items():
        template = r.text(commands_in[step], ("commands", step))
        if (why := template_problem(template, allowed)) is not None:
            raise r.refuse(("commands", step), f"commands.{step} {why}")
        commands[step] = template
    triggers_in = r.mapping(top["triggers"], ("triggers",), TRIGGER_NAMES, TRIGGER_NAMES)
    triggers: dict[str, str | None] = {}
    for trigger in TRIGGER_NAMES:
        value = triggers_in[trigger]
        if value is None:
            triggers[trigger] = None
            continue
        template = r.text(value, ("triggers", trigger))
        if (why := template_problem(template, ())) is not None:
            raise r.refuse(("triggers", trigger), f"triggers.{trigger} {why}")
        triggers[trigger] = template
    status = _status(r, top["status"])
    installer = _installer(r, top.get("installer"))
    paths = r.mapping(top.get("paths") or {}, ("paths",), ("upload_dir", "binaries"))
    upload_dir = r.safe_path(paths.get("upload_dir", "/data/upgrade"), ("paths", "upload_dir"))
    binaries_in = paths.get("binaries", {"monitor": "/opt/cms/bin/monitor", "update": "/opt/cms/bin/update"})
    binaries = {b: r.safe_path(v, ("paths", "binaries", b)) for b, v in
                r.mapping(binaries_in, ("paths", "binaries"), ("monitor", "update"),
                          ("monitor", "update")).items()}
    boot_in = r.mapping(top.get("boot_identity") or {}, ("boot_identity",), ("boot_id", "uptime", "marker"))
    defaults = BootPaths()
    boot = BootPaths(**{k: r.safe_path(boot_in.get(k, getattr(defaults, k)), ("boot_identity", k))
                        for k in ("boot_id", "uptime", "marker")})
    ports_in = top.get("udp_probe_ports", [51000])
    if ports_in is None:
        ports_in = []
    if not isinstance(ports_in, list) or any(isinstance(p, bool) or not isinstance(p, int)
                                             or not 1 <= p <= 65535 for p in ports_in):
        raise r.refuse(("udp_probe_ports",), "udp_probe_ports must be a list of port numbers (1-65535)")
    times = r.mapping(top.get("timeouts") or {}, ("timeouts",), ("command", "install", "reboot"))
    timeouts = Timeouts(**{k: r.seconds(times.get(k), ("timeouts", k)) for k in ("command", "install",
                                                                                   "reboot")})
    description = top.get("description") or ""
    if not isinstance(description, str):
        raise r.refuse(("description",), "description must be text")
    tolerances_in = r.mapping(top.get("vitals_tolerances") or {}, ("vitals_tolerances",), VITALS_PARAMETERS)
    tolerances: dict[str, float] = {}
    for parameter, value in tolerances_in.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise r.refuse(("vitals_tolerances", parameter),
                           f"vitals_tolerances.{parameter} must be a number from 0 to 100 (in its unit)")
        tolerances[parameter] = float(value)
    return DeviceProfile(name=profile_name, commands=commands, triggers=triggers, status=status,
                         installer=installer, upload_dir=upload_dir, binaries=binaries, boot=boot,
                         udp_probe_ports=tuple(ports_in), timeouts=timeouts, description=description.strip(),
                         source=name, vitals_tolerances=tolerances,
                         device_checks=_device_checks(r, top["device_checks"]),
                         hands_on=_hands_on(r, top.get("hands_on")))


def _hands_on(r: _Reader, value: Any) -> HandsOn:
    if value is None:
        return HandsOn()
    path: Path_ = ("hands_on",)
    top = r.mapping(value, path, ("usb_path", "install_steps", "about_screen", "version_label"))
    defaults = HandsOn()

    def line(allowed: tuple[str, ...], where: Path_, text: Any) -> str:
        out = r.text(text, where)
        if (why := template_problem(out, allowed)) is not None:
            raise r.refuse(where, f"{'.'.join(map(str, where))} {why}")
        return out

    usb = line(("name",), (*path, "usb_path"), top.get("usb_path", defaults.usb_path))
    if "{name}" not in usb or ".." in usb.split("/") or not re.fullmatch(r"[A-Za-z0-9._ /{}-]+", usb):
        raise r.refuse((*path, "usb_path"), f"hands_on.usb_path {usb!r} must be a path on the stick that "
                       "holds {name} (letters, digits, . _ - / and spaces; no ..)")
    steps_in = top.get("install_steps", list(defaults.install_steps))
    if not isinstance(steps_in, list) or not steps_in:
        raise r.refuse((*path, "install_steps"), "hands_on.install_steps must list the technician's steps")
    steps = tuple(line(HANDS_ON_PLACEHOLDERS, (*path, "install_steps", i), step)
                  for i, step in enumerate(steps_in))
    about = line((), (*path, "about_screen"), top.get("about_screen", defaults.about_screen))
    label = line((), (*path, "version_label"),
                 top.get("version_label", defaults.version_label))
    return HandsOn(usb_path=usb, install_steps=steps, about_screen=about, version_label=label)


def _device_checks(r: _Reader, value: Any) -> frozenset[str]:
    path: Path_ = ("device_checks",)
    if not isinstance(value, list):
        raise r.refuse(path, "device_checks must list the device checks this unit can run "
                       f"(of: {', '.join(ON_DEVICE)})")
    seen: set[str] = set()
    for i, item in enumerate(value):
        check = r.text(item, (*path, i))
        if check in seen:
            raise r.refuse((*path, i), f"device_checks names {check!r} twice")
        if check not in ON_DEVICE:
            what = ("is a network check (the controller's: the sinkhole or the UDP probe), not the device's"
                    if check in CATALOGUE else f"is no device check (known: {', '.join(ON_DEVICE)})")
            raise r.refuse((*path, i), f"device_checks: {check!r} {what}")
        seen.add(check)
    return frozenset(seen)


def _status(r: _Reader, value: Any) -> StatusGrammar:
    top = r.mapping(value, ("status",), ("patient", "alarm"), ("patient", "alarm"))
    keys: dict[str, StatusKey] = {}
    for role in ("patient", "alarm"):
        path: Path_ = ("status", role)
        entry = r.mapping(top[role], path, ("key", "clear", "busy"), ("key", "clear", "busy"))
        key = r.text(entry["key"], (*path, "key"))
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise r.refuse((*path, "key"), f"status.{role}.key {key!r} must be a plain name")
        clear = r.text(entry["clear"], (*path, "clear"))
        busy_in = entry["busy"]
        if not isinstance(busy_in, list) or not busy_in:
            raise r.refuse((*path, "busy"), f"status.{role}.busy must list the values that mean {role}")
        busy = tuple(r.text(b, (*path, "busy", i)).lower() for i, b in enumerate(busy_in))
        if clear.lower() in busy:
            raise r.refuse((*path, "clear"), f"status.{role}: {clear!r} cannot be both clear and busy")
        keys[role] = StatusKey(key.lower(), clear.lower(), busy)
    if keys["patient"].key == keys["alarm"].key:
        raise r.refuse(("status", "alarm", "key"), "status.patient and status.alarm read the same key")
    return StatusGrammar(patient=keys["patient"], alarm=keys["alarm"])


def _installer(r: _Reader, value: Any) -> Installer:
    if value is None:
        return Installer()
    top = r.mapping(value, ("installer",), ("exit_codes", "other_exit", "message_words"), ("exit_codes",))
    codes_in = top["exit_codes"]
    if not isinstance(codes_in, dict):
        raise r.refuse(("installer", "exit_codes"), "installer.exit_codes must map exit codes to outcomes")
    codes: dict[int, str] = {}
    for code, outcome in codes_in.items():
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
            raise r.refuse(("installer", "exit_codes", code), f"exit code {code!r} must be 0 to 255")
        codes[code] = _reason(r, outcome, ("installer", "exit_codes", code))
    if "ok" not in codes.values():
        raise r.refuse(("installer", "exit_codes"), "installer.exit_codes names no exit code as ok")
    other = _reason(r, top.get("other_exit", "installer-failed"), ("installer", "other_exit"))
    if other == "ok":
        raise r.refuse(("installer", "other_exit"), "installer.other_exit cannot be ok: an exit code "
                       "nobody listed is not a success")
    words_in = top.get("message_words") or {}
    if not isinstance(words_in, dict):
        raise r.refuse(("installer", "message_words"), "installer.message_words must map words to reasons")
    words = {r.text(w, ("installer", "message_words", w)).lower():
             _reason(r, reason, ("installer", "message_words", w)) for w, reason in words_in.items()}
    if "ok" in words.values():
        raise r.refuse(("installer", "message_words"), "a word in the message cannot make a failure ok")
    return Installer(exit_codes=codes, other_exit=other, message_words=words)


def _reason(r: _Reader, value: Any, path: Path_) -> str:
    if value not in INSTALL_REASONS:
        raise r.refuse(path, f"{value!r} is not one of {', '.join(INSTALL_REASONS)}")
    return str(value)
