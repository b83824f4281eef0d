"""The check catalogue (data) and the pure functions that turn what a check saw into ``Evidence``.

Each check names the CVEs it speaks to and whether a failure is *decisive*: a decisive failure proves
the backdoor is present (the mount string is in the binary, the device tried to mount /pm); a
non-decisive one only stops us calling the CVE fixed (the firmware version is not the package's target,
a binary's hash differs from the manifest). ``verdict_rules`` turns the evidence into verdicts.

Device checks are BusyBox commands (no Python on a monitor) that scan *on the device*: reading a
binary back over SFTP is slow and proves nothing more. The functions here only parse their output;
running them is ``orchestrator.verification``'s job. Every piece of evidence carries the SHA-256 of the
raw output it was decided on, so the record can be matched against a later re-run.

Deliberately left out: judging eth0 on its own (the January 2025 "fix" turned eth0 off and the hidden
code turned it back on, so only a down-to-up change after a trigger counts), and any patient data.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.domain.attribution import host_of, parse_ifconfig
from orchestrator.domain.clinical import DEFAULT_GRAMMAR, StatusGrammar, may_disturb
from orchestrator.domain.indicators import (
    CMS_TCP_PORTS,
    HL7_TCP_PORT,
    INDICATOR_ADDRESS_PATTERN,
    INDICATOR_NETWORK,
    KNOWN_VULNERABLE_MONITOR_SHA256,
    MOUNT_PATTERN,
    NFS_PORT,
    PORTMAPPER_PORT,
    Cve,
)
from orchestrator.domain.verdicts import Evidence

MONITOR_BIN = "/opt/cms/bin/monitor"
UPDATE_BIN = "/opt/cms/bin/update"
# The YARA regex in POSIX ERE (BusyBox grep has no \d); matches are re-checked with MOUNT_PATTERN.
MOUNT_ERE = r"mount -o nolock -t nfs [0-9]{1,3}(\.[0-9]{1,3}){3}:/pm /mnt"
# One character of context either side so INDICATOR_ADDRESS_PATTERN's look-arounds still apply.
ADDRESS_ERE = r"(^|[^0-9.])202\.114\.4\.[0-9]{1,3}"
# Firmware versions CISA names as affected (three of the four CVEs cover every version anyway).
KNOWN_AFFECTED_VERSIONS: tuple[str, ...] = (
    "smart3250-2.6.27-wlan2.1.7.cramfs",
    "CMS7.820.075.08/0.74(0.75)",
    "CMS7.820.120.01/0.93(0.95)",
)
TRIGGERS: tuple[str, ...] = ("menu-update", "boot-key")
TRIGGER_CVE = {"menu-update": Cve.MONITOR_NFS, "boot-key": Cve.UPDATE_NFS}
# What a technician is asked to do at a real unit (no service command presses these keys for us). Both
# are harmless on a fixed unit and, on a vulnerable one, are exactly what makes it reach for the share.
TRIGGER_INSTRUCTIONS = {
    "menu-update": "On the monitor: open the main menu and start a software update (Menu > Maintenance > "
                   "Update), then cancel it once the update screen appears.",
    "boot-key": "Restart the monitor and hold the 'C' key while it boots, until the start screen shows.",
}
DEFAULT_UDP_PROBE_PORTS: tuple[int, ...] = (51000,)  # the emulator's; the real port is unpublished
ALLOWED_UDP_PORTS: tuple[int, ...] = (68,)  # a DHCP client is not the CVE-2024-12248 listener

_ALL = (Cve.UDP_RCE, Cve.MONITOR_NFS, Cve.PHI_LEAK, Cve.UPDATE_NFS)
_NFS = (Cve.MONITOR_NFS, Cve.UPDATE_NFS)


@dataclass(frozen=True)
class CheckSpec:
    id: str
    cves: tuple[Cve, ...]
    source: str  # "device" | "network"
    decisive: bool  # a failure proves the backdoor is present
    description: str
    command: str | None = None  # BusyBox command, for device checks


def _spec(id: str, cves: tuple[Cve, ...], source: str, decisive: bool, description: str,
          command: str | None = None) -> CheckSpec:
    return CheckSpec(id, cves, source, decisive, description, command)


CATALOGUE: dict[str, CheckSpec] = {s.id: s for s in (
    _spec("firmware-version", _ALL, "device", False, "installed version is the package's target",
          "cat /etc/firmware_version"),
    _spec("monitor-mount-string", (Cve.MONITOR_NFS,), "device", True,
          "monitor binary carries no hidden NFS mount command (YARA regex)",
          f"grep -o -E '{MOUNT_ERE}' {MONITOR_BIN}"),
    _spec("update-mount-string", (Cve.UPDATE_NFS,), "device", True,
          "update binary carries no hidden NFS mount command (YARA regex)",
          f"grep -o -E '{MOUNT_ERE}' {UPDATE_BIN}"),
    _spec("monitor-indicator-address", (Cve.PHI_LEAK,), "device", True,
          "monitor binary carries no 202.114.4.0/24 address", f"grep -o -E '{ADDRESS_ERE}' {MONITOR_BIN}"),
    _spec("update-indicator-address", (Cve.PHI_LEAK,), "device", True,
          "update binary carries no 202.114.4.0/24 address", f"grep -o -E '{ADDRESS_ERE}' {UPDATE_BIN}"),
    _spec("binary-hashes", _NFS, "device", False,
          "binaries' SHA-256 match the manifest and are not the known vulnerable build",
          f"sha256sum {MONITOR_BIN} {UPDATE_BIN}"),
    _spec("nfs-mount", _NFS, "device", True, "no NFS mount in /proc/mounts", "cat /proc/mounts"),
    _spec("indicator-route", (*_NFS, Cve.PHI_LEAK), "device", True,
          "no route towards 202.114.4.0/24", "cat /proc/net/route"),
    _spec("indicator-socket", (*_NFS, Cve.PHI_LEAK), "device", True,
          "no socket to 202.114.4.0/24", "cat /proc/net/tcp /proc/net/udp"),
    _spec("eth0-state", _NFS, "device", False, "eth0 state, recorded for comparison after triggers",
          "cat /sys/class/net/eth0/operstate"),
    _spec("patient-status", (Cve.PHI_LEAK,), "device", False,
          "whether a patient is connected (network silence means less without one)", "cms-status"),
    _spec("interface-identity", (*_NFS, Cve.PHI_LEAK), "device", False,
          "the addresses and MAC the monitor reports for itself (to attribute the network checks' contacts)",
          "ifconfig -a"),
    _spec("udp-listener", (Cve.UDP_RCE,), "device", True, "no unexpected UDP listener in /proc/net/udp",
          "cat /proc/net/udp"),
    _spec("eth0-after-menu-update", (Cve.MONITOR_NFS,), "device", True,
          "the menu-update trigger does not bring a disabled eth0 up", "cat /sys/class/net/eth0/operstate"),
    _spec("eth0-after-boot-key", (Cve.UPDATE_NFS,), "device", True,
          "the boot-key trigger does not bring a disabled eth0 up", "cat /sys/class/net/eth0/operstate"),
    _spec("nfs-mount-after-menu-update", (Cve.MONITOR_NFS,), "device", True,
          "no NFS mount appears after the menu-update trigger", "cat /proc/mounts"),
    _spec("nfs-mount-after-boot-key", (Cve.UPDATE_NFS,), "device", True,
          "no NFS mount appears after the boot-key trigger", "cat /proc/mounts"),
    _spec("udp-probe", (Cve.UDP_RCE,), "network", True, "no answer to a benign UDP probe of the monitor"),
    _spec("sinkhole-after-menu-update", (Cve.MONITOR_NFS,), "network", True,
          "no portmapper/MOUNT/NFS contact to .119 in the window after the menu-update trigger"),
    _spec("sinkhole-after-boot-key", (Cve.UPDATE_NFS,), "network", True,
          "no portmapper/MOUNT/NFS contact to .119 in the window after the boot-key trigger"),
    _spec("sinkhole-nfs", _NFS, "network", True,
          "no portmapper/MOUNT/NFS contact to .119 outside a trigger (cannot tell which binary)"),
    _spec("sinkhole-window", (Cve.PHI_LEAK,), "network", True,
          "no telemetry, HL7 or other contact to 202.114.4.0/24 during the observation window"),
    # The bench (hands-on units, ``domain.bench``): what the network-only proof rests on besides silence.
    _spec("bench-watch", _ALL, "network", False,
          "the unit was watched at the bench for the whole observation window"),
    _spec("bench-patient-simulator", (*_NFS, Cve.PHI_LEAK), "technician", False,
          "a patient simulator was attached, as the technician confirmed (the leak needs a patient)"),
    _spec("bench-silence", (*_NFS, Cve.PHI_LEAK), "pcap", False,
          "a fix that removes networking: the unit sent nothing at all on the bench port"),
)}


# The checks a device profile may declare it can run on the device (its ``device_checks``). The network
# checks are the controller's (sinkhole, UDP probe) and ask nothing of the device's procedure.
ON_DEVICE: tuple[str, ...] = tuple(c for c, s in CATALOGUE.items() if s.source == "device")


def device_commands(status: str, firmware: str, binaries: Mapping[str, str],
                    declared: Iterable[str] = ON_DEVICE) -> dict[str, str]:
    """Each device check's command for one device profile (its status and firmware commands, its
    binaries' paths); for the shipped profile, exactly the catalogue's. Paths are plain (the profile
    refuses shell metacharacters in them), so they are pasted in as the catalogue does. Only the checks
    the profile ``declared`` get a command: the others are never run (``not_declared``)."""
    monitor, update = binaries["monitor"], binaries["update"]
    out = {c: s.command for c, s in CATALOGUE.items() if s.command is not None}
    out.update({
        "firmware-version": firmware,
        "monitor-mount-string": f"grep -o -E '{MOUNT_ERE}' {monitor}",
        "update-mount-string": f"grep -o -E '{MOUNT_ERE}' {update}",
        "monitor-indicator-address": f"grep -o -E '{ADDRESS_ERE}' {monitor}",
        "update-indicator-address": f"grep -o -E '{ADDRESS_ERE}' {update}",
        "binary-hashes": f"sha256sum {monitor} {update}",
        "patient-status": status,
    })
    keep = set(declared)
    return {check: command for check, command in out.items() if check in keep}


def expected_at(expected_files: Mapping[str, str] | None, binaries: Mapping[str, str]
                ) -> dict[str, str] | None:
    """The package's {installed path: SHA-256} (``package_expectations`` names the shipped paths) moved
    to where this device profile installs the two binaries, so ``binary-hashes`` compares like with like."""
    if expected_files is None:
        return None
    roles = {MONITOR_BIN: "monitor", UPDATE_BIN: "update"}
    return {binaries[roles[path]] if path in roles else path: h for path, h in expected_files.items()}


def cves_of(evidence: Evidence) -> tuple[Cve, ...]:
    spec = CATALOGUE.get(evidence.check)
    return spec.cves if spec else ()


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8") if isinstance(part, str) else part)
        h.update(b"\x00")
    return h.hexdigest()


def _evidence(check: str, at: str, outcome: str, summary: str, raw: bytes,
              details: Mapping[str, object] | None = None) -> Evidence:
    spec = CATALOGUE[check]
    base: dict[str, object] = {"cves": [c.value for c in spec.cves]}
    if spec.command:
        base["command"] = spec.command
    base.update(details or {})
    return Evidence(check=check, source=spec.source, observed_at=at, outcome=outcome, summary=summary,
                    sha256=digest(spec.command or check, raw), details=base)


def not_run(check: str, at: str, why: str) -> Evidence:
    """A check that could not run: never counts as a pass."""
    return _evidence(check, at, "error", f"not checked: {why}", b"", {"error": why})


def not_declared(check: str, at: str, profile: str) -> Evidence:
    """A device check the monitor's profile does not say it can run: not run, and never a pass (every
    CVE that requires it stays inconclusive, with this reason)."""
    why = f"the device profile {profile} does not declare it"
    return _evidence(check, at, "error", f"not checked: {why}", b"", {"error": why, "undeclared": True})


def command_error(check: str, at: str, exit_status: int, stderr: bytes) -> Evidence:
    message = stderr.decode("utf-8", "replace").strip()[:200]
    return _evidence(check, at, "error", f"command failed (exit {exit_status}): {message or 'no message'}",
                     stderr, {"exit_status": exit_status})


# --- parsers of device output -------------------------------------------------------------------

def firmware_version(out: bytes, at: str, expected: str | None) -> Evidence:
    version = out.decode("utf-8", "replace").strip().splitlines()[0].strip() if out.strip() else ""
    details = {"version": version, "expected": expected, "known_affected": version in KNOWN_AFFECTED_VERSIONS}
    if not version:
        return _evidence("firmware-version", at, "error", "firmware version file is empty", out, details)
    if expected is None:
        return _evidence("firmware-version", at, "pass",
                         f"firmware {version} (no target version to compare against)", out, details)
    if version != expected:
        return _evidence("firmware-version", at, "fail", f"firmware {version}, expected {expected}", out,
                         details)
    return _evidence("firmware-version", at, "pass", f"firmware {version} is the target version", out,
                     details)


def binary_pattern(check: str, out: bytes, exit_status: int, at: str,
                   binaries: Mapping[str, str] | None = None) -> Evidence:
    """grep exit 0 = matched, 1 = no match, anything else = could not read the binary. ``binaries``:
    the device profile's paths (default the shipped ones)."""
    paths = binaries or {"monitor": MONITOR_BIN, "update": UPDATE_BIN}
    path = paths["monitor"] if check.startswith("monitor") else paths["update"]
    if exit_status not in (0, 1):
        return command_error(check, at, exit_status, out)
    if check.endswith("mount-string"):
        found = sorted({m.group(0).decode("ascii", "replace") for m in MOUNT_PATTERN.finditer(out)})
        what = "hidden NFS mount command"
    else:
        found = sorted({f"202.114.4.{m.group(1).decode()}" for m in INDICATOR_ADDRESS_PATTERN.finditer(out)})
        what = "indicator address(es)"
    if found:
        return _evidence(check, at, "fail", f"{path} contains {what}: {', '.join(found)}", out,
                         {"path": path, "matches": found})
    return _evidence(check, at, "pass", f"{path} contains no {what}", out, {"path": path, "matches": []})


