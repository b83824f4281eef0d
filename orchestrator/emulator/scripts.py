"""The device-side commands of an emulated monitor, as BusyBox ``sh`` scripts.

They live in the monitor's root (there is no Python on a monitor). Whatever the emulator must act on
(reboot, triggers, an install's result) is dropped as a file into ``/run/cms/requests/``; the emulator
picks it up when the command finishes (or within ~0.2 s for a long-running shell). What the emulator
owns (patient/alarm state, data partition capacity, injected faults) is in root-owned ``/var/lib/cms``.
``df`` and ``ifconfig`` are scripts because the BusyBox applets would describe the host, not the monitor.
"""

from __future__ import annotations

CMS_INSTALL = r"""#!/bin/sh
# cms-install FILE: apply a vendor upgrade package (.tar.gz) to this monitor.
# Exit codes: 0 installed (reboot to activate), 2 usage, 3 not a valid package, 4 wrong model,
#             5 installer failure, 6 insufficient space on /data.
LOG=/var/log/cms-install.log
REQ=/run/cms/requests
log() { echo "$(date -u '+%Y-%m-%dT%H:%M:%SZ') $*" >> "$LOG"; }
fail() {
    echo "cms-install: $2" >&2
    log "FAILED ($1): $2"
    echo "fail $1 $2" > "$REQ/.install.$$" && mv "$REQ/.install.$$" "$REQ/install.$$"
    [ -n "$WORK" ] && rm -rf "$WORK"
    exit "$1"
}
[ $# -eq 1 ] || { echo "usage: cms-install FILE" >&2; exit 2; }
PKG="$1"
WORK=""
log "start $PKG"
[ -f "$PKG" ] || fail 2 "no such file: $PKG"
[ -e /var/lib/cms/faults/install-fail ] && fail 5 "flash write error at block 0x3a00 (installer aborted)"
# The package is decompressed once, as it is unpacked (a corrupt or truncated stream fails there); only
# the gzip magic is looked at before, so garbage is named as such without reading the whole file.
[ "$(head -c 2 "$PKG" | od -An -tx1 | tr -d ' \n')" = "1f8b" ] || fail 3 "not a gzip archive: $PKG"
SIZE_K=$(( ($(stat -c %s "$PKG") + 1023) / 1024 ))  # not wc -c: BusyBox's reads the whole file
CAP_K=$(( $(cat /var/lib/cms/data_capacity) / 1024 ))
USED_K=$(du -sk /data | cut -f1)
FREE_K=$(( CAP_K - USED_K ))
[ "$FREE_K" -ge "$SIZE_K" ] || fail 6 "insufficient space on /data: need ${SIZE_K}K, ${FREE_K}K free"
WORK=/data/.cms-install.$$
mkdir -p "$WORK" && tar -xzf "$PKG" -C "$WORK" 2>/dev/null || fail 3 "not a valid gzip tar archive: $PKG"
for m in VERSION MODELS bin/monitor bin/update; do
    [ -f "$WORK/$m" ] || fail 3 "package has no $m"
done
MODEL=$(sed -n 's/^MODEL=//p' /etc/device.conf)
grep -qx "$MODEL" "$WORK/MODELS" || fail 4 "package does not apply to model $MODEL"
for b in monitor update; do
    head -c 4 "$WORK/bin/$b" | grep -q ELF || fail 3 "bin/$b is not an ELF binary"
done
VERSION=$(head -n 1 "$WORK/VERSION")
[ -n "$VERSION" ] || fail 3 "empty VERSION"
# Keep the running build so that a failed boot can fall back to it.
mkdir -p /var/backup/cms
cp /opt/cms/bin/monitor /opt/cms/bin/update /etc/firmware_version /etc/network.conf /var/backup/cms/ \
    || fail 5 "cannot back up the running build"
# Never write into an installed file in place: new file, then rename.
for b in monitor update; do
    cp "$WORK/bin/$b" "/opt/cms/bin/.$b.new" && chmod 755 "/opt/cms/bin/.$b.new" \
        && mv -f "/opt/cms/bin/.$b.new" "/opt/cms/bin/$b" || fail 5 "cannot replace $b"
done
if [ -f "$WORK/etc/network.conf" ]; then
    cp "$WORK/etc/network.conf" /etc/.network.conf.new && mv -f /etc/.network.conf.new /etc/network.conf \
        || fail 5 "cannot replace network.conf"
fi
echo "$VERSION" > /etc/.firmware_version.new && mv -f /etc/.firmware_version.new /etc/firmware_version \
    || fail 5 "cannot write firmware_version"
rm -rf "$WORK"
sync
log "installed $VERSION"
echo "ok 0 $VERSION" > "$REQ/.install.$$" && mv "$REQ/.install.$$" "$REQ/install.$$"
echo "cms-install: installed $VERSION; reboot to activate"
exit 0
"""

