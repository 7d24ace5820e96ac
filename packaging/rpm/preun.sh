# %preun: $1 = 0 on erase. No PAM line may be left loading pam_jit.so, which the erase deletes:
# it would refuse sudo and su to everyone. RPM systems have no pam-auth-update, so those lines
# are the admin's own (or an authselect profile's): the erase is refused, naming them, before
# anything changes. Then every jitd grant is taken off while the binary still exists.
if [ "$1" -eq 0 ]; then
    # Comments do not count, nor lines whose type starts with "-" (PAM skips a missing module).
    lines=$(grep -Hn '^[[:space:]]*[^#[:space:]-].*pam_jit\.so' /etc/pam.d/* 2>/dev/null || true)
    if [ -n "$lines" ]; then
        echo "jitd: not removed: these PAM lines load pam_jit.so, which removal deletes; left in" >&2
        echo "place they would refuse sudo and su to everyone:" >&2
        echo "$lines" >&2
        echo "jitd: delete those lines (or start them with '-'; with authselect, in the custom" >&2
        echo "profile, then 'authselect apply-changes'), then remove jitd again." >&2
        exit 1
    fi
    if [ -d /run/systemd/system ]; then
        systemctl stop jitd-sweep.timer jitd.service >/dev/null 2>&1 || true
        systemctl disable jitd.service jitd-sweep.service jitd-sweep.timer >/dev/null 2>&1 || true
    fi
    /usr/sbin/jitd purge || echo "jitd: could not remove every grant; check /etc/sudoers.d and /etc/group" >&2
fi
