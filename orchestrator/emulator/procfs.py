"""Render the emulated /proc and /sys files from a monitor's emulated network state.

Formats follow Linux 2.6 (what BusyBox ``mount``, ``route`` and ``netstat`` parse). Connections and mounts
show the real indicator addresses (202.114.4.x): on a real monitor that is what a check would find.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

BASE_MOUNTS = (
    "rootfs / rootfs rw 0 0\n"
    "/dev/root / cramfs ro,relatime 0 0\n"
    "proc /proc proc rw,relatime 0 0\n"
    "sysfs /sys sysfs rw,relatime 0 0\n"
    "tmpfs /tmp tmpfs rw,relatime 0 0\n"
    "/dev/mtdblock3 /data jffs2 rw,relatime 0 0\n"
)
NFS_MOUNT = ("{server}:/pm /mnt nfs rw,relatime,vers=3,rsize=4096,wsize=4096,namlen=255,hard,nolock,"
             "proto=tcp,timeo=600,retrans=2,sec=sys,mountaddr={server},mountvers=3,mountproto=tcp,"
             "local_lock=all,addr={server} 0 0\n")
TCP_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
              "inode\n")
UDP_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
              "inode ref pointer drops\n")
ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
LISTEN, ESTABLISHED, UDP_UNCONN = 0x0A, 0x01, 0x07


@dataclass(frozen=True)
class NetView:
    address: str  # the monitor's eth0 address
    ssh_port: int
    eth0_up: bool
    nfs_server: str | None  # indicator address of a mounted /pm, if mounted
    udp_port: int | None  # the CVE-2024-12248 listener, if present
    connections: tuple[tuple[int, str, int], ...]  # (local port, indicator address, remote port)


def _hex(address: str, port: int) -> str:
    packed = ipaddress.IPv4Address(address).packed
    return f"{packed[::-1].hex().upper()}:{port:04X}"


def mounts(view: NetView) -> str:
    return BASE_MOUNTS + (NFS_MOUNT.format(server=view.nfs_server) if view.nfs_server else "")


def route(view: NetView) -> str:
    if not view.eth0_up:
        return ROUTE_HEADER
    net = ipaddress.IPv4Network(f"{view.address}/24", strict=False)
    gateway = str(net.network_address + 254)
    return (ROUTE_HEADER
            + f"eth0\t{_hex(str(net.network_address), 0)[:8]}\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
            + f"eth0\t00000000\t{_hex(gateway, 0)[:8]}\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")


def tcp(view: NetView) -> str:
    lines = [f"{0:4d}: {_hex('0.0.0.0', view.ssh_port)} {_hex('0.0.0.0', 0)} {LISTEN:02X} "
             "00000000:00000000 00:00000000 00000000     0        0 1001"]
    for i, (lport, raddr, rport) in enumerate(view.connections, start=1):
        lines.append(f"{i:4d}: {_hex(view.address, lport)} {_hex(raddr, rport)} {ESTABLISHED:02X} "
                     f"00000000:00000000 00:00000000 00000000     0        0 {2000 + i}")
    return TCP_HEADER + "".join(line + "\n" for line in lines)


def udp(view: NetView) -> str:
    if view.udp_port is None:
        return UDP_HEADER
    return (UDP_HEADER + f"{0:5d}: {_hex('0.0.0.0', view.udp_port)} {_hex('0.0.0.0', 0)} {UDP_UNCONN:02X} "
            "00000000:00000000 00:00000000 00000000     0        0 1002 2 00000000 0\n")


def operstate(view: NetView) -> str:
    return "up\n" if view.eth0_up else "down\n"
