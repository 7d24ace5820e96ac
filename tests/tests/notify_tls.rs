//! Notifications over TLS and by mail, end to end: the real `jitd-notify` (its own account)
//! posts to HTTPS receivers on 127.0.0.1 whose certificates come from a CA this test makes
//! with openssl, sends mail through a relay that offers STARTTLS, and hands mail to a
//! `sendmail` program. TLS failures (a CA nobody configured, a certificate for another name)
//! are failed attempts, retried, then `notify.failed`; the notifier goes on.

#![allow(clippy::disallowed_methods)] // an end-to-end suite runs real processes and waits

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jitd_tests::approvals::{self, ask};
use jitd_tests::notify::*;
use jitd_tests::signed;
use jitd_tests::*;

fn openssl(dir: &Path, args: &[&str]) {
    let o = run(Command::new("openssl").current_dir(dir).args(args));
    assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
}

/// A CA (`<ca>.crt`, `<ca>.key`) made here.
fn ca(dir: &Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=jitd test {ca}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
        ],
    );
}

/// A server certificate `<name>.crt`/`<name>.key` for `san`, issued by `ca`.
fn server_cert(dir: &Path, ca: &str, name: &str, san: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!(
            "subjectAltName={san}\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

fn failed_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("event=notify.failed"))
        .collect()
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn https_sinks_deliver_with_the_configured_ca_and_tls_failures_end_in_notify_failed() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-tls");
    ca(&dir, "ca");
    ca(&dir, "rogue");
    server_cert(&dir, "ca", "good", "IP:127.0.0.1,DNS:localhost");
    server_cert(&dir, "rogue", "unknown", "IP:127.0.0.1,DNS:localhost");
    server_cert(&dir, "ca", "othername", "DNS:other.example");
    run(Command::new("chmod").arg("644").arg(dir.join("ca.crt")));
    let mut kids = Kids(Vec::new());
    let secret = dir.join("webhook-secret");
    let hooks = dir.join("hooks.jsonl");
    let tls = |n: &str| (dir.join(format!("{n}.crt")), dir.join(format!("{n}.key")));
    let (gc, gk) = tls("good");
    let good = serve(&mut kids, &dir, "receiver.py", &[&secret, &hooks, &gc, &gk]);
    let (uc, uk) = tls("unknown");
    let stray = dir.join("stray.jsonl");
    let unknown = serve(&mut kids, &dir, "receiver.py", &[&secret, &stray, &uc, &uk]);
    let (oc, ok) = tls("othername");
    let other = serve(&mut kids, &dir, "receiver.py", &[&secret, &stray, &oc, &ok]);
    let ca_file = dir.join("ca.crt");
    std::fs::write(
        dir.join("notify.toml"),
        format!(
            "poll_ms = 100\nbackoff_ms = 50\nmax_attempts = 2\n\
             [[sink]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"https://127.0.0.1:{good}/jitd\"\n\
             secret_file = {secret:?}\nca_file = {ca_file:?}\n\
             [[sink]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"https://localhost:{good}/slack\"\n\
             ca_file = {ca_file:?}\nevents = [\"request.pending\"]\n\
             [[sink]]\nname = \"no-ca\"\nkind = \"webhook\"\nurl = \"https://127.0.0.1:{good}/jitd\"\n\
             secret_file = {secret:?}\nevents = [\"request.pending\"]\n\
             [[sink]]\nname = \"rogue-ca\"\nkind = \"webhook\"\nurl = \"https://127.0.0.1:{unknown}/jitd\"\n\
             secret_file = {secret:?}\nca_file = {ca_file:?}\nevents = [\"request.pending\"]\n\
             [[sink]]\nname = \"wrong-name\"\nkind = \"teams\"\nurl = \"https://127.0.0.1:{other}/teams\"\n\
             ca_file = {ca_file:?}\nevents = [\"request.pending\"]\n"
        ),
    )
    .unwrap();
    let o = run(Command::new(sb.bin.join("jitd-notify"))
        .arg("--check")
        .arg("--config")
        .arg(dir.join("notify.toml")));
    assert!(o.status.success(), "--check: {}", stderr(&o));

    let d = Daemon::start(&sb, "notify-tls-d", approvals::POLICY);
    let mut notifier = start_notifier(&sb, &dir);
    let id = ask(&[]);
    wait_for(
        Duration::from_secs(15),
        "three TLS failures on record",
        || failed_lines(&d.log()).len() >= 3,
    );
    let nlog = std::fs::read_to_string(dir.join("notify.log")).unwrap_or_default();

    // Over HTTPS, signed, and the chat message too.
    let got = lines(&hooks);
    let pending = got
        .iter()
        .find(|g| g["id"] == format!("request.pending:{id}"))
        .unwrap_or_else(|| panic!("no pending note over https: {got:?}\n{nlog}"));
    assert_eq!(pending["body"]["command"], format!("jitctl approve {id}"));
    assert!(
        got.iter().any(|g| g["path"] == "/slack"),
        "no slack message over https: {got:?}\n{nlog}"
    );
    assert!(
        lines(&stray).is_empty(),
        "a certificate that does not verify was trusted"
    );

    // Each failure is on record after its two tries, naming the sink; the notifier lives on.
    let log = d.log();
    let failed = failed_lines(&log);
    for sink in ["no-ca", "rogue-ca", "wrong-name"] {
        let l = failed
            .iter()
            .find(|l| l.contains(sink))
            .unwrap_or_else(|| panic!("no notify.failed for {sink}: {failed:?}"));
        assert!(l.contains("attempts=2"), "{l}");
    }
    assert!(nlog.contains("UnknownIssuer"), "{nlog}");
    assert!(nlog.contains("certificate not valid for name"), "{nlog}");
    assert!(
        notifier.try_wait().unwrap().is_none(),
        "the notifier died:\n{nlog}"
    );

    // Later notes still go out: the decision reaches the requester's sink over HTTPS.
    assert!(approvals::approve("bob", &id, &[]).status.success());
    assert!(approvals::approve("carol", &id, &[]).status.success());
    wait_for(Duration::from_secs(10), "the decision over https", || {
        lines(&hooks)
            .iter()
            .any(|g| g["body"]["kind"] == "request.approved")
    });
    let _ = notifier.kill();
    let _ = notifier.wait();
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn mail_goes_over_starttls_to_a_relay_and_as_a_proper_message_to_sendmail() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-mail");
    ca(&dir, "ca");
    server_cert(&dir, "ca", "relay", "IP:127.0.0.1,DNS:localhost");
    run(Command::new("chmod").arg("644").arg(dir.join("ca.crt")));
    run(Command::new("chmod").arg("777").arg(&dir));
    let mut kids = Kids(Vec::new());
    let tls_mails = dir.join("tls-mails.jsonl");
    let plain_mails = dir.join("plain-mails.jsonl");
    let (rc, rk) = (dir.join("relay.crt"), dir.join("relay.key"));
    let tls_relay = serve(&mut kids, &dir, "smtpd.py", &[&tls_mails, &rc, &rk]);
    let plain_relay = serve(&mut kids, &dir, "smtpd.py", &[&plain_mails]);
    // sendmail's interface: the message on stdin, the arguments on the first line of its file.
    let sendmail = dir.join("sendmail");
    let sent = dir.join("sent");
    std::fs::write(
        &sendmail,
        format!("#!/bin/sh\nd=$(mktemp -d {dir:?}/m.XXXXXX)\necho \"$@\" > \"$d/args\"\ncat > \"$d/msg\"\nmv \"$d\" {sent:?}\n"),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&sendmail));
    let ca_file = dir.join("ca.crt");
    std::fs::write(
        dir.join("notify.toml"),
        format!(
            "poll_ms = 100\nbackoff_ms = 50\nmax_attempts = 2\n\
             [[sink]]\nname = \"tls-relay\"\nkind = \"smtp\"\nrelay = \"127.0.0.1:{tls_relay}\"\n\
             starttls = \"required\"\nca_file = {ca_file:?}\nfrom = \"jitd@sandbox.example\"\n\
             to = [\"approvers@example.com\"]\nevents = [\"request.pending\"]\n\
             [[sink]]\nname = \"plain-but-required\"\nkind = \"smtp\"\nrelay = \"127.0.0.1:{plain_relay}\"\n\
             starttls = \"required\"\nfrom = \"jitd@sandbox.example\"\n\
             to = [\"approvers@example.com\"]\nevents = [\"request.pending\"]\n\
             [[sink]]\nname = \"local\"\nkind = \"smtp\"\ntransport = \"sendmail\"\n\
             sendmail = {sendmail:?}\nfrom = \"jitd@sandbox.example\"\n\
             to = [\"approvers@example.com\"]\nuser_domain = \"example.com\"\n\
             events = [\"request.pending\"]\n"
        ),
    )
    .unwrap();
    let d = Daemon::start(&sb, "notify-mail-d", approvals::POLICY);
    let mut notifier = start_notifier(&sb, &dir);
    let id = ask(&[]);
    let nlog = || std::fs::read_to_string(dir.join("notify.log")).unwrap_or_default();
    wait_for(Duration::from_secs(15), "the mails", || {
        !lines(&tls_mails).is_empty() && sent.exists() && !failed_lines(&d.log()).is_empty()
    });

    // The relay that offers STARTTLS got the mail over TLS.
    let mails = lines(&tls_mails);
    assert_eq!(mails.len(), 1, "{mails:?}\n{}", nlog());
    assert_eq!(mails[0]["tls"], true, "{}", mails[0]);
    assert!(
        mails[0]["data"]
            .as_str()
            .unwrap()
            .contains(&format!("jitctl approve {id}")),
        "{}",
        mails[0]
    );
    // A relay without STARTTLS is refused when it is required: nothing in clear text.
    assert!(lines(&plain_mails).is_empty(), "mail sent in clear text");
    let log = d.log();
    let failed = failed_lines(&log);
    assert!(
        failed
            .iter()
            .any(|l| l.contains("plain-but-required") && l.contains("attempts=2")),
        "{failed:?}"
    );
    assert!(nlog().contains("does not offer STARTTLS"), "{}", nlog());

    // sendmail -t -i got a proper RFC 5322 message: Python's strict parser reads it.
    let args = std::fs::read_to_string(sent.join("args")).unwrap();
    assert_eq!(args.trim(), "-t -i -f jitd@sandbox.example");
    let check = run(Command::new("/usr/bin/python3").arg("-c").arg(format!(
        r#"
import email, email.policy, email.utils, sys
raw = open({msg:?}, "rb").read()
m = email.message_from_bytes(raw, policy=email.policy.strict)
for h in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version", "Content-Type"):
    assert m[h] is not None, "missing " + h
assert email.utils.parsedate_to_datetime(m["Date"]).tzinfo is not None
assert m["Message-ID"] == "<request.pending.{id}@sandbox>", m["Message-ID"]
assert sorted(a for _, a in email.utils.getaddresses([m["To"]])) == ["approvers@example.com"], m["To"]
assert "request.pending" in m["Subject"] and "alice" in m["Subject"], m["Subject"]
assert m.get_content_type() == "text/plain" and m.get_content_charset() == "utf-8"
body = m.get_content()
assert "jitctl approve {id}" in body, body
assert "reason: restore the orders table" in body, body
assert b"\r" not in raw, "sendmail's input uses LF line ends"
print("ok")
"#,
        msg = sent.join("msg"),
    )));
    assert_eq!(stdout(&check).trim(), "ok", "{}", stderr(&check));
    assert!(notifier.try_wait().unwrap().is_none(), "the notifier died");
    let _ = notifier.kill();
    let _ = notifier.wait();
}

