//! `jitctl audit verify --file`: an auditor checks an export on their own machine, with no
//! daemon: the round trip from `jitctl audit export` verifies, and a record edited or removed
//! is caught with the line of the file it is on. Run by `tests/run` inside `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

mod ledger_common;

use std::process::Command;

use jitd_tests::*;
use ledger_common::*;

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn an_export_verifies_offline_and_a_tampered_line_is_named() {
    let sb = sandbox();
    ensure_user("alice");
    let mut d = start(&sb, "audit-file");
    let a = elevate("alice", "whoami");
    assert!(jitctl("alice", &["drop", &a]).status.success());
    let dir = sb.dir.join("audit-file-exports");
    std::fs::create_dir_all(&dir).unwrap();
    run(Command::new("chmod").arg("755").arg(&dir));
    let export = |format: &str| {
        let o = run(Command::new("jitctl").args(["audit", "export", "--format", format]));
        assert!(o.status.success(), "{}", stderr(&o));
        let p = dir.join(format!("export.{format}"));
        std::fs::write(&p, &o.stdout).unwrap();
        run(Command::new("chmod").arg("644").arg(&p));
        p
    };
    let (jsonl, csv) = (export("jsonl"), export("csv"));
    // No daemon from here on: the auditor's machine.
    d.stop();
    for f in [&jsonl, &csv] {
        let o = jitctl("alice", &["audit", "verify", "--file", f.to_str().unwrap()]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains("intact"), "{}", stdout(&o));
    }

    let text = std::fs::read_to_string(&jsonl).unwrap();
    let tamper = |name: &str, edit: &dyn Fn(Vec<&str>) -> Vec<String>| {
        let p = dir.join(name);
        std::fs::write(&p, edit(text.lines().collect()).join("\n")).unwrap();
        run(Command::new("chmod").arg("644").arg(&p));
        jitctl("alice", &["audit", "verify", "--file", p.to_str().unwrap()])
    };
    // Line 3's reason edited in its readable fields and its sealed line alike.
    let o = tamper("edited.jsonl", &|lines| {
        let mut out: Vec<String> = lines.iter().map(|l| (*l).to_string()).collect();
        out[2] = out[2].replace("uid=", "uid=9");
        out
    });
    assert_eq!(o.status.code(), Some(9), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("line 3 of"), "{}", stdout(&o));
    // Line 4 removed: the break shows at the record after it, now on line 4.
    let o = tamper("deleted.jsonl", &|mut lines| {
        lines.remove(3);
        lines.iter().map(|l| (*l).to_string()).collect()
    });
    assert_eq!(o.status.code(), Some(9), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("broken at seq") && stdout(&o).contains("line 4 of"),
        "{}",
        stdout(&o)
    );
    // Not an export at all: said, not a panic.
    let o = jitctl("alice", &["audit", "verify", "--file", "/etc/hostname"]);
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    let o = jitctl("alice", &["audit", "verify", "--file", "/nonexistent"]);
    assert!(
        !o.status.success() && stderr(&o).contains("/nonexistent"),
        "{}",
        stderr(&o)
    );
}
