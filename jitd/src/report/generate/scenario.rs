//! The generated history's people and what they do each day: the scenario behind the
//! suggestions the tests expect (alice's short restarts, bob's approved restores, carol's
//! refused commands, frank's release day, grace who never asks, dave's break-glass).

use super::{Ask, Config, HOUR, Host, How, MIN, Rec};
use crate::audit::AuditEvent;

/// The policy the history ran under.
pub fn policy(extra_users: usize) -> String {
    let mut web_users: Vec<String> = ["alice", "carol", "grace"]
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect();
    web_users.extend((0..extra_users).map(|i| format!("\"user{i:04}\"")));
    format!(
        r#"# Generated history's policy (jitd report generator).
[privilege.nginx-restart]
kind = "sudo"
description = "Restart, reload and test nginx"
commands = ["/usr/bin/systemctl restart nginx", "/usr/bin/systemctl reload nginx", "/usr/sbin/nginx -t", "/usr/bin/systemctl stop nginx"]

[privilege.db-restore]
kind = "sudo"
description = "Restore the latest database backup"
commands = ["/usr/local/bin/db-restore --latest"]

[privilege.deploy]
kind = "sudo"
description = "Run the deploy script"
commands = ["/usr/local/bin/deploy"]

[privilege.logs]
kind = "sudo"
description = "Read the system log"
commands = ["/usr/bin/less /var/log/syslog"]

[[rule]]
name = "web"
users = [{users}]
privileges = ["nginx-restart"]
max_duration = "4h"
default_duration = "1h"
reason_min_chars = 10

[[rule]]
name = "dba"
users = ["bob", "erin"]
privileges = ["db-restore", "logs"]
max_duration = "2h"
default_duration = "30m"
reason_min_chars = 10
approval = "auto"

[[rule]]
name = "release"
users = ["frank", "dave"]
privileges = ["deploy"]
max_duration = "1h"
default_duration = "20m"
reason_min_chars = 10
"#,
        users = web_users.join(", ")
    )
}

const TICKETS: &[&str] = &["OPS-1041", "OPS-1187", "INC-2203", "OPS-1290", "CHG-311"];

fn nginx_uses(host: &mut Host<'_>) -> Vec<(i64, String)> {
    let minutes = host.rng.range(2, 12);
    let mut uses = vec![(MIN, "/usr/sbin/nginx -t".to_string())];
    let verb = if host.rng.chance(70) {
        "restart"
    } else {
        "reload"
    };
    uses.push((minutes * MIN, format!("/usr/bin/systemctl {verb} nginx")));
    uses
}