def binary_hashes(out: bytes, exit_status: int, at: str,
                  expected_files: Mapping[str, str] | None) -> Evidence:
    hashes: dict[str, str] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 64:
            hashes[parts[-1]] = parts[0].lower()
    if exit_status != 0 or not hashes:
        return command_error("binary-hashes", at, exit_status, out)
    problems = [f"{p} is the known vulnerable build" for p, h in hashes.items()
                if h == KNOWN_VULNERABLE_MONITOR_SHA256]
    compared = 0
    for path, want in (expected_files or {}).items():
        got = hashes.get(path)
        if got is not None:
            compared += 1
            if got != want.lower():
                problems.append(f"{path} differs from the manifest")
    details = {"sha256": hashes, "compared_with_manifest": compared}
    if problems:
        return _evidence("binary-hashes", at, "fail", "; ".join(problems), out, details)
    note = f"match the manifest ({compared} compared)" if compared else "recorded (no manifest hashes given)"
    return _evidence("binary-hashes", at, "pass", f"binary hashes {note}", out, details)


def _is_indicator_or_mapped(addr: ipaddress.IPv4Address, mapped_prefix: str | None) -> bool:
    if addr in INDICATOR_NETWORK:
        return True
    return mapped_prefix is not None and addr in ipaddress.IPv4Network(f"{mapped_prefix}.0/24")


