# %postun: $1 = 0 on erase (forget the state), >= 1 on upgrade (nothing: %post restarted jitd).
if [ "$1" -eq 0 ]; then
    rm -rf /var/lib/jitd
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