CMS_STATUS = r"""#!/bin/sh
# cms-status: key=value lines about this monitor (patient, alarm, firmware, network).
. /etc/device.conf
[ -e /var/lib/cms/faults/status-fail ] && { echo "cms-status: cannot read /var/lib/cms/status" >&2; exit 1; }
echo "model=$MODEL"
echo "serial=$SERIAL"
echo "firmware=$(head -n 1 /etc/firmware_version)"
cat /var/lib/cms/status
echo "eth0=$(cat /sys/class/net/eth0/operstate)"
"""

CMS_SERVICE = r"""#!/bin/sh
# cms-service trigger menu-update|boot-key: exercise the firmware-update entry points
# (menu "update" and the "C" key at boot) that CVE-2025-0626 / CVE-2025-1204 abuse.
case "$1:$2" in
    trigger:menu-update|trigger:boot-key)
        : > "/run/cms/requests/trigger-$2.$$"
        echo "cms-service: $2 update started"
        ;;
    *)
        echo "usage: cms-service trigger menu-update|boot-key" >&2
        exit 2
        ;;
esac
"""

REBOOT = r"""#!/bin/sh
# reboot: the monitor drops every session and is unreachable until it has booted again.
: > "/run/cms/requests/reboot.$$"
echo "The system is going down for reboot NOW!"
exit 0
"""

DF = r"""#!/bin/sh
# df: the monitor's own partitions (the BusyBox applet would report the host's).
CAP_K=$(( $(cat /var/lib/cms/data_capacity) / 1024 ))
USED_K=$(du -sk /data | cut -f1)
AVAIL_K=$(( CAP_K - USED_K )); [ "$AVAIL_K" -lt 0 ] && AVAIL_K=0
PCT=100; [ "$CAP_K" -gt 0 ] && PCT=$(( (USED_K * 100 + CAP_K - 1) / CAP_K ))
root=1; data=1
for a in "$@"; do
    case "$a" in -*) continue ;; esac
    case "$(readlink -f "$a" 2>/dev/null || echo "$a")" in  # a profile's upload dir may link to /data
        /data|/data/*) root=0 ;;
        *) data=0 ;;
    esac
done
[ $root = 0 ] && [ $data = 0 ] && { root=1; data=1; }
echo "Filesystem           1K-blocks      Used Available Use% Mounted on"
[ $root = 1 ] && printf '%-20s %10d %9d %9d %3d%% %s\n' /dev/root 30720 28416 2304 93 /
[ $data = 1 ] && printf '%-20s %10d %9d %9d %3d%% %s\n' /dev/mtdblock3 "$CAP_K" "$USED_K" "$AVAIL_K" \
    "$PCT" /data
exit 0
"""

IFCONFIG = r"""#!/bin/sh
# ifconfig: the monitor's emulated interfaces; `ifconfig eth0 up|down` changes the emulated eth0.
if [ "$1" = eth0 ] && { [ "$2" = up ] || [ "$2" = down ]; }; then
    : > "/run/cms/requests/eth0-$2.$$"
    exit 0
fi
. /etc/device.conf
STATE=$(cat /sys/class/net/eth0/operstate)
if [ -z "$1" ] || [ "$1" = -a ] || [ "$1" = eth0 ]; then
    if [ "$STATE" = up ] || [ "$1" = -a ] || [ "$1" = eth0 ]; then
        echo "eth0      Link encap:Ethernet  HWaddr $HWADDR"
        [ "$STATE" = up ] && echo "          inet addr:$IPADDR  Bcast:$BCAST  Mask:255.255.255.0"
        [ "$STATE" = up ] && echo "          UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1" \
                          || echo "          BROADCAST MULTICAST  MTU:1500  Metric:1"
        echo
    fi
fi
if [ -z "$1" ] || [ "$1" = -a ] || [ "$1" = lo ]; then
    echo "lo        Link encap:Local Loopback"
    echo "          inet addr:127.0.0.1  Mask:255.0.0.0"
    echo "          UP LOOPBACK RUNNING  MTU:16436  Metric:1"
    echo
fi
"""

RCS = r"""#!/bin/sh
# /etc/init.d/rcS: boot script of the CMS monitor (documentation of what the emulator does at boot).
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t jffs2 /dev/mtdblock3 /data
. /etc/network.conf
if [ "$ETH0" = enabled ]; then
    ifconfig eth0 up
    udhcpc -i eth0 -b -q
fi
/opt/cms/bin/update --boot &
/opt/cms/bin/monitor &
"""

PROFILE = r"""export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/opt/cms/bin
export PS1='[\u@cms \w]\$ '
"""

# Installed as scripts; every other command is a BusyBox applet.
SCRIPTS: dict[str, str] = {
    "usr/sbin/cms-install": CMS_INSTALL,
    "usr/sbin/cms-status": CMS_STATUS,
    "usr/sbin/cms-service": CMS_SERVICE,
    "sbin/reboot": REBOOT,
    "sbin/halt": REBOOT,
    "sbin/poweroff": REBOOT,
    "bin/df": DF,
    "sbin/ifconfig": IFCONFIG,
}
