#!/bin/sh
# The floor, peer (d): what plain OpenSSH does for one monitor, run in parallel by xargs -P.
# Same steps as the plain playbook: clinical check, scp, hash check, install, reboot, wait, version.
# One ControlMaster per monitor, so the ssh calls after the first reuse the connection (a fair floor).
# Usage: openssh_floor.sh NAME ADDRESS PORT   (env: PKG SHA VERSION KEY KNOWN USER CPDIR)
# Prints "NAME ok up=T install=T done=T" (epoch seconds: upload start, install start, version read back)
# so bench_campaign can give the floor's out-of-service time per monitor beside cmspatch's.
set -u
name=$1 addr=$2 port=$3
base="$PKG"; remote="/data/upgrade/${base##*/}"
opts="-o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$KNOWN -i $KEY -o IdentitiesOnly=yes"
cm="-o ControlMaster=auto -o ControlPath=$CPDIR/$name -o ControlPersist=30"
s() { ssh $opts $cm -p "$port" "$USER@$addr" "$@"; }
fail() { echo "$name FAILED: $*"; exit 1; }  # non-zero: xargs then exits 123
st=$(s cms-status) || fail "cms-status"
case "$st" in *patient=connected*|*alarm=active*) fail "clinical use";; esac
up=$(date +%s.%N)
scp -q $opts $cm -P "$port" "$PKG" "$USER@$addr:$remote" || fail "scp"
h=$(s sha256sum "$remote") || fail "sha256sum"
[ "${h%% *}" = "$SHA" ] || fail "hash"
install=$(date +%s.%N)
s cms-install "$remote" >/dev/null || fail "install"
s reboot >/dev/null 2>&1
ssh -O exit -o ControlPath="$CPDIR/$name" x 2>/dev/null
# Wait for the port with a bare TCP probe (a fork of bash, no key exchange), then log in once: polling
# with ssh itself would pay OpenSSH's post-quantum key exchange (~110 ms CPU) on every try.
port_open() { bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null; }
i=0
while port_open; do i=$((i+1)); [ $i -gt 50 ] && break; sleep 0.1; done   # still going down
i=0
until port_open && v=$(ssh $opts -o ConnectTimeout=5 -p "$port" "$USER@$addr" cat /etc/firmware_version 2>/dev/null); do
    i=$((i+1)); [ $i -gt 600 ] && fail "did not come back"; sleep 0.1
done
[ "$v" = "$VERSION" ] || fail "version $v"
echo "$name ok up=$up install=$install done=$(date +%s.%N)"
