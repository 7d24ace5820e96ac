//! What happened, for people: `jitctl history` (requests, grants, sessions, commands, alerts,
//! newest first, in pages), `jitctl show GRANT` (one grant's whole story) and the pages of
//! `jitctl audit export`.
//!
//! Everything here reads the state database on a read-only connection of its own, on a thread
//! of its own: a long history or a million-record export never holds the core's lock, so
//! grants, the gate and expiry go on meanwhile. Answers are JSON text; the bus carries them as
//! strings.

#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::export;
use crate::client::Error;
use crate::names::GrantId;
use crate::policy::Accounts;
use crate::store::{HistoryFilter, HistoryRow, Store};

/// Most entries one page of history holds, and the default.
pub const MAX_PAGE: u32 = 1000;
const DEFAULT_PAGE: u32 = 50;
/// Most records one page of an export holds.
pub const MAX_EXPORT_PAGE: u32 = 5000;
/// Most records `show` reads for one grant; a story longer than this says so.
const MAX_STORY: u32 = 20_000;

/// What `jitctl history` sends, as JSON. Empty strings and zeros mean "not given".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryAsk {
    pub all: bool,
    pub user: String,
    pub privilege: String,
    /// Comma-separated kinds (`grant.applied,grant.expired`); empty: all.
    pub kind: String,
    pub since_ms: i64,
    pub until_ms: i64,
    /// The `next_cursor` of the page before.
    pub cursor: i64,
    pub limit: u32,
}

impl HistoryAsk {
    pub fn parse(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("history query: {e}")))
    }
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

fn open(db: &Path) -> Result<Store, Error> {
    Store::open_read_only(db).map_err(unavailable)
}

/// Reads the query and resolves whom it is about. `caller` may only ask about themselves
/// unless `admin`.
pub fn filter_for(
    ask: &HistoryAsk,
    caller: u32,
    admin: bool,
    accounts: &dyn Accounts,
) -> Result<HistoryFilter, Error> {
    if (ask.all || !ask.user.is_empty()) && !admin {
        return Err(Error::NotAllowed(
            "only root and the admin group may read other users' history".into(),
        ));
    }
    let uid = if !ask.user.is_empty() {
        Some(
            accounts
                .user_uid(&ask.user)
                .or_else(|| ask.user.parse().ok())
                .ok_or_else(|| Error::NotFound(format!("no user named {}", ask.user)))?,
        )
    } else if ask.all {
        None
    } else {
        Some(caller)
    };
    let given = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let positive = |n: i64| (n > 0).then_some(n);
    Ok(HistoryFilter {
        uid,
        privilege: given(&ask.privilege),
        kinds: ask
            .kind
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        since_ms: positive(ask.since_ms),
        until_ms: positive(ask.until_ms),
        before_seq: positive(ask.cursor),
        limit: match ask.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        },
        ..HistoryFilter::default()
    })
}

/// sudo's time of an event as the ledger records it: RFC 3339 UTC, to the millisecond.
pub fn sudo_time(ms: i64) -> String {
    export::rfc3339(ms)
}

/// One entry as people and scripts read it.
fn entry(r: &HistoryRow, accounts: &dyn Accounts) -> Value {
    let (kind, fields) = export::kind_and_fields(&r.row.line);
    let user = match fields.get("user") {
        Some(Value::String(u)) => u.clone(),
        _ => r
            .uid
            .and_then(|u| accounts.user_name(u))
            .unwrap_or_default(),
    };
    json!({
        "seq": r.row.seq,
        "time": export::rfc3339(r.row.at_ms),
        "at_ms": r.row.at_ms,
        "host": r.row.host,
        "kind": if kind.is_empty() { r.kind.clone() } else { kind },
        "uid": r.uid,
        "user": user,
        "privilege": r.privilege.clone().unwrap_or_default(),
        "grant": r.grant.clone().unwrap_or_default(),
        "fields": fields,
    })
}

