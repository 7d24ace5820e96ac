//! Approvals signed with SSH keys by approvers who are not on the host, against the real
//! components: keys made here with the real ssh-keygen, `jitctl approve --sign` run with no bus
//! (the approver's laptop), `jitctl submit` on the host, jitd verifying with `ssh-keygen -Y
//! verify`, real sudo before and after, the state database across a restart. Run by
//! `tests/run` inside `tests/sandbox`; each test starts its own daemon.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::path::Path;

use jitd::signed_request as sr;
use jitd_tests::approvals::*;
use jitd_tests::signed::*;
use jitd_tests::*;

/// The value of `key="..."` in an audit line, unescaped.
fn audit_value(line: &str, key: &str) -> String {
    let start = line.find(&format!(" {key}=\"")).unwrap() + key.len() + 3;
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('u') => {
                    let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                Some(c) => out.push(c),
                None => {}
            },
            c => out.push(c),
        }
    }
    out
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn two_of_three_with_one_bus_vote_and_one_signed_token_and_no_replay() {
    let sb = setup();
    let keys = sb.dir.join("signed-quorum-keys");
    let carol = keygen(&keys, "carol");
    let mut d = start(&sb, "signed-quorum", POLICY, &[("carol", &carol)]);
    let id = ask(&["--for", "1h"]);

    let b = blob(&id);
    assert!(
        b.len() <= 1024,
        "a blob fits a chat message: {} bytes",
        b.len()
    );
    assert!(b.starts_with("-----BEGIN JITD REQUEST-----\nalice@sandbox asks for whoami for 1h"));
    let o = sign(&b, &carol, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The approver sees what they sign before anything is signed.
    for want in [
        "You are about to APPROVE",
        &id,
        "alice (uid",
        "sandbox (machine-id",
        "as root: /usr/bin/id -u",
        "1h (the rule allows at most 2h)",
        "restore the orders table",
    ] {
        assert!(stderr(&o).contains(want), "{want:?} in {}", stderr(&o));
    }
    let t = stdout(&o);
    assert!(t.contains("-----BEGIN SSH SIGNATURE-----"), "{t}");

    let o = approve("bob", &id, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!alice_may_sudo(), "one of two");
    let o = submit("alice", t.as_bytes());
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("approved"), "{}", stdout(&o));
    assert!(
        alice_may_sudo(),
        "bob on the bus and carol's token make two"
    );

    // The same token again, by anyone, now and after a restart: counted once.
    refused(&submit("eve", t.as_bytes()), "already used");
    d.restart();
    refused(&submit("eve", t.as_bytes()), "already used");

    // The token is in the audit trail, and verifies offline with ssh-keygen alone.
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("event=request.signed"))
        .unwrap_or_else(|| panic!("request.signed in {log}"));
    assert!(line.contains("principal=carol"), "{line}");
    let kept = audit_value(line, "token");
    let (payload, sig) = sr::untoken(kept.as_bytes()).unwrap();
    let dir = sb.dir.join("signed-quorum");
    std::fs::write(dir.join("offline.sig"), sig).unwrap();
    let o = jitd_tests::signed::as_user_fed(
        "root",
        &[
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            dir.join("approvers.allowed_signers").to_str().unwrap(),
            "-I",
            "carol",
            "-n",
            "jitd-approve-v1@example.org",
            "-s",
            dir.join("offline.sig").to_str().unwrap(),
        ],
        &payload,
    );
    assert!(
        o.status.success(),
        "offline verify: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn every_bad_token_is_refused_with_why_and_a_deny_token_ends_the_request() {
    let sb = setup();
    let keys = sb.dir.join("signed-bad-keys");
    let bob = keygen(&keys, "bob");
    let bob2 = keygen(&keys, "bob2");
    let carol = keygen(&keys, "carol");
    let dave = keygen(&keys, "dave");
    let alice = keygen(&keys, "alice");
    let aliceadm = keygen(&keys, "aliceadm");
    let stranger = keygen(&keys, "stranger");
    let mut d = start(
        &sb,
        "signed-bad",
        POLICY,
        &[
            ("bob", &bob),
            ("bob", &bob2),
            ("carol", &carol),
            ("dave", &dave),
            ("alice", &alice),
            ("aliceadm", &aliceadm),
        ],
    );
    let dir = sb.dir.join("signed-bad");
    let id = ask(&["--for", "1h"]);
    let b = blob(&id);
    let payload = sr::unblob(&b).unwrap();

    // Garbage: 1 MiB, binary, and a blob instead of a token.
    refused(&submit("eve", &vec![b'A'; 1 << 20]), "not a jitd token");
    refused(
        &submit("eve", &[0u8, 0xff, 0x13, 0x37, b'\n']),
        "not a jitd token",
    );
    refused(&submit("eve", b.as_bytes()), "not a jitd token");

    // A field changed after signing (the duration), the signature kept.
    let good = token(&b, &carol, &[]);
    let (_, sig) = sr::untoken(good.as_bytes()).unwrap();
    let text = String::from_utf8(payload.clone()).unwrap();
    let longer = text.replace("duration: 3600", "duration: 7200");
    refused(
        &submit("eve", sr::token(longer.as_bytes(), &sig).as_bytes()),
        "the token's duration is \"7200\" but this request's is \"3600\"",
    );
    // Properly signed, but for another host.
    let elsewhere = text.replace("hostname: sandbox", "hostname: db-7");
    let ns = "jitd-approve-v1@example.org";
    let t = sr::token(
        elsewhere.as_bytes(),
        &raw_signature(&carol, ns, elsewhere.as_bytes()),
    );
    refused(&submit("eve", t.as_bytes()), "it is for another host");
    // Signed over a re-serialised text (CRLF line ends), not the bytes jitd issued.
    let crlf = text.replace('\n', "\r\n");
    let t = sr::token(crlf.as_bytes(), &raw_signature(&carol, ns, crlf.as_bytes()));
    refused(&submit("eve", t.as_bytes()), "not a jitd request");
    // The issued bytes with a signature over the re-serialised ones.
    let t = sr::token(&payload, &raw_signature(&carol, ns, crlf.as_bytes()));
    refused(&submit("eve", t.as_bytes()), "does not verify");
    // Another namespace (a git or file signature by the same key).
    let t = sr::token(&payload, &raw_signature(&carol, "file", &payload));
    refused(&submit("eve", t.as_bytes()), "does not verify");
    // A key that is not an approver's.
    refused(
        &submit("eve", token(&b, &stranger, &[]).as_bytes()),
        "no key in",
    );
    // The requester's own key, and her second account's.
    refused(
        &submit("eve", token(&b, &alice, &[]).as_bytes()),
        "alice is the requester",
    );
    refused(
        &submit("eve", token(&b, &aliceadm, &[]).as_bytes()),
        "aliceadm is the requester",
    );
    // A revoked key (a KRL made with ssh-keygen -k).
    let o = run(std::process::Command::new("ssh-keygen")
        .args(["-k", "-f"])
        .arg(dir.join("approvers.revoked"))
        .arg(format!("{}.pub", dave.display())));
    assert!(o.status.success(), "{}", stderr(&o));
    refused(
        &submit("eve", token(&b, &dave, &[]).as_bytes()),
        "does not verify",
    );
    assert!(!alice_may_sudo(), "nothing counted so far");

    // Two keys of one person count once.
    let o = submit("eve", token(&b, &bob, &[]).as_bytes());
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1 of 2"), "{}", stdout(&o));
    refused(
        &submit("eve", token(&b, &bob2, &[]).as_bytes()),
        "already voted",
    );
    assert!(!alice_may_sudo());

    // This request's fields under another request's id, properly signed: refused for that
    // one (its nonce and privilege differ), and an unknown id is no request at all.
    let o = jitctl(
        "alice",
        &[
            "elevate",
            "gated-id",
            "--for",
            "1h",
            "--reason",
            "restore the orders table",
        ],
    );
    assert_eq!(o.status.code(), Some(12), "{}{}", stdout(&o), stderr(&o));
    let other_id = stdout(&o).split_whitespace().nth(1).unwrap().to_string();
    let other = text.replace(&format!("request: {id}"), &format!("request: {other_id}"));
    let t = sr::token(
        other.as_bytes(),
        &raw_signature(&carol, ns, other.as_bytes()),
    );
    refused(&submit("eve", t.as_bytes()), "it is for another request");
    let other = text.replace(&format!("request: {id}"), "request: r000000000000");
    let t = sr::token(
        other.as_bytes(),
        &raw_signature(&carol, ns, other.as_bytes()),
    );
    refused(&submit("eve", t.as_bytes()), "no request r000000000000");

    // A deny token beats the pending approval.
    let o = submit("eve", token(&b, &carol, &["--deny"]).as_bytes());
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("denied"), "{}", stdout(&o));
    assert!(!alice_may_sudo());
    // Now the good approval token has nothing to approve.
    refused(&submit("eve", good.as_bytes()), "no longer pending");

    // A keys file that does not pin every key to jitd's namespace is refused whole.
    let id = ask(&["--for", "1h"]);
    let b = blob(&id);
    trust(
        &dir,
        &[signer("carol", &carol, ""), format!("bob {}", public(&bob))],
    );
    refused(
        &submit("eve", token(&b, &carol, &[]).as_bytes()),
        "no namespaces",
    );
    d.stop();
}