/// Every text of a Slack Block Kit message (section texts and fields).
fn slack_texts(msg: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for b in msg["blocks"].as_array().unwrap() {
        if let Some(t) = b["text"]["text"].as_str() {
            out.push(t.to_string());
        }
        for f in b["fields"].as_array().into_iter().flatten() {
            out.push(f["text"].as_str().unwrap().to_string());
        }
    }
    out
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn the_slack_message_carries_the_approve_line_and_a_blob_an_approver_signs_elsewhere() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-slack");
    ca(&dir, "ca");
    server_cert(&dir, "ca", "good", "IP:127.0.0.1,DNS:localhost");
    run(Command::new("chmod").arg("644").arg(dir.join("ca.crt")));
    let mut kids = Kids(Vec::new());
    let got = dir.join("slack.jsonl");
    let (gc, gk) = (dir.join("good.crt"), dir.join("good.key"));
    let secret = dir.join("webhook-secret");
    let port = serve(&mut kids, &dir, "receiver.py", &[&secret, &got, &gc, &gk]);
    std::fs::write(
        dir.join("notify.toml"),
        format!(
            "poll_ms = 100\n[[sink]]\nname = \"slack\"\nkind = \"slack\"\n\
             url = \"https://localhost:{port}/slack\"\nca_file = {:?}\n\
             events = [\"request.pending\"]\n",
            dir.join("ca.crt")
        ),
    )
    .unwrap();
    let keys = sb.dir.join("notify-slack-keys");
    let carol = signed::keygen(&keys, "carol");
    let _d = signed::start(
        &sb,
        "notify-slack-d",
        approvals::POLICY,
        &[("carol", &carol)],
    );
    let mut notifier = start_notifier(&sb, &dir);
    let id = ask(&[]);
    wait_for(Duration::from_secs(10), "the slack message", || {
        !lines(&got).is_empty()
    });
    let msg = &lines(&got)[0]["body"];
    let texts = slack_texts(msg);

    // The exact line an approver on the host runs, alone in a code block.
    assert!(
        texts.contains(&format!("```jitctl approve {id}```")),
        "{texts:#?}"
    );
    // The blob, as the requester would paste it, and the offline command that signs it.
    let blob_text = texts
        .iter()
        .find(|t| t.contains("-----BEGIN JITD REQUEST-----"))
        .unwrap_or_else(|| panic!("no signable blob in the slack message: {texts:#?}"));
    assert!(
        texts
            .iter()
            .any(|t| t.contains("jitctl approve --sign --key ~/.ssh/id_ed25519 request.txt")),
        "{texts:#?}"
    );
    let blob = blob_text
        .split("```")
        .nth(1)
        .unwrap_or_else(|| panic!("the blob is not in a code block: {blob_text}"));
    assert_eq!(blob.trim(), signed::blob(&id).trim());

    // carol signs it on her laptop (no jitd, no bus), the token comes back, bob says yes on
    // the host: alice has her sudo.
    let token = signed::token(blob, &carol, &[]);
    let o = signed::submit("alice", token.as_bytes());
    assert!(o.status.success(), "submit: {}{}", stdout(&o), stderr(&o));
    assert!(approvals::approve("bob", &id, &[]).status.success());
    assert!(
        approvals::alice_may_sudo(),
        "granted with the token from slack"
    );
    let _ = notifier.kill();
    let _ = notifier.wait();
}
