//! A seeded generator of realistic history, for the tests, the benchmark and the README's
//! examples: several hosts over 90 days of users asking for privileges, approvals and denials,
//! commands and refused commands under grants, sessions, break-glass, clock changes, failed
//! removals and repairs. The same seed gives the same records, byte for byte.
//!
//! Kinds this build writes are built as typed [`AuditEvent`]s (so the codec reads them back
//! exactly); kinds of the approvals and activity work are written by the names in
//! [`super::model`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::audit::{AuditEvent, Escaped};
use crate::clock::utc;
use crate::names::GrantId;
use crate::terms::{ApprovalMode, GrantKind, Via};

use super::input::days_from_civil;

mod scenario;

use scenario::day_of;
pub use scenario::policy;

/// 2026-10-01 00:00:00 UTC: the generated quarter is 2026Q4.
pub fn default_start_ms() -> i64 {
    days_from_civil(2026, 10, 1) * 86_400_000
}

#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub hosts: usize,
    pub days: i64,
    pub start_ms: i64,
    /// Users who behave like alice (daily short restarts), for volume.
    pub extra_users: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 17,
            hosts: 3,
            days: 92,
            start_ms: default_start_ms(),
            extra_users: 0,
        }
    }
}

/// splitmix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).unwrap_or(1).max(1);
        lo + i64::try_from(self.next() % span).unwrap_or(0)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One generated record.
#[derive(Debug, Clone)]
pub enum Rec {
    Known(AuditEvent),
    /// A kind from the approvals or activity work: its name and text fields.
    Other(&'static str, Vec<(&'static str, String)>),
}

impl Rec {
    pub fn line(&self) -> String {
        match self {
            Self::Known(e) => e.to_line(),
            Self::Other(kind, fields) => {
                let mut out = format!("event={kind}");
                for (k, v) in fields {
                    let _ = write!(out, " {k}={}", Escaped(v));
                }
                out
            }
        }
    }

    pub fn kind(&self) -> &str {
        match self {
            Self::Known(e) => e.kind(),
            Self::Other(kind, _) => kind,
        }
    }

    /// The fields as a JSON object's members (typed for known kinds).
    fn json_fields(&self) -> String {
        match self {
            Self::Known(e) => {
                let json = e.to_json();
                // `{"event":"kind",` then the fields: keep the members after the kind.
                let after = json
                    .find(',')
                    .map_or("}", |at| json.get(at + 1..).unwrap_or("}"));
                format!("{{{after}")
            }
            Self::Other(_, fields) => {
                let members: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}:{}", serde_json::json!(k), serde_json::json!(v)))
                    .collect();
                format!("{{{}}}", members.join(","))
            }
        }
    }
}

/// One host's generated records, in time order.
#[derive(Debug, Clone)]
pub struct HostHistory {
    pub host: String,
    pub records: Vec<(i64, Rec)>,
}

/// The generated history and the policy it ran under.
#[derive(Debug, Clone)]
pub struct History {
    pub hosts: Vec<HostHistory>,
    pub policy: String,
}

pub const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "mallory",
];

fn uid_of(user: &str) -> u32 {
    USERS.iter().position(|u| *u == user).map_or_else(
        || {
            5000 + user
                .bytes()
                .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
                % 50_000
        },
        |i| 1001 + u32::try_from(i).unwrap_or(0),
    )
}

enum How {
    Auto,
    Human { latency_ms: i64, approvers: String },
    Breakglass { reviewed: Option<String> },
}

struct Host<'a> {
    name: String,
    records: Vec<(i64, Rec)>,
    rng: &'a mut Rng,
    request_n: u64,
}

struct Ask<'a> {
    at: i64,
    user: &'a str,
    privilege: &'a str,
    rule: &'a str,
    secs: u64,
    reason: String,
    ticket: String,
    how: How,
    /// Commands run: offset from the start in ms, argv.
    uses: Vec<(i64, String)>,
    refused: Vec<(i64, String)>,
    /// Given back this long after the start, or left to expire.
    drop_after: Option<i64>,
}

