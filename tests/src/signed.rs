//! What the signed-approval suite shares: approvers' SSH keys made by the test, the
//! allowed_signers file jitd trusts, and the steps of the fleet story — the blob a requester
//! pastes, `jitctl approve --sign` on the approver's machine (no jitd, no bus), and `jitctl
//! submit` back on the host.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::*;

pub const SITE: &str = "example.org";

/// jitd.toml lines for signed approvals with the files under `dir`.
pub fn config(dir: &Path) -> String {
    format!(
        "site = \"{SITE}\"\napprovers_allowed_signers = {:?}\napprovers_revoked = {:?}\n",
        dir.join("approvers.allowed_signers"),
        dir.join("approvers.revoked")
    )
}

/// A fresh ed25519 key `name` under `dir` (no passphrase); returns the private key's path.
pub fn keygen(dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let key = dir.join(name);
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(key.with_extension("pub"));
    let o = run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key));
    assert!(o.status.success(), "ssh-keygen: {}", stderr(&o));
    key
}

pub fn public(key: &Path) -> String {
    std::fs::read_to_string(format!("{}.pub", key.display()))
        .unwrap()
        .trim()
        .to_string()
}

/// The allowed_signers line of `principal`'s `key`, pinned to jitd's approval namespace.
pub fn signer(principal: &str, key: &Path, extra: &str) -> String {
    format!(
        "{principal} namespaces=\"jitd-approve-v1@{SITE}\"{extra} {}",
        public(key)
    )
}

/// Writes approvers.allowed_signers under `dir` (root, 0644, as an admin would).
pub fn trust(dir: &Path, lines: &[String]) {
    let path = dir.join("approvers.allowed_signers");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Runs `args` as `user` with `input` on stdin.
pub fn as_user_fed(user: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new("runuser")
        .args(["-u", user, "--"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A 1 MiB garbage token may be refused before it is all read: a broken pipe is fine.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// The blob of request `id`, as its requester prints it on the host.
pub fn blob(id: &str) -> String {
    let o = as_user("alice", &["jitctl", "requests", "--blob", id]);
    assert!(o.status.success(), "blob: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// `jitctl approve --sign --yes --key KEY -` on the approver's machine: no jitd and no bus
/// there (the environment is emptied, so not even a session bus address is known).
pub fn sign(blob: &str, key: &Path, extra: &[&str]) -> Output {
    let mut child = Command::new("jitctl")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", "/nonexistent")
        .args(["approve", "--sign", "--yes", "--key"])
        .arg(key)
        .args(extra)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(blob.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A token for `blob` signed with `key`, which must succeed.
pub fn token(blob: &str, key: &Path, extra: &[&str]) -> String {
    let o = sign(blob, key, extra);
    assert!(o.status.success(), "sign: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// `jitctl submit -` as `user` with `token` on stdin.
pub fn submit(user: &str, token: &[u8]) -> Output {
    as_user_fed(user, &["jitctl", "submit", "-"], token)
}

/// Signs raw `bytes` with `key` under `namespace` (`ssh-keygen -Y sign` itself: for tokens
/// jitctl would never make).
pub fn raw_signature(key: &Path, namespace: &str, bytes: &[u8]) -> String {
    let mut child = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "ssh-keygen -Y sign: {}", stderr(&o));
    stdout(&o)
}

/// Starts jitd `name` trusting `signers` (principal, key) for signed approvals.
pub fn start(sb: &Sandbox, name: &str, policy: &str, signers: &[(&str, &Path)]) -> Daemon {
    let dir = sb.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(dir.join("approvers.revoked"));
    let lines: Vec<String> = signers.iter().map(|(p, k)| signer(p, k, "")).collect();
    trust(&dir, &lines);
    Daemon::start_with(sb, name, policy, &config(&dir))
}

pub fn refused(o: &std::process::Output, want: &str) {
    assert!(!o.status.success(), "refused: {}{}", stdout(o), stderr(o));
    assert!(
        stderr(o).contains(want),
        "{want:?} in the refusal: {}{}",
        stdout(o),
        stderr(o)
    );
}
