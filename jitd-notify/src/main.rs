//! jitd-notify: fetches jitd's notifications over the system bus and delivers them. It runs
//! unprivileged (its own account, the only one the bus lets read the outbox) so the root
//! daemon never touches the network.
//!
//! At least once: a note is acknowledged only after every sink it routes to delivered it or
//! gave up; a notifier killed in between sees it again on its next fetch, with the same id
//! (`webhook-id`, `Message-ID`, `JITD_NOTE_ID`) for the receiver to dedupe on. Notes go out in
//! order, one at a time. A sink that fails is retried with exponential backoff; after
//! `max_attempts` the failure is put on record in jitd's audit trail (`notify.failed`).

#![allow(clippy::disallowed_methods)] // the notifier is an edge: it waits between polls and retries

mod chat;
mod config;
mod hook;
mod mail;
mod note;
mod sinks;
mod tls;
mod tty;

use std::path::PathBuf;
use std::time::Duration;

use config::{Config, Sink};
use note::Note;

const DEST: &str = "org.jitd.Jitd1";
const PATH: &str = "/org/jitd/Jitd1";
const IFACE: &str = "org.jitd.Jitd1.Notifier";

fn routed(sink: &Sink, n: &Note) -> bool {
    let ok = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    ok(&sink.events, &n.kind)
        && ok(&sink.privileges, &n.privilege)
        && ok(&sink.rules, &n.rule)
        && (sink.routes.is_empty() || sink.routes.iter().any(|r| n.routes.contains(r)))
}

async fn call<B, R>(conn: &zbus::Connection, method: &str, body: &B) -> Result<R, String>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
    R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
{
    let reply = conn
        .call_method(Some(DEST), PATH, Some(IFACE), method, body)
        .await
        .map_err(|e| format!("{method}: {e}"))?;
    reply
        .body()
        .deserialize::<R>()
        .map_err(|e| format!("{method}: {e}"))
}

/// Runs the rule's decision hook for a pending request and casts its answer as this account's
/// vote (`Manager.Approve` / `Deny` under the notifier's own bus identity). A hook that fails
/// casts nothing; the failure is on record as `notify.failed`.
async fn run_hook(conn: &zbus::Connection, cfg: &Config, n: &Note) -> Result<(), String> {
    let hook = n.field("hook").to_string();
    let request = n.field("request").to_string();
    if hook.is_empty() || n.kind != "request.pending" || request.is_empty() {
        return Ok(());
    }
    let answer = hook::ask(&hook, n, Duration::from_millis(cfg.hook_timeout_ms));
    let mgr = Some("org.jitd.Jitd1.Manager");
    let cast = match answer {
        Ok(hook::Answer::Pending) => return Ok(()),
        Ok(hook::Answer::Approve(m)) => {
            let comment = format!("hook: {m}");
            conn.call_method(
                Some(DEST),
                PATH,
                mgr,
                "Approve",
                &(request.as_str(), comment.as_str(), 0u64),
            )
            .await
            .map(|_| ())
        }
        Ok(hook::Answer::Deny(m)) => {
            let comment = if m.is_empty() {
                "hook: denied".to_string()
            } else {
                format!("hook: {m}")
            };
            conn.call_method(
                Some(DEST),
                PATH,
                mgr,
                "Deny",
                &(request.as_str(), comment.as_str()),
            )
            .await
            .map(|_| ())
        }
        Err(e) => {
            eprintln!("jitd-notify: {}: hook: {e}", n.id);
            let desc = format!("hook {hook}");
            let _: () = call(conn, "Failed", &(n.seq, desc, 1u64, e)).await?;
            return Ok(());
        }
    };
    // A vote jitd refuses (already voted after a redelivery, request decided meanwhile) is
    // jitd's answer, on record there; nothing to retry.
    if let Err(e) = cast {
        eprintln!("jitd-notify: {}: the hook's vote: {e}", n.id);
    }
    Ok(())
}

async fn deliver_one(conn: &zbus::Connection, cfg: &Config, n: &Note) -> Result<(), String> {
    run_hook(conn, cfg, n).await?;
    for sink in cfg.sinks.iter().filter(|s| routed(s, n)) {
        let mut delay = cfg.backoff_ms;
        let mut attempt = 1;
        loop {
            match sinks::deliver(sink, n) {
                Ok(()) => break,
                Err(e) if attempt >= cfg.max_attempts => {
                    eprintln!("jitd-notify: {} to {}: giving up: {e}", n.id, sink.name);
                    let desc = format!("{:?} {}", sink.kind, sink.name).to_lowercase();
                    let _: () = call(conn, "Failed", &(n.seq, desc, u64::from(attempt), e)).await?;
                    break;
                }
                Err(e) => {
                    eprintln!(
                        "jitd-notify: {} to {} (try {attempt}): {e}",
                        n.id, sink.name
                    );
                    std::thread::sleep(Duration::from_millis(delay));
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }
    let _: bool = call(conn, "Ack", &(n.seq,)).await?;
    Ok(())
}

async fn run(cfg: Config) -> Result<(), String> {
    let conn = zbus::Connection::system()
        .await
        .map_err(|e| format!("cannot reach the system bus: {e}"))?;
    let mut after: i64 = 0;
    loop {
        let rows: Vec<(i64, String, String, String)> = match call(&conn, "Fetch", &(after,)).await {
            Ok(rows) => rows,
            Err(e) => {
                // jitd restarting: try again after a poll.
                eprintln!("jitd-notify: {e}");
                after = 0;
                Vec::new()
            }
        };
        if rows.is_empty() {
            std::thread::sleep(Duration::from_millis(cfg.poll_ms));
            after = 0;
            continue;
        }
        for (seq, id, kind, body) in rows {
            let n = Note::new(seq, id, kind, body);
            deliver_one(&conn, &cfg, &n).await?;
            after = seq;
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut path = PathBuf::from("/etc/jitd/notify.toml");
    let mut check = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => path = args.next().map(PathBuf::from).unwrap_or(path),
            "--check" => check = true,
            _ => {
                eprintln!("usage: jitd-notify [--config FILE] [--check]");
                std::process::exit(2);
            }
        }
    }
    let cfg = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jitd-notify: {e}");
            std::process::exit(1);
        }
    };
    for s in &cfg.sinks {
        if let Some(f) = &s.secret_file
            && let Err(e) = sinks::read_secret(f)
        {
            eprintln!("jitd-notify: sink {:?}: {e}", s.name);
            std::process::exit(1);
        }
        // A CA file that cannot be read is a configuration error, said at start.
        if let Some(ca) = &s.ca_file
            && let Err(e) = tls::config(Some(ca))
        {
            eprintln!("jitd-notify: sink {:?}: {e}", s.name);
            std::process::exit(1);
        }
    }
    if check {
        return;
    }
    if let Err(e) = zbus::block_on(run(cfg)) {
        eprintln!("jitd-notify: {e}");
        std::process::exit(1);
    }
}
