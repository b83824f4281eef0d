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
# /var/log/sftp.log. An injected upload drop (/run/cms/upload-drop: "OFFSET TIMES", TIMES 0 = always) is
# a file-size limit: the write that passes OFFSET kills sftp-server with SIGXFSZ (exit 153, the file
# keeps exactly OFFSET bytes, rounded down to 512), and the session's sshd is killed so the whole SSH
# connection drops, as a pulled cable would. The fault is consumed with an atomic mv (one session wins).
CMS_SFTP = r"""#!/bin/sh
F=/run/cms/upload-drop
T=/run/cms/.upload-drop.$$
limit=""
if mv "$F" "$T" 2>/dev/null; then
    read offset times < "$T"
    if [ "$times" = 0 ]; then mv "$T" "$F"
    elif [ "$times" -gt 1 ]; then echo "$offset $((times - 1))" > "$T" && mv "$T" "$F"
    else rm -f "$T"
    fi
    limit=$((offset / 512))
fi
if [ -n "$limit" ]; then
    (ulimit -f "$limit"; exec /usr/libexec/sftp-server -e -l INFO) 2>> /var/log/sftp.log
    rc=$?
    if [ "$rc" = 153 ]; then
        printf 'upload-drop %s\0' "$((limit * 512))" >> /var/log/cms-activity
        kill -9 "$PPID" 2>/dev/null
    fi
    exit "$rc"
fi
exec /usr/libexec/sftp-server -e -l INFO 2>> /var/log/sftp.log
"""

SCRIPTS: dict[str, str] = {
    "bin/cms-session": CMS_SESSION,
    "usr/libexec/cms-sftp": CMS_SFTP,
}