def _host_in(text: str, mapped_prefix: str | None) -> bool:
    try:
        return _is_indicator_or_mapped(ipaddress.IPv4Address(text), mapped_prefix)
    except ValueError:
        return False


def nfs_mounts(check: str, out: bytes, at: str, mapped_prefix: str | None) -> Evidence:
    bad: list[str] = []
    for line in out.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        source, mountpoint, fstype = parts[0], parts[1], parts[2]
        host = source.split(":", 1)[0] if ":" in source else ""
        if fstype.startswith("nfs") or source.endswith(":/pm") or _host_in(host, mapped_prefix):
            bad.append(f"{source} on {mountpoint} type {fstype}")
    if bad:
        return _evidence(check, at, "fail", f"NFS mount present: {'; '.join(bad)}", out, {"mounts": bad})
    return _evidence(check, at, "pass", "no NFS mount in /proc/mounts", out, {"mounts": []})


def _hex_le_ip(text: str) -> ipaddress.IPv4Address:
    """/proc/net addresses are the 32-bit value in host (little-endian) order, printed as hex."""
    value = int(text, 16)
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"not a 32-bit address: {text!r}")
    return ipaddress.IPv4Address(value.to_bytes(4, "little"))


def routes(out: bytes, at: str, mapped_prefix: str | None) -> Evidence:
    bad: list[str] = []
    for line in out.decode("utf-8", "replace").splitlines()[1:]:
        parts = line.split()
        if len(parts) < 8:
            continue
        try:
            dest, gateway, mask = _hex_le_ip(parts[1]), _hex_le_ip(parts[2]), _hex_le_ip(parts[7])
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        via_indicator = _is_indicator_or_mapped(gateway, mapped_prefix)
        # A default route (mask 0) reaches everything; only a route *aimed at* the indicator net counts.
        if (int(mask) and net.overlaps(INDICATOR_NETWORK)) or via_indicator:
            bad.append(f"{parts[0]} {net} via {gateway}")
    if bad:
        return _evidence("indicator-route", at, "fail",
                         f"route towards the indicator network: {'; '.join(bad)}", out, {"routes": bad})
    return _evidence("indicator-route", at, "pass", "no route aimed at 202.114.4.0/24", out, {"routes": []})


