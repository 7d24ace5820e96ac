//! `jitctl history`, `jitctl show GRANT` and `jitctl audit export`: what happened, read from
//! jitd's audit trail and command ledger.

use std::io::Write;

use jitd::client::ManagerProxy;
use serde_json::{Value, json};

use crate::Failure;
use crate::output::{Out, now_ms};

/// `jitctl history`'s filters, as given on the command line.
pub struct HistoryArgs {
    pub all: bool,
    pub user: Option<String>,
    pub privilege: Option<String>,
    pub kind: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub cursor: Option<i64>,
    pub limit: u32,
}

fn when(flag: &str, text: Option<&str>) -> Result<i64, Failure> {
    text.map_or(Ok(0), |t| {
        jitd::when::parse(t, now_ms()).map_err(|e| Failure::Usage(format!("{flag}: {e}")))
    })
}

pub async fn history(jitd: &ManagerProxy<'_>, a: HistoryArgs, out: &Out) -> Result<(), Failure> {
    let query = json!({
        "all": a.all,
        "user": a.user.unwrap_or_default(),
        "privilege": a.privilege.unwrap_or_default(),
        "kind": a.kind.unwrap_or_default(),
        "since_ms": when("--since", a.since.as_deref())?,
        "until_ms": when("--until", a.until.as_deref())?,
        "cursor": a.cursor.unwrap_or(0),
        "limit": a.limit,
    });
    let page: Value = parse(&jitd.history(&query.to_string()).await?)?;
    if out.json {
        println!("{page}");
        return Ok(());
    }
    let entries = page["entries"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        println!("No history matches.");
    }
    for e in &entries {
        println!(
            "{}  {:<10} {:<16} {:<14} {:<14} {}",
            e["time"].as_str().unwrap_or(""),
            e["user"].as_str().unwrap_or(""),
            e["kind"].as_str().unwrap_or(""),
            e["privilege"].as_str().unwrap_or(""),
            e["grant"].as_str().unwrap_or(""),
            detail(e)
        );
    }
    if let Some(next) = page["next_cursor"].as_i64() {
        println!("(more: add --cursor {next} for the next page)");
    }
    Ok(())
}

pub(crate) fn parse(text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::Other(format!("unreadable answer: {e}")))
}

pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn argv(v: &Value) -> String {
    let list: Option<Vec<String>> = match v {
        Value::String(s) => serde_json::from_str(s).ok(),
        Value::Array(a) => Some(a.iter().map(text).collect()),
        _ => None,
    };
    list.map_or_else(|| text(v), |l| l.join(" "))
}

/// The one line that says what an entry was about.
fn detail(e: &Value) -> String {
    let f = &e["fields"];
    let kind = e["kind"].as_str().unwrap_or("");
    match kind {
        "request.allowed" => format!("reason: {}", text(&f["reason"])),
        "request.denied" | "request.invalid" => format!("refused: {}", text(&f["why"])),
        "grant.applied" => format!("until {}", text(&f["expires"])),
        "command.run" => format!(
            "as {}: {}{}",
            text(&f["runas"]),
            argv(&f["argv"]),
            if f["after_expiry"] == json!(true) {
                " (after expiry)"
            } else {
                ""
            }
        ),
        "command.refused" => format!("refused ({}): {}", text(&f["why"]), argv(&f["argv"])),
        "command.exited" => format!("exit {} after {} ms", text(&f["exit"]), text(&f["run_ms"])),
        "session.opened" => format!("{} on {}", text(&f["service"]), text(&f["tty"])),
        "session.closed" => format!("after {}s", text(&f["seconds"])),
        "alert.raised" => format!("[{}] {}", text(&f["rule"]), text(&f["detail"])),
        _ => text(&f["why"]),
    }
}

pub async fn show(jitd: &ManagerProxy<'_>, id: &str, out: &Out) -> Result<(), Failure> {
    let story = parse(&jitd.show_grant(id).await?)?;
    if out.json {
        println!("{story}");
        return Ok(());
    }
    let g = &story["grant"];
    let at = |ms: &Value| jitd_time(ms.as_i64().unwrap_or(0));
    println!(
        "Grant {} of {} (uid {}): {} — {}",
        text(&g["id"]),
        text(&g["user"]),
        text(&g["uid"]),
        text(&g["privilege"]),
        text(&g["grants"])
    );
    println!("  reason:    {}", text(&g["reason"]));
    if !text(&g["ticket"]).is_empty() {
        println!("  ticket:    {}", text(&g["ticket"]));
    }
    println!("  rule:      {}", text(&g["rule"]));
    println!("  requested: {}", at(&g["requested_ms"]));
    println!("  until:     {}", at(&g["expires_ms"]));
    println!("  state:     {}", text(&g["state"]));
    if g["ended_ms"].as_i64().unwrap_or(0) > 0 {
        println!(
            "  ended:     {} ({})",
            at(&g["ended_ms"]),
            text(&g["end_reason"])
        );
    }
    println!("\nEvents:");
    for e in story["events"].as_array().into_iter().flatten() {
        println!(
            "  {}  {:<16} {}",
            text(&e["time"]),
            text(&e["kind"]),
            detail(e)
        );
    }
    let commands = story["commands"].as_array().cloned().unwrap_or_default();
    println!("\nCommands ({}):", commands.len());
    for c in &commands {
        let status = if c["refused"] == json!(true) {
            format!("refused: {}", text(&c["why"]))
        } else if c["exit"].is_null() {
            "exit unknown (still running, or not logged)".into()
        } else {
            format!("exit {}", text(&c["exit"]))
        };
        println!(
            "  {}  as {:<8} {}  [{}]{}",
            text(&c["time"]),
            text(&c["runas"]),
            argv(&c["argv"]),
            status,
            if c["after_expiry"] == json!(true) {
                " AFTER EXPIRY"
            } else {
                ""
            }
        );
        if let Some(io) = c["iolog"].as_str().filter(|s| !s.is_empty()) {
            println!("      output recorded: sudo sudoreplay {io}");
        }
    }
    if story["truncated"] == json!(true) {
        println!("(the story is longer than shown: use jitctl history --all --privilege ...)");
    }
    Ok(())
}

/// A time in UTC, as the events show it ("" for none).
fn jitd_time(ms: i64) -> String {
    if ms == 0 {
        return String::new();
    }
    jitd::clock::rfc3339(ms)
}

/// `jitctl audit export`: every page to stdout as it comes, so a big export never sits in
/// memory.
pub async fn export(
    jitd: &ManagerProxy<'_>,
    since: Option<&str>,
    csv: bool,
) -> Result<(), Failure> {
    let since_ms = when("--since", since)?;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut after = 0;
    loop {
        let (lines, next) = jitd.export_audit(after, since_ms, 5000, csv).await?;
        for l in &lines {
            writeln!(w, "{l}").map_err(|e| Failure::Other(format!("cannot write: {e}")))?;
        }
        if next == 0 {
            break;
        }
        after = next;
    }
    w.flush()
        .map_err(|e| Failure::Other(format!("cannot write: {e}")))
}

/// `jitctl audit verify --file EXPORT`: the export's chain checked here, with no daemon.
pub fn verify_file(file: &std::path::Path, out: &Out) -> Result<(), Failure> {
    let (intact, report) = jitd::history::verify_file(file).map_err(Failure::Other)?;
    out.message(&report);
    if intact { Ok(()) } else { Err(Failure::Broken) }
}