/// One page of history: `{"entries": [...], "next_cursor": N | null}`.
pub fn history_page(
    db: &Path,
    filter: &HistoryFilter,
    accounts: &dyn Accounts,
) -> Result<String, Error> {
    let rows = open(db)?.history(filter).map_err(unavailable)?;
    let next = (rows.len() as u32 == filter.limit)
        .then(|| rows.last().map(|r| r.row.seq))
        .flatten();
    let entries: Vec<Value> = rows.iter().map(|r| entry(r, accounts)).collect();
    Ok(json!({ "entries": entries, "next_cursor": next }).to_string())
}

/// One page of the export: the records after `after` (from `since_ms` on), as JSON lines,
/// and the seq to ask after next (0 when this was the last page).
pub fn export_page(
    db: &Path,
    after: i64,
    since_ms: i64,
    limit: u32,
) -> Result<(Vec<String>, i64), Error> {
    let limit = limit.clamp(1, MAX_EXPORT_PAGE);
    let rows = open(db)?
        .audit_rows_since(after, since_ms, limit)
        .map_err(unavailable)?;
    let next = match rows.last() {
        Some(last) if rows.len() as u32 == limit => last.seq,
        _ => 0,
    };
    Ok((rows.iter().map(export::to_json_line).collect(), next))
}

/// An export page's JSON lines as CSV rows when asked (the header before the first page).
pub fn in_format(lines: Vec<String>, first: bool, csv: bool) -> Vec<String> {
    if !csv {
        return lines;
    }
    let header = first.then(|| export::CSV_HEADER.join(","));
    header
        .into_iter()
        .chain(lines.iter().map(|l| {
            serde_json::from_str::<Value>(l)
                .map(|v| export::json_to_csv(&v))
                .unwrap_or_default()
        }))
        .collect()
}

/// The whole story of grant `id` and the uid it belongs to (for the caller's check).
pub fn grant_story(db: &Path, id: &str, accounts: &dyn Accounts) -> Result<(u32, String), Error> {
    let gid = GrantId::parse(id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let store = open(db)?;
    let grant = store
        .get(&gid)
        .map_err(unavailable)?
        .ok_or_else(|| Error::NotFound(format!("no grant {id}")))?;
    let rows = store
        .history(&HistoryFilter {
            grant: Some(id.to_string()),
            oldest_first: true,
            limit: MAX_STORY + 1,
            ..HistoryFilter::default()
        })
        .map_err(unavailable)?;
    let truncated = rows.len() as u32 > MAX_STORY;
    let events: Vec<Value> = rows
        .iter()
        .take(MAX_STORY as usize)
        .map(|r| entry(r, accounts))
        .collect();
    let info = serde_json::to_value(crate::daemon::info(&grant)).map_err(unavailable)?;
    let story = json!({
        "grant": info,
        "events": events,
        "commands": commands(&events),
        "truncated": truncated,
    });
    Ok((grant.uid, story.to_string()))
}

/// Every command run or refused under the grant, its exit joined to it by sudo's uuid.
fn commands(events: &[Value]) -> Vec<Value> {
    let mut out: Vec<Map<String, Value>> = Vec::new();
    for e in events {
        let kind = e["kind"].as_str().unwrap_or("");
        let f = &e["fields"];
        let uuid = f["uuid"].as_str().unwrap_or("");
        match kind {
            "command.run" | "command.refused" => {
                let argv: Value = f["argv"]
                    .as_str()
                    .and_then(|a| serde_json::from_str(a).ok())
                    .unwrap_or_else(|| f["argv"].clone());
                let mut c = Map::new();
                c.insert("uuid".into(), json!(uuid));
                c.insert("time".into(), sudo_or_record_time(e));
                c.insert("refused".into(), json!(kind == "command.refused"));
                c.insert("why".into(), f.get("why").cloned().unwrap_or(json!("")));
                c.insert("argv".into(), argv);
                for k in ["runas", "cwd", "tty", "after_expiry", "iolog"] {
                    c.insert(k.into(), f[k].clone());
                }
                c.insert("exit".into(), Value::Null);
                c.insert("ended".into(), Value::Null);
                out.push(c);
            }
            "command.exited" => {
                if let Some(c) = out.iter_mut().rev().find(|c| c["uuid"] == json!(uuid)) {
                    c.insert("exit".into(), f["exit"].clone());
                    c.insert("signal".into(), f["signal"].clone());
                    c.insert("run_ms".into(), f["run_ms"].clone());
                    c.insert("ended".into(), sudo_or_record_time(e));
                }
            }
            _ => {}
        }
    }
    out.into_iter().map(Value::Object).collect()
}

/// When sudo says the event happened, else when jitd recorded it.
fn sudo_or_record_time(e: &Value) -> Value {
    match e["fields"]["sudo_time"].as_str() {
        Some(t) if !t.is_empty() => json!(t),
        _ => e["time"].clone(),
    }
}

/// Resolves the parts the readers need from the core, then runs `work` off the bus thread.
pub async fn offloaded<T: Send + 'static>(
    db: std::path::PathBuf,
    accounts: Arc<dyn Accounts + Send + Sync>,
    work: impl FnOnce(&Path, &dyn Accounts) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    crate::sys::offload(move || work(&db, accounts.as_ref()))
        .await
        .unwrap_or_else(|| Err(Error::Unavailable("the read did not finish".into())))
}

