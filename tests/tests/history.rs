//! The audit trail as an auditor reads it: `jitctl history` (requests, also refused and
//! invalid ones, grants, sessions, commands), the audit export and its check, retention, and
//! the records forwarded off the host by a real rsyslog. Run by `tests/run` inside
//! `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

mod ledger_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use jitd_tests::*;
use ledger_common::*;
use serde_json::Value;

/// A user's history holds their refused and invalid requests next to their grants, newest
/// first, and pages with a cursor instead of stopping silently; only admins see everyone's.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn history_shows_refused_and_invalid_requests_and_pages_with_a_cursor() {
    let sb = sandbox();
    ensure_user("alice");
    ensure_user("bob");
    let _d = start(&sb, "ledger-history");
    let id = elevate("alice", "whoami");
    assert_eq!(
        jitctl("alice", &["elevate", "nothing-here", "--reason", "x"])
            .status
            .code(),
        Some(7),
        "an unknown privilege"
    );
    assert_eq!(
        jitctl("alice", &["elevate", "Bad Name!", "--reason", "x"])
            .status
            .code(),
        Some(6)
    );
    assert!(jitctl("alice", &["drop", &id]).status.success());
    elevate("bob", "whoami");

    let page = json_of(&jitctl("alice", &["--json", "history"]));
    let k = kinds(&page);
    assert_eq!(
        &k[..4],
        [
            "grant.dropped",
            "request.invalid",
            "request.denied",
            "grant.applied"
        ],
        "{page}"
    );
    assert!(k.contains(&"request.allowed".to_string()), "{k:?}");
    assert!(
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["user"] == "alice" || e["uid"] == uid_of("alice").unwrap()),
        "only alice's: {page}"
    );
    // Human output names the refusal.
    let text = stdout(&jitctl("alice", &["history"]));
    assert!(
        text.contains("request.denied") && text.contains("refused:"),
        "{text}"
    );

    // Pages: two at a time, the cursor leads on, nothing twice, nothing skipped.
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let mut args = vec!["--json", "history", "--limit", "2"];
        let c = cursor.map(|c| c.to_string());
        if let Some(c) = &c {
            args.extend(["--cursor", c.as_str()]);
        }
        let page = json_of(&jitctl("alice", &args));
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["seq"].as_i64().unwrap());
        }
        match page["next_cursor"].as_i64() {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let all_alice = kinds(&json_of(&jitctl(
        "alice",
        &["--json", "history", "--limit", "1000"],
    )));
    assert_eq!(seen.len(), all_alice.len());
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    assert!(
        text.contains("")
            && stdout(&jitctl("alice", &["history", "--limit", "2"])).contains("--cursor")
    );

    // Others' history: admins only.
    let o = jitctl("alice", &["history", "--all"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let o = jitctl("alice", &["history", "--user", "bob"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let all = json_of(&run(
        Command::new("jitctl").args(["--json", "history", "--all"])
    ));
    let users: Vec<&str> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["user"].as_str())
        .collect();
    assert!(users.contains(&"alice") && users.contains(&"bob"), "{all}");
    let bobs = json_of(&run(Command::new("jitctl").args([
        "--json",
        "history",
        "--user",
        "bob",
        "--since",
        "1d",
        "--privilege",
        "whoami",
    ])));
    assert!(!bobs["entries"].as_array().unwrap().is_empty());
    assert!(
        bobs["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["user"] == "bob" && e["privilege"] == "whoami"),
        "{bobs}"
    );
    let grants = json_of(&run(Command::new("jitctl").args([
        "--json",
        "history",
        "--all",
        "--kind",
        "grant.applied,request.denied",
    ])));
    let k = kinds(&grants);
    assert!(k.contains(&"grant.applied".to_string()) && k.contains(&"request.denied".to_string()));
    assert!(
        k.iter()
            .all(|k| k == "grant.applied" || k == "request.denied"),
        "{k:?}"
    );
    let future = json_of(&run(Command::new("jitctl").args([
        "--json",
        "history",
        "--all",
        "--since",
        "2099-01-01",
    ])));
    assert_eq!(future["entries"], Value::Array(vec![]));
    let o = run(Command::new("jitctl").args(["history", "--all", "--since", "last tuesday"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// An export (both formats, through the daemon and read directly) verifies; an edited record,
/// a deleted one, or a readable column that lies, does not.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn export_then_verify_round_trips_and_catches_tampering() {
    let sb = sandbox();
    ensure_user("alice");
    let mut d = start(&sb, "ledger-export");
    let id = elevate("alice", "whoami");
    // A reason a spreadsheet would run as a formula.
    let o = jitctl(
        "alice",
        &[
            "elevate",
            "quiet",
            "--for",
            "5m",
            "--reason",
            "=HYPERLINK(\"http://x\")",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(jitctl("alice", &["drop", &id]).status.success());

    let o = jitctl("alice", &["audit", "export"]);
    assert_eq!(o.status.code(), Some(4), "admins only: {}", stderr(&o));

    let dir = d.dir.clone();
    let save = |name: &str, o: &Output| -> PathBuf {
        assert!(o.status.success(), "{}", stderr(o));
        let p = dir.join(name);
        std::fs::write(&p, &o.stdout).unwrap();
        p
    };
    let jsonl = save(
        "export.jsonl",
        &run(Command::new("jitctl").args(["audit", "export", "--since", "1d"])),
    );
    let csv = save(
        "export.csv",
        &run(Command::new("jitctl").args(["audit", "export", "--format", "csv"])),
    );
    let text = std::fs::read_to_string(&jsonl).unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for key in [
        "host",
        "seq",
        "time",
        "kind",
        "fields",
        "hash",
        "prev_hash",
        "line",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    assert_eq!(first["host"], "sandbox");
    assert!(first["time"].as_str().unwrap().ends_with('Z'), "{first}");
    assert!(text.contains("\"kind\":\"grant.applied\""), "{text}");
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(csv_text.starts_with("host,seq,time,"), "{csv_text}");
    assert!(
        !csv_text.contains(",=") && !csv_text.contains("\n="),
        "{csv_text}"
    );

    for f in [&jsonl, &csv] {
        let o = jitd(&d, &["audit", "verify", "--file", f.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{}: {}{}",
            f.display(),
            stdout(&o),
            stderr(&o)
        );
        assert!(stdout(&o).contains("intact"), "{}", stdout(&o));
    }

    // Read directly, with the daemon stopped: the same records.
    d.stop();
    let direct = jitd(&d, &["audit", "export"]);
    assert!(direct.status.success(), "{}", stderr(&direct));
    assert_eq!(stdout(&direct), text);

    let tampered = |name: &str, edit: &dyn Fn(&str) -> String| -> Output {
        let p = d.dir.join(name);
        std::fs::write(&p, edit(&text)).unwrap();
        jitd(&d, &["audit", "verify", "--file", p.to_str().unwrap()])
    };
    let o = tampered("edited.jsonl", &|t| {
        t.replacen("INC-1 disk", "INC-1 dusk", 2)
    });
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let o = tampered("deleted.jsonl", &|t| {
        let mut lines: Vec<&str> = t.lines().collect();
        lines.remove(2);
        lines.join("\n")
    });
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("broken at seq"), "{}", stdout(&o));
    let o = tampered("lying.jsonl", &|t| {
        t.replacen(
            "\"kind\":\"grant.applied\"",
            "\"kind\":\"grant.revoked\"",
            1,
        )
    });
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("export altered"), "{}", stdout(&o));
    let o = jitd(&d, &["audit", "verify", "--file", "/nonexistent"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Records past `audit_retention_days` are purged, and what remains still verifies from the
/// checkpoint kept (database and export alike); a record deleted after it still shows.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn retention_purges_old_records_and_the_rest_still_verifies() {
    let sb = sandbox();
    ensure_user("alice");
    let mut d = Daemon::start_with(
        &sb,
        "ledger-retention",
        POLICY,
        "calls_per_sec = 1000.0\ncalls_burst = 1000\naudit_retention_days = 1\n",
    );
    let a = elevate("alice", "whoami");
    assert!(jitctl("alice", &["drop", &a]).status.success());
    assert!(!d.log().contains("event=audit.purged"));
    // Two days on.
    d.set_wall_offset_ms(2 * 86_400_000);
    d.restart();
    wait_for(Duration::from_secs(5), "the purge", || {
        d.log().contains("event=audit.purged")
    });
    let o = jitd(&d, &["audit", "verify"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("purged by audit_retention"),
        "{}",
        stdout(&o)
    );
    // alice's old grant is gone from history, the purge itself is on record.
    let h = json_of(&jitctl("alice", &["--json", "history"]));
    assert!(!h.to_string().contains(&a), "{h}");
    let export = run(Command::new("jitctl").args(["audit", "export"]));
    let file = d.dir.join("after-purge.jsonl");
    std::fs::write(&file, &export.stdout).unwrap();
    assert!(stdout(&export).contains("\"kind\":\"audit.purged\""));
    let o = jitd(&d, &["audit", "verify", "--file", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // Tampering after the checkpoint is still caught.
    elevate("alice", "whoami");
    d.stop();
    let db = d.state_db();
    let mid: String = stdout(&run(Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT seq FROM audit ORDER BY seq LIMIT 1 OFFSET 1")));
    let o = run(Command::new("sqlite3")
        .arg(&db)
        .arg(format!("DELETE FROM audit WHERE seq = {}", mid.trim())));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = jitd(&d, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

/// A real rsyslog (rsyslogd 8 from Debian, unpacked under target/: nothing is installed or
/// started on the host), on the syslog socket jitd finds in the sandbox.
struct Rsyslog {
    children: Vec<std::process::Child>,
    socket: PathBuf,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Later tests in this sandbox log to stderr again.
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// rsyslogd unpacked from Debian's packages under `target/rsyslog` (fetched once).
fn rsyslogd() -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rsyslog");
    let root = dir.join("root");
    let bin = root.join("usr/sbin/rsyslogd");
    if !bin.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let o = run(Command::new("apt-get")
            .args(["download", "rsyslog", "libestr0", "libfastjson4"])
            .current_dir(&dir));
        assert!(o.status.success(), "apt-get download: {}", stderr(&o));
        for deb in std::fs::read_dir(&dir).unwrap().flatten() {
            if deb.path().extension().is_some_and(|e| e == "deb") {
                let o = run(Command::new("dpkg").arg("-x").arg(deb.path()).arg(&root));
                assert!(o.status.success(), "{}", stderr(&o));
            }
        }
    }
    (bin, root.join("usr/lib/x86_64-linux-gnu"))
}

fn start_rsyslog(
    dir: &Path,
    name: &str,
    conf: &str,
    libs: &Path,
    bin: &Path,
) -> std::process::Child {
    let work = dir.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    let conf_path = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf_path,
        format!("global(workDirectory=\"{}\")\n{conf}", work.display()),
    )
    .unwrap();
    Command::new(bin)
        .args(["-n", "-M"])
        .arg(libs.join("rsyslog"))
        .arg("-f")
        .arg(&conf_path)
        .arg("-i")
        .arg(dir.join(format!("{name}.pid")))
        .env("LD_LIBRARY_PATH", libs)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.err"))).unwrap())
        .spawn()
        .expect("start rsyslogd")
}

/// The shipped forwarding recipe, in a real rsyslog, brings every record of a grant's life to
/// a second rsyslog standing for the collector, each with its chain head; the collector's copy
/// checks the database (`jitd audit verify --against-syslog`).
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_rsyslog_recipe_forwards_every_record_of_a_grants_life() {
    let sb = sandbox();
    ensure_user("alice");
    let (bin, libs) = rsyslogd();
    let dir = sb.dir.join("rsyslog");
    std::fs::create_dir_all(&dir).unwrap();
    // jitd logs to /dev/log, else /var/run/syslog: the sandbox's own /run.
    assert!(
        !Path::new("/dev/log").exists(),
        "the host has a syslog socket: not in a sandbox?"
    );
    let socket = PathBuf::from("/run/syslog");
    let received = dir.join("collector.log");
    let port = 20_000 + std::process::id() % 20_000;
    let recipe = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/rsyslog/60-jitd-forward.conf"),
    )
    .unwrap()
    .replace(
        "target=\"COLLECTOR\" port=\"514\"",
        &format!("target=\"127.0.0.1\" port=\"{port}\""),
    );
    let mut guard = Rsyslog {
        children: Vec::new(),
        socket: socket.clone(),
    };
    guard.children.push(start_rsyslog(
        &dir,
        "collector",
        &format!(
            "module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
             *.* action(type=\"omfile\" file=\"{}\")\n",
            received.display()
        ),
        &libs,
        &bin,
    ));
    guard.children.push(start_rsyslog(
        &dir,
        "host",
        &format!(
            "module(load=\"imuxsock\" SysSock.Name=\"{}\")\n{recipe}",
            socket.display()
        ),
        &libs,
        &bin,
    ));
    wait_for(Duration::from_secs(10), "the host's rsyslog socket", || {
        socket.exists()
    });

    let d = start(&sb, "history-rsyslog");
    let a = elevate("alice", "whoami");
    assert!(sudo_as("alice", "/usr/bin/id -u").status.success());
    let _ = jitctl("alice", &["elevate", "nothing-here", "--reason", "x"]);
    wait_for(Duration::from_secs(10), "the command in the ledger", || {
        json_of(&jitctl("alice", &["--json", "show", &a]))["commands"][0]["exit"] == 0
    });
    assert!(jitctl("alice", &["drop", &a]).status.success());

    let text = || std::fs::read_to_string(&received).unwrap_or_default();
    wait_for(
        Duration::from_secs(15),
        "the end of the grant at the collector",
        || text().contains(&format!("event=grant.dropped grant={a}")),
    );
    let got = text();
    for kind in [
        "request.allowed",
        "grant.applied",
        "command.run",
        "command.exited",
        "request.denied",
        "grant.dropped",
    ] {
        assert!(
            got.contains(&format!("event={kind} ")),
            "{kind} missing:\n{got}"
        );
    }
    // Every record, not only the grant's: seq 1..N, each once, each with its head.
    let seqs: Vec<i64> = got
        .lines()
        .filter_map(|l| l.split(" seq=").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse().ok())
        .collect();
    let last = *seqs.iter().max().unwrap();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, (1..=last).collect::<Vec<_>>(), "{got}");
    // The collector's copy checks the host's database.
    let o = jitd(
        &d,
        &[
            "audit",
            "verify",
            "--against-syslog",
            received.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    drop(guard);
}
