# %preun: $1 = 0 on erase. Take every jitd grant off while the binary still exists.
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop jitd-sweep.timer jitd.service >/dev/null 2>&1 || true
        systemctl disable jitd.service jitd-sweep.service jitd-sweep.timer >/dev/null 2>&1 || true
    fi
    /usr/sbin/jitd purge || echo "jitd: could not remove every grant; check /etc/sudoers.d and /etc/group" >&2
fi