@dataclass(frozen=True)
class SocketRow:
    local: ipaddress.IPv4Address
    local_port: int
    remote: ipaddress.IPv4Address
    remote_port: int
    state: int


def parse_proc_net(out: bytes) -> list[SocketRow]:
    rows: list[SocketRow] = []
    for line in out.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) < 4 or not parts[0].endswith(":") or not parts[0][:-1].isdigit():
            continue
        try:
            la, lp = parts[1].split(":")
            ra, rp = parts[2].split(":")
            rows.append(SocketRow(_hex_le_ip(la), int(lp, 16), _hex_le_ip(ra), int(rp, 16),
                                  int(parts[3], 16)))
        except ValueError:
            continue
    return rows


def indicator_sockets(out: bytes, at: str, mapped_prefix: str | None) -> Evidence:
    bad = [f"{r.local}:{r.local_port} -> {r.remote}:{r.remote_port} (state {r.state:02X})"
           for r in parse_proc_net(out) if _is_indicator_or_mapped(r.remote, mapped_prefix)]
    if bad:
        return _evidence("indicator-socket", at, "fail", f"socket to the indicator network: {'; '.join(bad)}",
                         out, {"sockets": bad})
    return _evidence("indicator-socket", at, "pass", "no socket to 202.114.4.0/24", out, {"sockets": []})


