//! `mfa = "ssh-sk"` rules against the real components: the requester signs jitd's nonce with
//! their own key (made here with the real ssh-keygen; plain ed25519, since no FIDO key is
//! attached to this machine — the presence-flag check of FIDO signatures is a unit test of
//! `jitd::sshsig` over a fixture built to OpenSSH's layout), jitd verifies it with `ssh-keygen
//! -Y verify` against users.allowed_signers, and real sudo says whether it worked.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use jitd_tests::approvals::alice_may_sudo;
use jitd_tests::signed::*;
use jitd_tests::*;

const POLICY: &str = r#"
[privilege.whoami]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -u"]

[privilege.groupid]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/id -g"]

[[rule]]
name = "with a key"
users = ["alice"]
privileges = ["whoami", "groupid"]
max_duration = "1h"
mfa = "ssh-sk"
"#;

fn elevate(privilege: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "jitctl",
        "elevate",
        privilege,
        "--reason",
        "restore the orders table",
    ];
    args.extend_from_slice(extra);
    as_user("alice", &args)
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn a_request_needs_a_fresh_proof_by_the_requesters_own_key_and_a_proof_counts_once() {
    let sb = sandbox();
    for u in ["alice", "bob", "eve"] {
        ensure_user(u);
    }
    let dir = sb.dir.join("mfa");
    let keys = sb.dir.join("mfa-keys");
    let alice = keygen(&keys, "alice");
    let bob = keygen(&keys, "bob");
    // alice holds both keys for the test (bob's to try it as hers).
    let o = run(std::process::Command::new("chown")
        .args(["-R", "alice:"])
        .arg(&keys));
    assert!(o.status.success());
    std::fs::create_dir_all(&dir).unwrap();
    let line = |who: &str, key: &std::path::Path| {
        format!("{who} namespaces=\"jitd-mfa-v1@{SITE}\" {}", public(key))
    };
    let users = dir.join("users.allowed_signers");
    std::fs::write(
        &users,
        format!("{}\n{}\n", line("alice", &alice), line("bob", &bob)),
    )
    .unwrap();
    let cfg = format!("{}users_allowed_signers = {users:?}\n", config(&dir));
    let _d = Daemon::start_with(&sb, "mfa", POLICY, &cfg);

    // Without a proof: refused, saying how.
    let o = elevate("whoami", &[]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("--mfa-key"), "{}", stderr(&o));
    assert!(!alice_may_sudo());

    // A proof made and handed in; the next request uses it.
    let o = as_user(
        "alice",
        &["jitctl", "mfa", "--key", alice.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let proof = stdout(&o);
    let o = elevate("whoami", &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(alice_may_sudo(), "granted with a fresh proof");

    // The same proof again, by alice or by someone else: refused.
    let o = as_user_fed(
        "alice",
        &["jitctl", "mfa", "--proof", "-"],
        proof.as_bytes(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already used"), "{}", stderr(&o));
    let o = as_user_fed("eve", &["jitctl", "mfa", "--proof", "-"], proof.as_bytes());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no challenge jitd gave you"),
        "{}",
        stderr(&o)
    );
    // One proof, one request: the second needs its own.
    let o = elevate("groupid", &[]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("needs a fresh proof"), "{}", stderr(&o));

    // Someone else's key is not alice's proof.
    let o = elevate("groupid", &["--mfa-key", bob.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("the key is bob's"), "{}", stderr(&o));
    // Her own key, fresh: granted.
    let o = elevate("groupid", &["--mfa-key", alice.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}
