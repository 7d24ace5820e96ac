//! `reauth = true` through the real polkitd: jitctl starts the real text agent (pkttyagent),
//! polkit asks on alice's terminal (a pty from `script`), the real PAM stack checks her real
//! password (set with chpasswd in the sandbox's /etc), and only then is the request decided.
//! A wrong password, no terminal, or the sudo prompt grant nothing. Run by `tests/run` inside
//! `tests/sandbox`.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};

use jitd_tests::approvals::*;
use jitd_tests::*;

const REAUTH: &str = r#"
[privilege.whoami]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u"]

[[rule]]
name = "prove it"
users = ["alice"]
privileges = ["whoami"]
max_duration = "1h"
default_duration = "10m"
reason_min_chars = 8
reauth = true
"#;

/// `jitctl ARGS` as alice on a terminal of its own (a pty from `script`), typing `password`
/// when the agent asks for it (typed earlier, it would be flushed when echo goes off).
fn on_terminal(args: &str, password: &str) -> Output {
    let mut child = Command::new("su")
        .args(["alice", "-s", "/bin/sh", "-c"])
        .arg(format!("script -qec 'jitctl {args}' /dev/null"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let asked = || String::from_utf8_lossy(&seen.lock().unwrap()).contains("Password:");
    let start = std::time::Instant::now();
    while !asked()
        && start.elapsed() < std::time::Duration::from_secs(10)
        && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if asked() {
        stdin.write_all(format!("{password}\n").as_bytes()).unwrap();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let stdout = seen.lock().unwrap().clone();
    Output {
        status,
        stdout,
        stderr: stderr.into_bytes(),
    }
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_reauth_rule_grants_only_after_polkit_confirms_the_password() {
    let sb = setup();
    let mut c = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(b"alice:correct horse 42\n")
        .unwrap();
    assert!(c.wait().unwrap().success(), "chpasswd");
    let _pk = Polkit::start("");
    let d = Daemon::start(&sb, "reauth", REAUTH);
    let elevate = "elevate whoami --reason \"checking the root shell\"";

    // A wrong password: polkit says no, nothing is asked of the policy.
    let o = on_terminal(elevate, "wrong");
    let out = stdout(&o) + &stderr(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("needs you to re-authenticate, and polkit did not confirm it"),
        "{out}"
    );
    assert!(!alice_may_sudo());

    // Without a terminal no agent can ask: refused, saying what to do.
    let o = jitctl(
        "alice",
        &["elevate", "whoami", "--reason", "checking the root shell"],
    );
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(!alice_may_sudo());

    // The right password on her terminal: granted.
    let o = on_terminal(elevate, "correct horse 42");
    let out = stdout(&o) + &stderr(&o);
    assert!(o.status.success(), "{out}\n{}", d.log());
    assert!(out.contains("Granted whoami"), "{out}");
    assert!(alice_may_sudo());
    let log = d.log();
    assert!(log.contains("event=request.reauth uid="), "{log}");
    assert!(log.contains("privilege=whoami answer=no"), "{log}");
    assert!(log.contains("privilege=whoami answer=yes"), "{log}");
}