def udp_listeners(out: bytes, at: str,
                  allowed: Iterable[int] = ALLOWED_UDP_PORTS) -> tuple[Evidence, list[int]]:
    allowed_set = set(allowed)
    ports = sorted({r.local_port for r in parse_proc_net(out)
                    if int(r.remote) == 0 and r.local_port not in allowed_set})
    if ports:
        return _evidence("udp-listener", at, "fail", f"UDP listener on port(s) {', '.join(map(str, ports))}",
                         out, {"ports": ports}), ports
    return _evidence("udp-listener", at, "pass", "no unexpected UDP listener", out, {"ports": []}), ports


def eth0_state(out: bytes, at: str) -> tuple[Evidence, str]:
    state = out.decode("utf-8", "replace").strip() or "unknown"
    return _evidence("eth0-state", at, "pass", f"eth0 is {state}", out, {"state": state}), state


def eth0_after(trigger: str, before: str, out: bytes, at: str) -> Evidence:
    after = out.decode("utf-8", "replace").strip() or "unknown"
    check = f"eth0-after-{trigger}"
    details = {"before": before, "after": after, "trigger": trigger}
    if before not in ("up", "unknown") and after == "up":  # "unknown": the first read failed, no baseline
        return _evidence(check, at, "fail", f"eth0 went from {before} to up after the {trigger} trigger "
                         "(the hidden code re-enables the interface)", out, details)
    return _evidence(check, at, "pass", f"eth0 {before} before, {after} after the {trigger} trigger", out,
                     details)