/// The two export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

/// `jitd audit export`: the database read directly, page by page, to stdout.
pub fn export_cli(db: &Path, since: Option<&str>, format: ExportFormat) -> std::process::ExitCode {
    use std::io::Write as _;
    let now = crate::clock::Clock::now(&crate::clock::SystemClock::new()).wall_ms;
    let since_ms = match since.map(|s| crate::when::parse(s, now)).transpose() {
        Ok(t) => t.unwrap_or(0),
        Err(e) => {
            eprintln!("jitd audit export: --since: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let result = (|| -> Result<(), String> {
        let mut after = 0;
        loop {
            let (lines, next) =
                export_page(db, after, since_ms, MAX_EXPORT_PAGE).map_err(|e| e.message())?;
            for text in in_format(lines, after == 0, format == ExportFormat::Csv) {
                writeln!(out, "{text}").map_err(|e| e.to_string())?;
            }
            if next == 0 {
                return out.flush().map_err(|e| e.to_string());
            }
            after = next;
        }
    })();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jitd audit export: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// What the check of an export file found: the check, and the report with the line of the
/// file where the first bad record is (for `jitd audit verify --file` and `jitctl audit verify
/// --file`); `Err` when the file cannot be read as an export.
pub fn verify_file(path: &Path) -> Result<(bool, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let check = export::read_export(&text).and_then(|records| export::verify_export(&records))?;
    let bad = check.mismatch.as_ref().map(|(seq, _)| *seq).or(check
        .chain
        .broken
        .as_ref()
        .map(|b| b.seq));
    let mut report = check.to_string();
    if let Some(line) = bad.and_then(|seq| line_of_seq(&text, seq)) {
        report.push_str(&format!(" (line {line} of {})", path.display()));
    }
    Ok((check.is_intact(), report))
}

/// The line of an export (JSON lines, or CSV whose second column is the seq) that holds the
/// record `seq`.
fn line_of_seq(text: &str, seq: i64) -> Option<usize> {
    let want = seq.to_string();
    text.lines()
        .position(|l| {
            serde_json::from_str::<serde_json::Value>(l).map_or_else(
                |_| l.split(',').nth(1) == Some(want.as_str()),
                |v| v["seq"].as_i64() == Some(seq),
            )
        })
        .map(|i| i + 1)
}

/// Checks an export file: exit 0 intact, 1 broken or altered, 2 unreadable.
pub fn verify_file_cli(tool: &str, path: &Path) -> std::process::ExitCode {
    match verify_file(path) {
        Ok((intact, report)) => {
            println!("{report}");
            if intact {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