impl Host<'_> {
    fn push(&mut self, at: i64, rec: Rec) {
        self.records.push((at, rec));
    }

    fn grant(&mut self, ask: Ask<'_>) {
        let id = GrantId::from_random(self.rng.next());
        let gid = id.to_string();
        let uid = uid_of(ask.user);
        let approval_mode = match ask.how {
            How::Auto => "auto",
            How::Human { .. } => "human",
            How::Breakglass { .. } => "breakglass",
        };
        if let How::Human {
            latency_ms,
            approvers,
        } = &ask.how
        {
            self.request_n += 1;
            let request = format!("r{:08x}", self.request_n);
            let asked = ask.at - latency_ms;
            self.push(
                asked,
                Rec::Other(
                    "request.pending",
                    vec![
                        ("request", request.clone()),
                        ("uid", uid.to_string()),
                        ("user", ask.user.into()),
                        ("privilege", ask.privilege.into()),
                        ("rule", ask.rule.into()),
                        ("duration", ask.secs.to_string()),
                        ("reason", ask.reason.clone()),
                        ("ticket", ask.ticket.clone()),
                    ],
                ),
            );
            self.push(
                asked + 2_000,
                Rec::Other(
                    "notify.sent",
                    vec![("request", request.clone()), ("delay_ms", "2000".into())],
                ),
            );
            self.push(
                ask.at - 1,
                Rec::Other(
                    "request.approved",
                    vec![
                        ("request", request),
                        ("grant", gid.clone()),
                        ("approvers", approvers.clone()),
                    ],
                ),
            );
        }
        if approval_mode == "auto" {
            self.push(
                ask.at,
                Rec::Known(AuditEvent::RequestAllowed {
                    grant: id.clone(),
                    uid,
                    user: ask.user.into(),
                    via: Via::Bus,
                    privilege: ask.privilege.into(),
                    rule: ask.rule.into(),
                    duration: ask.secs,
                    clamped: false,
                    reason: ask.reason.clone(),
                    ticket: ask.ticket.clone(),
                    approval: ApprovalMode::Auto,
                }),
            );
        } else {
            self.push(
                ask.at,
                Rec::Other(
                    "request.allowed",
                    vec![
                        ("grant", gid.clone()),
                        ("uid", uid.to_string()),
                        ("user", ask.user.into()),
                        ("via", "bus".into()),
                        ("privilege", ask.privilege.into()),
                        ("rule", ask.rule.into()),
                        ("duration", ask.secs.to_string()),
                        ("clamped", "false".into()),
                        ("reason", ask.reason.clone()),
                        ("ticket", ask.ticket.clone()),
                        ("approval", approval_mode.into()),
                    ],
                ),
            );
        }
        if let How::Breakglass { reviewed } = &ask.how {
            self.push(
                ask.at + 1,
                Rec::Other(
                    "breakglass.used",
                    vec![
                        ("grant", gid.clone()),
                        ("user", ask.user.into()),
                        ("privilege", ask.privilege.into()),
                    ],
                ),
            );
            if let Some(reviewer) = reviewed {
                self.push(
                    ask.at + 86_400_000,
                    Rec::Other(
                        "breakglass.reviewed",
                        vec![
                            ("grant", gid.clone()),
                            ("reviewer", reviewer.clone()),
                            ("outcome", "justified".into()),
                        ],
                    ),
                );
            }
        }
        let start = ask.at + 40;
        let secs_ms = i64::try_from(ask.secs).unwrap_or(0) * 1000;
        self.push(
            start,
            Rec::Known(AuditEvent::GrantApplied {
                grant: id.clone(),
                uid,
                user: ask.user.into(),
                privilege: ask.privilege.into(),
                kind: GrantKind::Sudo,
                expires: utc(start + secs_ms),
            }),
        );
        if let (Some(first), Some(last)) = (ask.uses.first(), ask.uses.last()) {
            let session = format!("s{:016x}", self.rng.next());
            let pid = u32::try_from(self.rng.range(2000, 60000)).unwrap_or(2000);
            self.push(
                start + first.0 - 500,
                Rec::Known(AuditEvent::SessionOpened {
                    session: session.clone(),
                    grant: gid.clone(),
                    uid,
                    pid,
                    service: format!("jitd-{}", ask.privilege),
                    tty: "pts/0".into(),
                    rhost: String::new(),
                }),
            );
            for (off, argv) in &ask.uses {
                self.push(
                    start + off,
                    Rec::Other(
                        "command.finished",
                        vec![
                            ("grant", gid.clone()),
                            ("uid", uid.to_string()),
                            ("argv", argv.clone()),
                            ("exit", "0".into()),
                        ],
                    ),
                );
            }
            let closed = start + last.0;
            self.push(
                closed,
                Rec::Known(AuditEvent::SessionClosed {
                    session,
                    grant: gid.clone(),
                    uid,
                    seconds: (last.0 - first.0 + 500) / 1000,
                    how: "exit".into(),
                }),
            );
        }
        for (off, argv) in &ask.refused {
            self.push(
                start + off,
                Rec::Other(
                    "command.refused",
                    vec![
                        ("grant", gid.clone()),
                        ("uid", uid.to_string()),
                        ("argv", argv.clone()),
                    ],
                ),
            );
        }
        match ask.drop_after {
            Some(after) => self.push(
                start + after,
                Rec::Known(AuditEvent::GrantDropped {
                    grant: id,
                    uid,
                    user: ask.user.into(),
                    privilege: ask.privilege.into(),
                    why: "given back by its holder".into(),
                }),
            ),
            None => {
                let late = self.rng.range(5, 900);
                if self.rng.chance(2) {
                    self.push(
                        start + secs_ms + late - 10,
                        Rec::Known(AuditEvent::GrantRemoveFailed {
                            grant: id.clone(),
                            error: "visudo: resource busy".into(),
                            retry: "in 5s".into(),
                        }),
                    );
                }
                self.push(
                    start + secs_ms + late,
                    Rec::Known(AuditEvent::GrantExpired {
                        grant: id,
                        uid,
                        user: ask.user.into(),
                        privilege: ask.privilege.into(),
                        why: "deadline".into(),
                        late_ms: late,
                    }),
                );
            }
        }
    }

    fn deny(&mut self, at: i64, user: &str, privilege: &str, reason: &str, why: &str) {
        self.push(
            at,
            Rec::Known(AuditEvent::RequestDenied {
                uid: uid_of(user),
                user: user.into(),
                via: Via::Bus,
                privilege: privilege.into(),
                duration: 1800,
                reason: reason.into(),
                ticket: String::new(),
                why: why.into(),
            }),
        );
    }
}

