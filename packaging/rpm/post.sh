# %post: $1 = 1 on install, 2 on upgrade. Live grants survive the restart (reloaded from the DB).
getent group jitd-admins >/dev/null || groupadd --system jitd-admins
install -d -m 0700 -o root -g root /var/lib/jitd
install -d -m 0755 -o root -g root /etc/jitd/policy.d
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl reload dbus.service 2>/dev/null || systemctl reload dbus-broker.service 2>/dev/null || true
    systemctl enable jitd.service jitd-sweep.service jitd-sweep.timer >/dev/null 2>&1 || true
    if [ "$1" -ge 2 ]; then
        systemctl restart jitd.service || true
    else
        systemctl start jitd.service || true
    fi
    systemctl start jitd-sweep.timer || true
fi