def patient_status(out: bytes, at: str, grammar: StatusGrammar = DEFAULT_GRAMMAR
                   ) -> tuple[Evidence, bool | None]:
    """The status command's output read by the one status parser (``domain.clinical``) with the
    profile's grammar: the same reading the clinical gate makes, so evidence never says "no patient"
    where the gate said "unknown"."""
    gate = may_disturb(out.decode("utf-8", "replace"), grammar)
    connected = None if gate.status is None else gate.status.patient
    alarm = None if gate.status is None else ("active" if gate.status.alarm else "none")
    summary = {True: "a patient is connected", False: "no patient connected", None: "patient state unknown"}
    return _evidence("patient-status", at, "pass", summary[connected], out,
                     {"patient_connected": connected, "alarm": alarm,
                      "clinical_gate": gate.reason.value if gate.reason else "clear"}), connected


def interface_identity(out: bytes, at: str) -> tuple[Evidence, tuple[tuple[str, ...], str | None]]:
    """BusyBox ``ifconfig -a``: the monitor's own IPv4 addresses and MAC (loopback ``lo`` left out), which
    ``domain.attribution`` adds to the inventory's when it ties a contact to a monitor."""
    addresses, mac = parse_ifconfig(out.decode("utf-8", "replace"))
    summary = (f"reports {', '.join(addresses) or 'no IPv4 address'}"
               + (f", MAC {mac}" if mac else ", no MAC"))
    return (_evidence("interface-identity", at, "pass", summary, out,
                      {"addresses": list(addresses), "mac": mac}), (addresses, mac))


# --- network evidence ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProbeResult:
    port: int
    outcome: str  # "answered" | "refused" | "silent" | "not-run"
    detail: str = ""


def udp_probe(results: Sequence[ProbeResult], at: str, address: str) -> Evidence:
    raw = "\n".join(f"{r.port} {r.outcome} {r.detail}" for r in results).encode()
    details = {"address": address, "ports": {str(r.port): r.outcome for r in results}}
    answered = [r.port for r in results if r.outcome == "answered"]
    if answered:
        return _evidence("udp-probe", at, "fail", f"{address} answered a UDP probe on {answered}", raw,
                         details)
    if not results or any(r.outcome == "not-run" for r in results):
        why = next((r.detail for r in results if r.outcome == "not-run"), "no port to probe")
        return _evidence("udp-probe", at, "error", f"UDP probe not run: {why}", raw, details)
    ports = ", ".join(str(r.port) for r in results)
    return _evidence("udp-probe", at, "pass", f"no answer from {address} on UDP {ports}", raw, details)


