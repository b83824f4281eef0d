"""The two shell scripts a real-OpenSSH monitor adds to the emulator's device scripts.

Every other device command (``cms-status``, ``cms-install``, ``reboot``, ``ifconfig``, ``df``,
``cms-service``) is the emulator's own script (``orchestrator.emulator.scripts``), so both kinds of test
monitor run the same device side; what differs is the SSH server (OpenSSH's ``sshd`` here) and who acts
on the requests the scripts drop into ``/run/cms/requests`` (``openssh.fleet``'s supervisor here).
"""

from __future__ import annotations

# sshd's ForceCommand: every session of the service account starts here, inside the chroot. It sets the
# device's PATH (sshd's default lacks /usr/sbin and /opt/cms/bin), records the command, then runs it.
# Records in /var/log/cms-activity are NUL-terminated: a command may span lines (the batched checks do).
CMS_SESSION = r"""#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/opt/cms/bin
cmd=$SSH_ORIGINAL_COMMAND
case "$cmd" in
    /usr/libexec/cms-sftp) exec /usr/libexec/cms-sftp ;;
esac
printf 'exec %s\0' "$cmd" >> /var/log/cms-activity 2>/dev/null
[ -n "$cmd" ] || exec /bin/sh -l
exec /bin/sh -c "$cmd"
"""

# The SFTP subsystem: OpenSSH's own sftp-server, logging opens and closes (with the bytes written) to
# /var/log/sftp.log. An injected upload drop (/run/cms/upload-drop: "OFFSET TIMES", TIMES 0 = always;
# consumed with an atomic mv, so one session wins) cuts the SSH connection once a file on /data reaches
# OFFSET bytes (rounded down to 512), as a pulled cable would: a file-size limit (ulimit -f) stops the
# file there, and a watcher polling the file sizes kills this session's sshd ($PPID: every script on the
# way here was exec'd), once, recording "upload-drop" in /var/log/cms-activity.
CMS_SFTP = r"""#!/bin/sh
F=/run/cms/upload-drop
T=/run/cms/.upload-drop.$$
SFTP="/usr/libexec/sftp-server -e -l INFO"
mv "$F" "$T" 2>/dev/null || exec $SFTP 2>> /var/log/sftp.log
read offset times < "$T"
if [ "$times" = 0 ]; then mv "$T" "$F"
elif [ "$times" -gt 1 ]; then echo "$offset $((times - 1))" > "$T" && mv "$T" "$F"
else rm -f "$T"
fi
blocks=$((offset / 512))
size=$((blocks * 512))
session=$PPID
big() { find /data -type f -size +$((size - 1))c 2>/dev/null | sort; }
{ echo //; big; } > /run/cms/.big.$$  # "//" never matches: BusyBox grep -f of an empty file matches nothing
reached() { [ -n "$(big | grep -vxF -f /run/cms/.big.$$)" ]; }
drop() {
    mkdir /run/cms/.dropped.$$ 2>/dev/null || return 0
    printf 'upload-drop %s\0' "$size" >> /var/log/cms-activity
    kill -9 "$session" 2>/dev/null
}
( while ! reached; do usleep 20000; done; drop ) </dev/null >/dev/null 2>&1 &
watcher=$!
(ulimit -f "$blocks"; exec $SFTP) 2>> /var/log/sftp.log
rc=$?
kill "$watcher" 2>/dev/null
reached && drop
rm -rf /run/cms/.big.$$ /run/cms/.dropped.$$
exit "$rc"
"""

SCRIPTS: dict[str, str] = {
    "bin/cms-session": CMS_SESSION,
    "usr/libexec/cms-sftp": CMS_SFTP,
}