pub(super) fn day_of(
    host: &mut Host<'_>,
    h: usize,
    day: i64,
    midnight: i64,
    weekday: bool,
    config: &Config,
) {
    let web = h.is_multiple_of(3);
    let db = h % 3 == 1;
    // alice: a short nginx restart most weekdays on the web hosts.
    if web && weekday && host.rng.chance(80) {
        let at = midnight + 9 * HOUR + host.rng.range(0, 8 * 60) * MIN;
        let uses = nginx_uses(host);
        let ticket = TICKETS[usize::try_from(day).unwrap_or(0) % TICKETS.len()].to_string();
        host.grant(Ask {
            at,
            user: "alice",
            privilege: "nginx-restart",
            rule: "web",
            secs: 3600,
            reason: format!("apply config change from {ticket}"),
            ticket,
            how: How::Auto,
            uses,
            refused: Vec::new(),
            drop_after: None,
        });
    }
    for i in 0..config.extra_users {
        if host.rng.chance(60) {
            let at = midnight + 8 * HOUR + host.rng.range(0, 10 * 60) * MIN;
            let uses = nginx_uses(host);
            host.grant(Ask {
                at,
                user: &format!("user{i:04}"),
                privilege: "nginx-restart",
                rule: "web",
                secs: 3600,
                reason: "routine nginx configuration rollout".into(),
                ticket: String::new(),
                how: How::Auto,
                uses,
                refused: Vec::new(),
                drop_after: None,
            });
        }
    }
    // carol: now and then on web hosts, trying commands the privilege does not have.
    if web && day % 6 == 2 {
        let at = midnight + 14 * HOUR;
        let refused = match (day / 6) % 3 {
            0 => vec![(2 * MIN, "/usr/bin/systemctl status nginx".to_string())],
            1 => vec![(2 * MIN, "/usr/bin/tee /etc/nginx/conf.d/a.conf".to_string())],
            _ => vec![
                (2 * MIN, "/usr/bin/tee /etc/nginx/conf.d/b.conf".to_string()),
                (3 * MIN, "/usr/bin/systemctl status nginx".to_string()),
            ],
        };
        host.grant(Ask {
            at,
            user: "carol",
            privilege: "nginx-restart",
            rule: "web",
            secs: 1800,
            reason: "nginx returns 502 on the status page".into(),
            ticket: "INC-2203".into(),
            how: How::Auto,
            uses: vec![(5 * MIN, "/usr/bin/systemctl reload nginx".to_string())],
            refused,
            drop_after: Some(6 * MIN),
        });
    }
    // bob: database restores approved by carol or dave, on the db hosts.
    if db && day % 5 == 1 {
        let at = midnight + 10 * HOUR + host.rng.range(0, 120) * MIN;
        let approvers = if day % 2 == 0 { "carol" } else { "dave" };
        let latency = host.rng.range(1, 45) * MIN;
        host.grant(Ask {
            at,
            user: "bob",
            privilege: "db-restore",
            rule: "dba",
            secs: 1800,
            reason: format!("restore staging copy for QA run {}", day / 5),
            ticket: "CHG-311".into(),
            how: How::Human {
                latency_ms: latency,
                approvers: approvers.into(),
            },
            uses: vec![(3 * MIN, "/usr/local/bin/db-restore --latest".to_string())],
            refused: Vec::new(),
            drop_after: Some(4 * MIN),
        });
    }
    // erin: the same privilege, once refused.
    if db && day % 9 == 4 {
        let at = midnight + 15 * HOUR;
        if day == 4 {
            host.deny(
                at,
                "erin",
                "db-restore",
                "need it",
                "reason shorter than 10 characters",
            );
        } else {
            let latency_ms = host.rng.range(5, 240) * MIN;
            host.grant(Ask {
                at,
                user: "erin",
                privilege: "db-restore",
                rule: "dba",
                secs: 3600,
                reason: "restore after failed migration test".into(),
                ticket: "OPS-1290".into(),
                how: How::Human {
                    latency_ms,
                    approvers: "carol,dave".into(),
                },
                uses: vec![(10 * MIN, "/usr/local/bin/db-restore --latest".to_string())],
                refused: Vec::new(),
                drop_after: None,
            });
        }
    }
    // frank: deploys, with a release day of many, and the same reason every time.
    if h % 3 == 2 && (day % 7 == 1 || day == 40) {
        let count = if day == 40 { 6 } else { 1 };
        for n in 0..count {
            let at = midnight + 9 * HOUR + n * 70 * MIN;
            host.grant(Ask {
                at,
                user: "frank",
                privilege: "deploy",
                rule: "release",
                secs: 1200,
                reason: "deploy release".into(),
                ticket: String::new(),
                how: How::Auto,
                uses: vec![(4 * MIN, "/usr/local/bin/deploy".to_string())],
                refused: Vec::new(),
                drop_after: Some(5 * MIN),
            });
        }
    }
    // dave: break-glass at night, the first reviewed, the second not yet.
    if h == 0 && (day == 20 || day == 75) {
        host.grant(Ask {
            at: midnight + 3 * HOUR,
            user: "dave",
            privilege: "deploy",
            rule: "release",
            secs: 3600,
            reason: "site down, rolling back release 4.2".into(),
            ticket: "INC-2301".into(),
            how: How::Breakglass {
                reviewed: (day == 20).then(|| "carol".to_string()),
            },
            uses: vec![(12 * MIN, "/usr/local/bin/deploy".to_string())],
            refused: Vec::new(),
            drop_after: Some(15 * MIN),
        });
    }
    // mallory: asks for what no rule gives her.
    if day % 30 == 11 {
        host.deny(
            midnight + 22 * HOUR,
            "mallory",
            "db-restore",
            "just checking something",
            "no rule allows mallory db-restore",
        );
    }
    // The wall clock is set twice a quarter on every host, and a policy edit goes wrong once.
    if day == 33 || day == 66 {
        host.push(midnight + 2 * HOUR, Rec::Known(AuditEvent::ClockChanged {}));
    }
    if day == 50 {
        host.push(
            midnight + 11 * HOUR,
            Rec::Known(AuditEvent::PolicyRejected {
                errors: "policy.toml:12:1: error: unknown key \"max_durations\"".into(),
                action: "kept the previous policy".into(),
            }),
        );
        host.push(
            midnight + 11 * HOUR + 5 * MIN,
            Rec::Known(AuditEvent::PolicyLoaded {
                summary: "4 privileges, 3 rules".into(),
            }),
        );
    }
}