def is_nfs_contact(target_port: int, kind: str) -> bool:
    return target_port in (PORTMAPPER_PORT, NFS_PORT) or kind.startswith("rpc")


def is_telemetry_contact(target_port: int, kind: str) -> bool:
    return target_port in (*CMS_TCP_PORTS, HL7_TCP_PORT) or kind in ("cms-telemetry", "hl7")


class ObservationLike(Protocol):
    """What the verdict needs from a ``ports.Observation`` (kept structural: the core imports no ports)."""

    @property
    def at(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def patient_record(self) -> bool: ...
    @property
    def field_names(self) -> tuple[str, ...]: ...


def _target_port(target: str) -> int:
    try:
        return int(target.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 0


MIN_WATCH_SECONDS = 0.1  # a shorter watch cannot show that nothing was sent


def network_window(check: str, observations: Sequence[ObservationLike], at: str, *, since: str, until: str,
                   source: str, watched: float | None = None,
                   unattributed: Sequence[ObservationLike] = ()) -> Evidence:
    """Evidence from what the sinkhole (or a capture) saw from one monitor between ``since`` and ``until``.

    The trigger checks and ``sinkhole-nfs`` count only NFS contact (portmapper 111, 2049, RPC);
    ``sinkhole-window`` counts everything else (telemetry, HL7, any other contact with the /24).
    ``watched``: seconds actually watched (None for a capture); silence over a too-short watch is an error.
    ``unattributed``: contacts in the same window that fit no monitor (``domain.attribution``), of any
    kind. Any of them makes the check "inconclusive", never "pass": it may have been this monitor from an
    address nobody knows. The monitor's own contacts still make it "fail".
    """
    nfs_check = check != "sinkhole-window"
    seen = [o for o in observations
            if is_nfs_contact(_target_port(o.target), o.kind) == nfs_check]
    kinds: dict[str, int] = {}
    for o in seen:
        kinds[o.kind] = kinds.get(o.kind, 0) + 1
    fields = sorted({f for o in seen for f in o.field_names})
    patient = any(o.patient_record for o in seen)
    details: dict[str, object] = {
        "source": source, "since": since, "until": until, "contacts": len(seen), "kinds": kinds,
        "targets": sorted({o.target for o in seen}), "patient_record_seen": patient,
        "patient_field_names": fields, "observation_sha256": [o.sha256 for o in seen[:20]],
    }
    raw = "\n".join(f"{o.at} {o.target} {o.kind} {o.sha256}" for o in seen).encode()
    if not seen and unattributed:
        sources = sorted({host_of(o.source) for o in unattributed})
        why = (f"an unattributed contact to the indicator range was seen in this window from "
               f"{', '.join(sources)}")
        details["unattributed"] = [{"at": o.at, "source": o.source, "target": o.target, "kind": o.kind,
                                    "sha256": o.sha256} for o in unattributed[:20]]
        details["unattributed_contacts"] = len(unattributed)
        details["error"] = why
        material = "\n".join(f"{o.at} {o.source} {o.target} {o.kind} {o.sha256}" for o in unattributed)
        return _evidence(check, at, "inconclusive", f"inconclusive: {why} ({len(unattributed)} contact(s); "
                         f"none attributed to {source})", material.encode(), details)
    if not seen and watched is not None and watched < MIN_WATCH_SECONDS:
        return _evidence(check, at, "error", f"watched only {watched:.2f} s: too short to show that nothing "
                         "was sent", raw, details)
    if not seen:
        what = "NFS/RPC" if nfs_check else "telemetry or other"
        return _evidence(check, at, "pass", f"no {what} contact from {source} to 202.114.4.0/24 "
                         f"between {since} and {until}", raw, details)
    targets = sorted({o.target for o in seen})
    summary = (f"{len(seen)} contact(s) from {source} to {', '.join(targets)}: "
               + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
    if patient:
        summary += f"; patient data seen in clear (fields: {', '.join(fields) or 'unnamed'})"
    return _evidence(check, at, "fail", summary, raw, details)