#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn expired_requests_expired_keys_and_a_changed_policy_are_refused() {
    let sb = setup();
    let keys = sb.dir.join("signed-time-keys");
    let carol = keygen(&keys, "carol");
    let bob = keygen(&keys, "bob");
    let dir = sb.dir.join("signed-time");
    std::fs::create_dir_all(&dir).unwrap();
    // bob's key is valid for ten more minutes of real time.
    let o = run(std::process::Command::new("date").args(["-u", "-d", "+10 min", "+%Y%m%d%H%M%SZ"]));
    let until = stdout(&o).trim().to_string();
    trust(
        &dir,
        &[
            signer("carol", &carol, ""),
            signer("bob", &bob, &format!(",valid-before=\"{until}\"")),
        ],
    );
    let d = Daemon::start_with(&sb, "signed-time", POLICY, &config(&dir));
    let id = ask(&["--for", "1h"]);
    let b = blob(&id);
    // Twenty minutes later on jitd's clock bob's key has expired (jitd's time, not the token's).
    d.set_wall_offset_ms(20 * MIN);
    refused(
        &submit("eve", token(&b, &bob, &[]).as_bytes()),
        "not valid now",
    );
    // Past the request's hour, nothing approves it.
    let t = token(&b, &carol, &[]);
    d.set_wall_offset_ms(61 * MIN);
    refused(&submit("eve", t.as_bytes()), "expired");

    // The policy changes between the request and the token: ask again.
    d.set_wall_offset_ms(0);
    let id = ask(&["--for", "1h"]);
    let t = token(&blob(&id), &carol, &[]);
    d.set_policy(&POLICY.replace("max_duration = \"2h\"", "max_duration = \"3h\""));
    let o = as_user("root", &["jitctl", "reload"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    refused(&submit("eve", t.as_bytes()), "Request again");
}

/// The README's walkthrough, block by block as written: root sets up db-7, alice asks and puts
/// the blob in the chat (a shared directory here), carol signs it on her "laptop" (her own
/// HOME and key, no bus address, a terminal to say yes on), alice submits the token and sudo
/// works. Only `systemctl restart jitd` is the harness's restart, and the example request id
/// is the real one.
#[test]
#[ignore = "needs root and the sandbox: run tests/run"]
fn the_readme_walkthrough_laptop_approver_works_as_written() {
    let sb = setup();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("\n### ")
        .find(|s| s.starts_with("Approving from anywhere"))
        .expect("README has the signed-approval walkthrough");
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or(""))
        .collect();
    assert_eq!(blocks.len(), 4, "{section}");

    // The chat, and carol's laptop with her key.
    let chat = sb.dir.join("signed-readme-chat");
    let laptop = sb.dir.join("signed-readme-laptop");
    let _ = std::fs::remove_dir_all(&chat);
    let _ = std::fs::remove_dir_all(&laptop);
    std::fs::create_dir_all(&chat).unwrap();
    keygen(&laptop.join(".ssh"), "id_ed25519");
    std::fs::copy(laptop.join(".ssh/id_ed25519.pub"), chat.join("carol.pub")).unwrap();
    let o = run(std::process::Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(&chat));
    assert!(o.status.success());
    let o = run(std::process::Command::new("chown")
        .args(["-R", "carol:"])
        .arg(&laptop));
    assert!(o.status.success());

    // db-7: jitd as packaged, reading /etc/jitd.
    std::fs::create_dir_all("/etc/jitd/policy.d").unwrap();
    let mut d = Daemon::start(&sb, "signed-readme", "");
    d.set_config("policy_file", "\"/etc/jitd/policy.toml\"");
    d.set_config("policy_dir", "\"/etc/jitd/policy.d\"");
    d.set_config(
        "approvers_allowed_signers",
        "\"/etc/jitd/approvers.allowed_signers\"",
    );
    std::fs::copy(&d.config, "/etc/jitd/jitd.toml").unwrap();
    d.config = "/etc/jitd/jitd.toml".into();

    let in_chat = |user: &str, script: &str| {
        run(std::process::Command::new("su").args([
            user,
            "-s",
            "/bin/sh",
            "-c",
            &format!("cd {} && {script}", chat.display()),
        ]))
    };
    let root = blocks[0].replace("systemctl restart jitd\n", "");
    assert!(blocks[0].starts_with("# as root"), "{}", blocks[0]);
    let o =
        run(std::process::Command::new("sh")
            .args(["-ec", &format!("cd {}\n{root}", chat.display())]));
    assert!(
        o.status.success(),
        "root block: {}{}",
        stdout(&o),
        stderr(&o)
    );
    d.restart();

    // alice asks; the example id stands for the one jitd gave.
    let lines: Vec<&str> = blocks[1].lines().skip(1).collect();
    assert!(lines[0].starts_with("jitctl elevate"), "{lines:?}");
    let o = in_chat("alice", lines[0]);
    assert_eq!(o.status.code(), Some(12), "{}{}", stdout(&o), stderr(&o));
    let id = stdout(&o)
        .split_whitespace()
        .find(|w| w.starts_with('r') && w.len() == 13)
        .unwrap()
        .to_string();
    let o = in_chat("alice", &lines[1].replace("r5f0c2a9e13b7", &id));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    // carol, on her laptop: no jitd, no bus; she reads the request and answers y on her
    // terminal.
    let line = blocks[2].lines().nth(1).unwrap();
    let cmd = format!(
        "cd {} && env -i PATH=\"$PATH\" HOME={} sh -c '{line}'",
        chat.display(),
        laptop.display()
    );
    let o = as_user_fed("carol", &["script", "-qec", &cmd, "/dev/null"], b"y\n");
    let shown = stdout(&o);
    assert!(o.status.success(), "carol signs: {shown}{}", stderr(&o));
    for want in [
        "You are about to APPROVE",
        "alice (uid",
        "as root: /usr/bin/whoami",
        "30m (the rule allows at most 1h)",
        "replica lag after the failover",
        "approve it? [y/N]",
    ] {
        assert!(shown.contains(want), "{want:?} shown to carol: {shown}");
    }

    // alice hands the token in; sudo works.
    let o = in_chat(
        "alice",
        &blocks[3].lines().skip(1).collect::<Vec<_>>().join("\n"),
    );
    assert!(
        o.status.success(),
        "{}{}\n{}",
        stdout(&o),
        stderr(&o),
        d.log()
    );
    assert!(stdout(&o).lines().any(|l| l == "root"), "{}", stdout(&o));

    d.stop();
    for f in [
        "/etc/jitd/policy.d/check.toml",
        "/etc/jitd/approvers.allowed_signers",
        "/etc/jitd/jitd.toml",
    ] {
        let _ = std::fs::remove_file(f);
    }
}
