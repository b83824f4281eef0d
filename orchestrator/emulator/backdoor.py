"""What the backdoored firmware sends, emulated on loopback: CMS telemetry, HL7, the NFS mount, UDP.

Every socket goes through ``open_to`` which refuses any destination outside 127.0.0.0/8 (the indicator
addresses reach here already mapped by ``IndicatorMap``) and binds the monitor's own loopback address as
source, so a sinkhole can tell monitors apart. Wire formats:

- CMS block: uint16 LE length of the WHOLE block (header included), 0x05, type byte, payload.
  0x3E patient record: ten fields, each one length byte + ASCII (department, bed, name, patient number,
  admission date, height, weight, birth date, blood type, doctor). 0x46 vitals: lead byte + uint16 LE
  values (1 ECG/HR, 2 SpO2/pleth, 3 NIBP, 4 temperature x10, 5 respiration). 0x47 frame end (empty).
- HL7 v2.3.1 ORU^R01 in MLLP (0x0B ... 0x1C 0x0D) with PID and OBX vitals.
- ONC RPC over TCP with record marking: portmapper GETPORT(MOUNT v3, TCP) then MOUNT MNT("/pm").
The patient is synthetic and fixed (``SYNTHETIC_PATIENT_NAME``): tests grep for it, nothing real leaks.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import struct
import time
from dataclasses import dataclass

from orchestrator.domain.indicators import BLOCK_FRAME_END, BLOCK_PATIENT_RECORD, BLOCK_VITALS
from orchestrator.errors import EmulatorError

SYNTHETIC_PATIENT_NAME = "SYNTHETIC-PATIENT-ZZTEST"
CMS_MAGIC = 0x05
PORTMAP_PROG, PORTMAP_VERS, PMAPPROC_GETPORT = 100000, 2, 3
MOUNT_PROG, MOUNT_VERS, MOUNTPROC_MNT = 100005, 3, 1
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


@dataclass(frozen=True)
class Patient:
    department: str
    bed: str
    name: str = SYNTHETIC_PATIENT_NAME
    number: str = "ZZ-000042"
    admitted: str = "2026-11-20"
    height_cm: str = "172"
    weight_kg: str = "68"
    birth_date: str = "1970-01-01"
    blood_type: str = "0+"
    doctor: str = "DR-SYNTHETIC"


def guard_loopback(address: str) -> None:
    """The one check every emulated monitor socket passes: nothing ever leaves the machine."""
    if ipaddress.IPv4Address(address) not in _LOOPBACK:
        raise EmulatorError(f"refusing to open a socket to {address}: emulated monitors only talk to "
                            "loopback",
                            reason="not-loopback")


async def open_to(source: str, address: str, port: int, timeout: float = 2.0
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    guard_loopback(address)
    guard_loopback(source)
    async with asyncio.timeout(timeout):
        return await asyncio.open_connection(address, port, local_addr=(source, 0))


def cms_block(kind: int, payload: bytes) -> bytes:
    return struct.pack("<HBB", len(payload) + 4, CMS_MAGIC, kind) + payload


def patient_record(patient: Patient) -> bytes:
    fields = (patient.department, patient.bed, patient.name, patient.number, patient.admitted,
              patient.height_cm, patient.weight_kg, patient.birth_date, patient.blood_type, patient.doctor)
    payload = b"".join(bytes([len(f.encode())]) + f.encode() for f in fields)
    return cms_block(BLOCK_PATIENT_RECORD, payload)


def vitals(rng: random.Random) -> dict[str, int]:
    return {"hr": rng.randint(64, 82), "spo2": rng.randint(95, 99), "sys": rng.randint(112, 128),
            "dia": rng.randint(70, 84), "temp10": rng.randint(364, 371), "resp": rng.randint(12, 18)}


def cms_frame(patient: Patient | None, values: dict[str, int]) -> bytes:
    blocks = [patient_record(patient)] if patient is not None else []
    blocks += [
        cms_block(BLOCK_VITALS, struct.pack("<BH", 1, values["hr"])),
        cms_block(BLOCK_VITALS, struct.pack("<BHH", 2, values["spo2"], values["hr"])),
        cms_block(BLOCK_VITALS, struct.pack("<BHH", 3, values["sys"], values["dia"])),
        cms_block(BLOCK_VITALS, struct.pack("<BH", 4, values["temp10"])),
        cms_block(BLOCK_VITALS, struct.pack("<BH", 5, values["resp"])),
        cms_block(BLOCK_FRAME_END, b""),
    ]
    return b"".join(blocks)


def hl7_message(patient: Patient, values: dict[str, int], *, model: str, control: int) -> bytes:
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    obx = [("8867-4^Heart rate^LN", values["hr"], "/min"), ("59408-5^SpO2^LN", values["spo2"], "%"),
           ("8480-6^Systolic BP^LN", values["sys"], "mm[Hg]"),
           ("8462-4^Diastolic BP^LN", values["dia"], "mm[Hg]"),
           ("8310-5^Body temperature^LN", f"{values['temp10'] / 10:.1f}", "Cel"),
           ("9279-1^Respiratory rate^LN", values["resp"], "/min")]
    segments = [
        f"MSH|^~\\&|{model}|{patient.department}|CMS|CENTRAL|{stamp}||ORU^R01|{control}|P|2.3.1",
        f"PID|1||{patient.number}||{patient.name}||{patient.birth_date.replace('-', '')}|U",
        f"PV1|1|I|{patient.department}^^{patient.bed}||||{patient.doctor}",
        *(f"OBX|{i}|NM|{code}||{value}|{unit}|||||F" for i, (code, value, unit) in enumerate(obx, 1)),
    ]
    return b"\x0b" + "\r".join(segments).encode() + b"\r\x1c\x0d"


def _rpc_call(xid: int, prog: int, vers: int, proc: int, args: bytes) -> bytes:
    stamp = int(time.time()) & 0xFFFFFFFF
    unix = struct.pack(">I", stamp) + _xdr_string("cms") + struct.pack(">III", 0, 0, 0)
    cred = struct.pack(">II", 1, len(unix)) + unix  # AUTH_UNIX, as BusyBox mount sends it
    body = struct.pack(">IIIIII", xid, 0, 2, prog, vers, proc) + cred + struct.pack(">II", 0, 0) + args
    return struct.pack(">I", 0x80000000 | len(body)) + body


def _xdr_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">I", len(data)) + data + b"\x00" * (-len(data) % 4)


def getport_call(xid: int) -> bytes:
    return _rpc_call(xid, PORTMAP_PROG, PORTMAP_VERS, PMAPPROC_GETPORT,
                     struct.pack(">IIII", MOUNT_PROG, MOUNT_VERS, 6, 0))


def mnt_call(xid: int, path: str = "/pm") -> bytes:
    return _rpc_call(xid, MOUNT_PROG, MOUNT_VERS, MOUNTPROC_MNT, _xdr_string(path))


async def read_rpc_reply(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    """One record-marked RPC reply body, or None if the peer said nothing usable in time."""
    try:
        async with asyncio.timeout(timeout):
            marker = await reader.readexactly(4)
        length = struct.unpack(">I", marker)[0] & 0x7FFFFFFF
        if length > 65536:
            return None
        async with asyncio.timeout(timeout):
            return await reader.readexactly(length)
    except (TimeoutError, asyncio.IncompleteReadError, OSError):
        return None


def getport_result(reply: bytes | None) -> int | None:
    """The port in an accepted GETPORT reply (xid, REPLY, MSG_ACCEPTED, verf, SUCCESS, port)."""
    if reply is None or len(reply) < 24:
        return None
    _xid, mtype, stat = struct.unpack(">III", reply[:12])
    verf_len = struct.unpack(">I", reply[16:20])[0]
    off = 20 + verf_len + (-verf_len % 4)
    if mtype != 1 or stat != 0 or len(reply) < off + 8:
        return None
    accept, port = struct.unpack(">II", reply[off:off + 8])
    return port if accept == 0 else None
