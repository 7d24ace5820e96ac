//! Signed approvals, the rest of the way: `jitctl elevate --wait` showing the blob and
//! returning once a token decides, and how long a token takes to verify. Run by `tests/run`
//! inside `tests/sandbox`; each test starts its own daemon.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use jitd_tests::approvals::*;
use jitd_tests::signed::*;
use jitd_tests::*;

/// How long a token takes to verify, end to end: `jitctl submit` of a token whose signature
/// verifies (both ssh-keygen runs) and is then refused (the requester's own key, so nothing is
/// consumed and it can be sent again). Prints p50/p99; fails only when something hangs.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn token_verification_time() {
    let sb = setup();
    let keys = sb.dir.join("signed-bench-keys");
    let alice = keygen(&keys, "alice");
    let dir = sb.dir.join("signed-bench");
    std::fs::create_dir_all(&dir).unwrap();
    trust(&dir, &[signer("alice", &alice, "")]);
    // The per-uid call limits would measure themselves, not the verification.
    let limits = "calls_per_sec = 1000.0\ncalls_burst = 1000\n";
    let _d = Daemon::start_with(&sb, "signed-bench", POLICY, &(config(&dir) + limits));
    let id = ask(&["--for", "1h"]);
    let t = token(&blob(&id), &alice, &[]);
    let runs: usize = std::env::var("SIGNED_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let started = std::time::Instant::now();
            let o = submit("eve", t.as_bytes());
            let took = started.elapsed().as_secs_f64() * 1000.0;
            refused(&o, "alice is the requester");
            took
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    println!(
        "token verification (jitctl submit, 2x ssh-keygen -Y): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, n {}",
        at(0.5),
        at(0.99),
        ms[ms.len() - 1],
        ms.len()
    );
    assert!(
        at(0.99) < 1000.0,
        "a verification took over a second: {ms:?}"
    );
}

/// `jitctl elevate --wait` shows the blob while it waits, and returns granted once a signed
/// token (with one bus approval) makes the quorum.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn elevate_wait_prints_the_blob_and_returns_when_a_token_decides() {
    let sb = setup();
    let keys = sb.dir.join("signed-wait-keys");
    let carol = keygen(&keys, "carol");
    let _d = start(&sb, "signed-wait", POLICY, &[("carol", &carol)]);
    let child = elevate_wait(std::process::Stdio::null());
    let id = pending_id();
    let b = blob(&id);
    assert!(approve("bob", &id, &[]).status.success());
    let o = submit("eve", token(&b, &carol, &[]).as_bytes());
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(b.trim()), "the blob in {}", stdout(&o));
    assert!(
        stdout(&o).contains("jitctl approve --sign -"),
        "{}",
        stdout(&o)
    );
    assert!(alice_may_sudo());
}

/// The requester pastes the token into the `elevate --wait` that is waiting for it: handed in,
/// granted, and the wait returns; a garbage paste before it is said to be refused and the wait
/// goes on.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_token_pasted_into_elevate_wait_is_handed_in() {
    use std::io::Write;
    let sb = setup();
    let keys = sb.dir.join("signed-paste-keys");
    let carol = keygen(&keys, "carol");
    let dave = keygen(&keys, "dave");
    let _d = start(
        &sb,
        "signed-paste",
        POLICY,
        &[("carol", &carol), ("dave", &dave)],
    );
    let mut child = elevate_wait(std::process::Stdio::piped());
    let id = pending_id();
    let b = blob(&id);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"not a token\n-----END SSH SIGNATURE-----\n")
        .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Two approvals are needed: carol's and dave's tokens, pasted one after the other.
    for key in [&carol, &dave] {
        stdin.write_all(token(&b, key, &[]).as_bytes()).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
    }
    drop(stdin);
    wait_for(
        std::time::Duration::from_secs(10),
        "elevate --wait to return once the pasted tokens decide",
        || matches!(child.try_wait(), Ok(Some(_))),
    );
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("the pasted token was refused"),
        "{}",
        stderr(&o)
    );
    assert!(alice_may_sudo());
}

/// alice's `jitctl elevate whoami --wait`, running.
fn elevate_wait(stdin: std::process::Stdio) -> std::process::Child {
    std::process::Command::new("runuser")
        .args([
            "-u",
            "alice",
            "--",
            "jitctl",
            "elevate",
            "whoami",
            "--wait",
            "--reason",
            "restore the orders table",
        ])
        .stdin(stdin)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The id of alice's pending request, once it is listed.
fn pending_id() -> String {
    let mut id = String::new();
    wait_for(std::time::Duration::from_secs(5), "the request", || {
        let o = as_user("alice", &["jitctl", "requests"]);
        id = stdout(&o)
            .split_whitespace()
            .find(|w| {
                w.starts_with('r') && w.len() == 13 && w[1..].chars().all(|c| c.is_ascii_hexdigit())
            })
            .unwrap_or("")
            .to_string();
        !id.is_empty()
    });
    id
}
