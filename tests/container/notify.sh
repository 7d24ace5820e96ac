# Sourced by tests/container/run after the install step (uses its inside/fail/ok/step).
# jitd-notify.service in the booted container: it runs as its own unprivileged account, gets
# the webhook secret through LoadCredential= as README says, delivers a pending request's note
# to a local HTTP receiver (a socket-activated shell script: nothing but bash and systemd), and
# its `systemd-analyze security` exposure is at most 2.5.

step "jitd-notify: its own account, LoadCredential=, a pending request reaches a local receiver"
inside useradd -M -s /bin/sh nora
inside sh -c 'cat > /etc/jitd/policy.d/notify-e2e.toml' <<'POLICY'
[privilege.notify-check]
kind = "sudo"
commands = ["/usr/bin/true"]

[[rule]]
name = "notify-e2e"
users = ["nora"]
privileges = ["notify-check"]
max_duration = "1h"
approval = "quorum"
approvers = ["root"]
POLICY
inside systemctl reload jitd || fail "systemctl reload jitd"
inside mkdir -p /usr/local/libexec /var/lib/e2e-receiver
inside sh -c 'cat > /usr/local/libexec/e2e-receiver; chmod 755 /usr/local/libexec/e2e-receiver' <<'RECEIVER'
#!/bin/bash
# One HTTP request on stdin (the connection, Accept=yes): headers, then Content-Length bytes.
len=0 sig=
while IFS= read -r line; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
    case "${line,,}" in
        content-length:*) len=${line#*:}; len=${len//[^0-9]/} ;;
        webhook-signature:*) sig=${line#*: } ;;
    esac
done
body=$(head -c "$len")
printf '%s %s\n' "$sig" "$body" >> /var/lib/e2e-receiver/notes
printf 'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n'
RECEIVER
inside sh -c 'cat > /etc/systemd/system/e2e-receiver.socket' <<'UNIT'
[Socket]
ListenStream=127.0.0.1:8099
Accept=yes
UNIT
inside sh -c 'cat > /etc/systemd/system/e2e-receiver@.service' <<'UNIT'
[Service]
ExecStart=/usr/local/libexec/e2e-receiver
StandardInput=socket
StandardOutput=socket
UNIT
inside sh -c 'umask 077; echo "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" > /etc/jitd/notify-webhook.secret'
inside mkdir -p /etc/systemd/system/jitd-notify.service.d
inside sh -c 'cat > /etc/systemd/system/jitd-notify.service.d/credential.conf' <<'UNIT'
[Service]
LoadCredential=webhook-secret:/etc/jitd/notify-webhook.secret
UNIT
inside sh -c 'cat > /etc/jitd/notify.toml' <<'TOML'
poll_ms = 250
[[sink]]
name = "local"
kind = "webhook"
url = "http://127.0.0.1:8099/jitd"
secret_file = "/run/credentials/jitd-notify.service/webhook-secret"
TOML
inside systemctl daemon-reload
inside systemctl start e2e-receiver.socket || fail "the receiver's socket"
inside systemctl start jitd-notify || { inside journalctl -u jitd-notify --no-pager | tail; fail "start jitd-notify"; }
sleep 1
pid=$(inside systemctl show -P MainPID jitd-notify)
uid=$(inside awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
[ "$pid" -gt 0 ] && [ "$uid" = "$(inside id -u jitd-notify)" ] || {
    inside systemctl status jitd-notify --no-pager | tail -15
    fail "jitd-notify does not run as its own account (pid $pid, uid ${uid:-none})"
}
[ "$(inside awk '/^CapEff/ {print $2}' "/proc/$pid/status")" = 0000000000000000 ] \
    || fail "jitd-notify has capabilities"
ok "jitd-notify.service active as user jitd-notify, no capabilities"
req=$(inside runuser -u nora -- jitctl --json elevate notify-check --reason "container notifier check" \
    | grep -oE '"request_id": *"r[0-9a-f]{12}"' | grep -oE '"r[0-9a-f]{12}"' | tr -d '"' || true)
[ -n "$req" ] || fail "no pending request"
got=
for _ in $(seq 40); do
    if inside grep -q "jitctl approve $req" /var/lib/e2e-receiver/notes 2>/dev/null; then got=1; break; fi
    sleep 0.25
done
[ -n "$got" ] || { inside journalctl -u jitd-notify --no-pager | tail; fail "the pending note did not reach the receiver"; }
inside grep "jitctl approve $req" /var/lib/e2e-receiver/notes | grep -q '^v1,' \
    || fail "the note came without its webhook-signature"
ok "request $req: its note, signed, reached the receiver in the container"
exposure=$(inside systemd-analyze security jitd-notify.service 2>/dev/null \
    | sed -n 's/.*Overall exposure level for jitd-notify.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] && awk -v s="$exposure" 'BEGIN { exit !(s <= 2.5) }' \
    || fail "jitd-notify.service exposure ${exposure:-unknown} above 2.5"
ok "systemd-analyze security jitd-notify.service: $exposure (<= 2.5)"
inside runuser -u nora -- jitctl cancel "$req" >/dev/null || fail "cancel $req"
inside systemctl stop jitd-notify e2e-receiver.socket
inside rm -rf /etc/jitd/notify.toml /etc/jitd/notify-webhook.secret /etc/jitd/policy.d/notify-e2e.toml \
    /etc/systemd/system/jitd-notify.service.d /etc/systemd/system/e2e-receiver.socket \
    /etc/systemd/system/e2e-receiver@.service
inside systemctl daemon-reload
inside systemctl reload jitd