const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;
const DAY: i64 = 24 * HOUR;

/// Generates the history for `config`.
pub fn generate(config: &Config) -> History {
    let mut rng = Rng(config.seed);
    let mut hosts = Vec::new();
    for h in 0..config.hosts {
        let name = format!("{}-{:02}", ["web", "db", "app"][h % 3], h / 3 + 1);
        let mut host = Host {
            name,
            records: Vec::new(),
            rng: &mut rng,
            request_n: 0,
        };
        host.push(
            config.start_ms,
            Rec::Known(AuditEvent::PolicyLoaded {
                summary: "4 privileges, 3 rules".into(),
            }),
        );
        for day in 0..config.days {
            let midnight = config.start_ms + day * DAY;
            let weekday = (day + 3) % 7 < 5; // 2026-10-01 is a Thursday.
            day_of(&mut host, h, day, midnight, weekday, config);
        }
        let mut records = host.records;
        records.sort_by_key(|(at, _)| *at);
        hosts.push(HostHistory {
            host: host.name,
            records,
        });
    }
    History {
        hosts,
        policy: policy(config.extra_users),
    }
}

impl History {
    /// Writes every record into the audit chain of a state database (created if missing), as
    /// one daemon's database that several hosts' records reached, in time order.
    pub fn write_db(&self, path: &Path) -> Result<(), crate::store::StoreError> {
        let store = crate::store::Store::open(path, std::time::Duration::from_secs(5))?;
        let mut all: Vec<(i64, &str, &Rec)> = self
            .hosts
            .iter()
            .flat_map(|h| {
                h.records
                    .iter()
                    .map(move |(at, r)| (*at, h.host.as_str(), r))
            })
            .collect();
        all.sort_by_key(|(at, host, _)| (*at, *host));
        store.begin_batch()?;
        for (at, host, rec) in all {
            store.append_audit(at, host, &rec.line())?;
        }
        store.commit_batch()
    }

    /// Writes every host's records as one JSON-lines export (`host`, `seq`, `time`, `kind`,
    /// `fields`).
    pub fn write_jsonl(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for host in &self.hosts {
            write_host_jsonl(host, out)?;
        }
        Ok(())
    }

    /// Writes each host's export to `DIR/HOST.jsonl` and the policy to `DIR/policy.toml`.
    pub fn write_dir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for host in &self.hosts {
            let mut file = std::io::BufWriter::new(std::fs::File::create(
                dir.join(format!("{}.jsonl", host.host)),
            )?);
            write_host_jsonl(host, &mut file)?;
            file.flush()?;
        }
        std::fs::write(dir.join("policy.toml"), &self.policy)
    }
}

fn write_host_jsonl(host: &HostHistory, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    for (i, (at, rec)) in host.records.iter().enumerate() {
        writeln!(
            out,
            "{{\"host\":{},\"seq\":{},\"time\":\"{}\",\"kind\":{},\"fields\":{}}}",
            serde_json::json!(host.host),
            i + 1,
            rfc3339(*at),
            serde_json::json!(rec.kind()),
            rec.json_fields()
        )?;
    }
    Ok(())
}

/// `2026-10-01T09:00:00.000Z`.
pub use crate::clock::rfc3339_ms as rfc3339;
