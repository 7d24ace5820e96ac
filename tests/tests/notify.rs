//! Notifications end to end: jitd queues them in its outbox with the audit record, the real
//! `jitd-notify` (as its own unprivileged account) fetches them over the bus and delivers them
//! to a real HTTP receiver on 127.0.0.1 that checks the Standard Webhooks signature and refuses
//! replays, to a real SMTP server, and to an admin's program.

#![allow(clippy::disallowed_methods)] // an end-to-end suite runs real processes and waits

use std::process::{Command, Stdio};
use std::time::Duration;

use jitd_tests::approvals::{self, MIN, alice_may_sudo, approve, ask};
use jitd_tests::notify::*;
use jitd_tests::*;

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn approvers_hear_of_a_pending_request_signed_and_the_requester_of_the_decision() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-main");
    let mut kids = Kids(Vec::new());
    let hooks = dir.join("hooks.jsonl");
    let mails = dir.join("mails.jsonl");
    let web = serve(
        &mut kids,
        &dir,
        "receiver.py",
        &[&dir.join("webhook-secret"), &hooks],
    );
    let smtp = serve(&mut kids, &dir, "smtpd.py", &[&mails]);
    std::fs::write(
        dir.join("notify.toml"),
        format!(
            "poll_ms = 100\nbackoff_ms = 50\nmax_attempts = 2\n\
             [[sink]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{web}/jitd\"\n\
             secret_file = {:?}\n\
             [[sink]]\nname = \"mail\"\nkind = \"smtp\"\nrelay = \"127.0.0.1:{smtp}\"\n\
             from = \"jitd@sandbox\"\nuser_domain = \"example.com\"\nto = [\"approvers@example.com\"]\n\
             events = [\"request.pending\"]\n\
             [[sink]]\nname = \"down\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\n\
             secret_file = {:?}\nevents = [\"request.pending\"]\n",
            dir.join("webhook-secret"),
            dir.join("webhook-secret"),
        ),
    )
    .unwrap();
    let d = Daemon::start(&sb, "notify-main-d", approvals::POLICY);

    // Nobody outside the notifier's account reads the outbox.
    let o = as_user(
        "alice",
        &[
            "busctl",
            "--system",
            "call",
            "org.jitd.Jitd1",
            "/org/jitd/Jitd1",
            "org.jitd.Jitd1.Notifier",
            "Fetch",
            "x",
            "0",
        ],
    );
    assert!(
        !o.status.success(),
        "alice fetched the outbox: {}",
        stdout(&o)
    );

    // With the notifier stopped, requests and grants work as ever.
    let id = ask(&[]);
    assert!(approve("bob", &id, &[]).status.success());
    assert!(approve("carol", &id, &[]).status.success());
    assert!(alice_may_sudo(), "granted with the notifier down");
    assert!(lines(&hooks).is_empty());

    // Started, it drains the queue in order.
    let mut notifier = start_notifier(&sb, &dir);
    let nlog = dir.join("notify.log");
    wait_for(Duration::from_secs(10), "two webhooks", || {
        lines(&hooks).len() >= 2
            || std::fs::read_to_string(&nlog)
                .unwrap_or_default()
                .contains("Fetch")
    });
    assert!(
        lines(&hooks).len() >= 2,
        "{}",
        std::fs::read_to_string(&nlog).unwrap_or_default()
    );
    let got = lines(&hooks);
    let pending = &got[0]["body"];
    assert_eq!(pending["kind"], "request.pending", "{got:?}");
    assert_eq!(pending["command"], format!("jitctl approve {id}"));
    assert_eq!(pending["to"]["groups"][0], "appr");
    assert_eq!(pending["user"], "alice");
    assert_eq!(pending["host"], "sandbox");
    assert_eq!(pending["reason"], "restore the orders table");
    assert!(
        pending["request_expires"].as_str().unwrap().ends_with('Z'),
        "{pending}"
    );
    let decided = &got[1]["body"];
    assert_eq!(decided["kind"], "request.approved", "{got:?}");
    assert_eq!(decided["to"]["users"][0], "alice");
    assert!(
        decided["by"].as_str().unwrap().contains("carol"),
        "{decided}"
    );
    assert!(
        decided["access_expires"].as_str().unwrap().ends_with('Z'),
        "{decided}"
    );
    assert_eq!(got[0]["id"], format!("request.pending:{id}"));

    // The mail reached the relay, with the exact command.
    wait_for(Duration::from_secs(5), "a mail", || {
        !lines(&mails).is_empty()
    });
    let mail = &lines(&mails)[0];
    assert!(
        mail["to"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "approvers@example.com")
    );
    assert!(
        mail["data"]
            .as_str()
            .unwrap()
            .contains(&format!("jitctl approve {id}")),
        "{mail}"
    );

    // The sink that is down is given up on, on record.
    wait_for(Duration::from_secs(10), "notify.failed", || {
        d.log().contains("event=notify.failed")
    });
    let log = d.log();
    let failed = log
        .lines()
        .find(|l| l.contains("event=notify.failed"))
        .unwrap();
    assert!(
        failed.contains("attempts=2") && failed.contains("down"),
        "{failed}"
    );

    // A captured delivery replayed 10 minutes later is refused by the receiver.
    let body = serde_json::to_string(&got[0]["body"]).unwrap();
    let replay = run(Command::new("python3").arg("-c").arg(format!(
        r#"
import base64,hashlib,hmac,time,urllib.request,urllib.error
s=base64.b64decode("{}")
ts=str(int(time.time())-600); wid="{}"; body={body:?}.encode()
sig="v1,"+base64.b64encode(hmac.new(s,(wid+"."+ts+".").encode()+body,hashlib.sha256).digest()).decode()
r=urllib.request.Request("http://127.0.0.1:{web}/jitd",data=body,headers={{"webhook-id":wid,"webhook-timestamp":ts,"webhook-signature":sig}})
try:
    urllib.request.urlopen(r); print("accepted")
except urllib.error.HTTPError as e:
    print(e.code)
"#,
        SECRET.trim_start_matches("whsec_"),
        got[0]["id"].as_str().unwrap(),
    )));
    assert_eq!(stdout(&replay).trim(), "401", "{}", stderr(&replay));
    let _ = notifier.kill();
    let _ = notifier.wait();
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn a_notifier_killed_mid_delivery_delivers_again_once_with_the_same_id() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-kill");
    let seen = dir.join("seen");
    let prog = dir.join("slow-sink");
    // The first delivery hangs (the notifier is killed during it); later ones return at once.
    std::fs::write(
        &prog,
        format!(
            "#!/bin/sh\necho \"$JITD_NOTE_ID\" >> {seen:?}\n\
             if [ ! -e {m:?} ]; then touch {m:?}; sleep 30; fi\n",
            m = dir.join("hung-once")
        ),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&prog));
    run(Command::new("chmod").arg("777").arg(&dir));
    std::fs::write(
        dir.join("notify.toml"),
        format!(
            "poll_ms = 100\n[[sink]]\nname = \"prog\"\nkind = \"exec\"\ncommand = [{prog:?}]\n\
             timeout_ms = 60000\nevents = [\"request.pending\"]\n"
        ),
    )
    .unwrap();
    let _d = Daemon::start(&sb, "notify-kill-d", approvals::POLICY);
    let id = ask(&[]);
    let mut n = start_notifier(&sb, &dir);
    let read = || std::fs::read_to_string(&seen).unwrap_or_default();
    wait_for(Duration::from_secs(10), "the first delivery", || {
        !read().is_empty()
    });
    let _ = n.kill();
    let _ = n.wait();
    let mut n = start_notifier(&sb, &dir);
    wait_for(Duration::from_secs(10), "the redelivery", || {
        read().lines().count() >= 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let ids: Vec<String> = read().lines().map(String::from).collect();
    assert_eq!(
        ids,
        vec![format!("request.pending:{id}"); 2],
        "once more, same id"
    );
    let _ = n.kill();
    let _ = n.wait();
    let _ = MIN;
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn the_holder_is_warned_before_the_grant_expires_with_the_extend_line() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-expiring");
    let out = dir.join("notes");
    let prog = dir.join("sink");
    std::fs::write(
        &prog,
        format!("#!/bin/sh\ncat >> {out:?}\necho >> {out:?}\n"),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&prog));
    run(Command::new("chmod").arg("777").arg(&dir));
    std::fs::write(
        dir.join("notify.toml"),
        format!(
            "poll_ms = 100\n[[sink]]\nname = \"prog\"\nkind = \"exec\"\ncommand = [{prog:?}]\n\
             events = [\"grant.expiring\"]\n"
        ),
    )
    .unwrap();
    let d = Daemon::start(&sb, "notify-expiring-d", approvals::POLICY);
    let o = approvals::jitctl(
        "alice",
        &[
            "elevate",
            "selfserve",
            "--reason",
            "rotate the logs",
            "--for",
            "10m",
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let mut n = start_notifier(&sb, &dir);
    std::thread::sleep(Duration::from_millis(500));
    assert!(lines(&out).is_empty(), "warned 10 minutes early");
    // T − max(5 min, 10 %) = 5 minutes before the end of a 10 minute grant.
    d.set_wall_offset_ms(5 * MIN + 10_000);
    wait_for(Duration::from_secs(10), "the expiry warning", || {
        !lines(&out).is_empty()
    });
    let notes = lines(&out);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["kind"], "grant.expiring");
    assert_eq!(notes[0]["to"]["users"][0], "alice");
    assert!(
        notes[0]["command"]
            .as_str()
            .unwrap()
            .starts_with("jitctl extend g"),
        "{}",
        notes[0]
    );
    let _ = n.kill();
    let _ = n.wait();
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn break_glass_reaches_the_security_route_and_chat_in_their_documented_shapes() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-glass");
    let mut kids = Kids(Vec::new());
    let out = dir.join("posts.jsonl");
    let port = serve(
        &mut kids,
        &dir,
        "receiver.py",
        &[&dir.join("webhook-secret"), &out],
    );
    std::fs::write(
        dir.join("notify.toml"),
        format!(
            "poll_ms = 100\n\
             [[sink]]\nname = \"security\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/jitd\"\n\
             secret_file = {:?}\nroutes = [\"security\"]\n\
             [[sink]]\nname = \"slack\"\nkind = \"slack\"\nurl = \"http://127.0.0.1:{port}/slack\"\n\
             events = [\"breakglass.used\"]\n\
             [[sink]]\nname = \"teams\"\nkind = \"teams\"\nurl = \"http://127.0.0.1:{port}/teams\"\n\
             events = [\"breakglass.used\"]\n",
            dir.join("webhook-secret"),
        ),
    )
    .unwrap();
    let d = Daemon::start(&sb, "notify-glass-d", GLASS);
    let mut n = start_notifier(&sb, &dir);
    let o = approvals::jitctl(
        "alice",
        &["elevate", "glass", "--reason", "primary database is down"],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    wait_for(Duration::from_secs(10), "three posts", || {
        lines(&out).len() >= 3
    });
    let posts = lines(&out);
    let signed = posts
        .iter()
        .find(|p| p.get("id").is_some())
        .expect("the security webhook");
    let b = &signed["body"];
    assert_eq!(b["kind"], "breakglass.used");
    assert_eq!(b["severity"], "critical");
    assert_eq!(b["routes"][0], "security");
    assert_eq!(b["to"]["groups"][0], "appr");
    assert_eq!(b["reason"], "primary database is down");

    // Slack: Block Kit with a header, fields, and the command in a code block.
    let slack = &posts.iter().find(|p| p["path"] == "/slack").expect("slack")["body"];
    assert!(
        slack["text"].as_str().unwrap().starts_with("[CRITICAL]"),
        "{slack}"
    );
    let blocks = slack["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(blocks[1]["type"], "section");
    let fields = blocks[1]["fields"].as_array().unwrap();
    assert!(fields.len() <= 10 && fields.iter().all(|f| f["type"] == "mrkdwn"));
    assert!(
        fields.iter().any(|f| f["text"] == "*User*\nalice"),
        "{slack}"
    );
    let code = blocks[2]["text"]["text"].as_str().unwrap();
    assert!(code.starts_with("```jitctl review g"), "{slack}");

    // Teams: a message with one Adaptive Card attachment, a FactSet and the command.
    let teams = &posts.iter().find(|p| p["path"] == "/teams").expect("teams")["body"];
    assert_eq!(teams["type"], "message");
    let att = &teams["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(att["content"]["version"], "1.4");
    let body = att["content"]["body"].as_array().unwrap();
    assert_eq!(body[1]["type"], "FactSet");
    assert!(
        body[1]["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["title"] == "Privilege" && f["value"] == "glass")
    );
    assert_eq!(body[2]["fontType"], "Monospace");

    // Unreviewed past review_within (72 h by default): the security route hears of it.
    d.set_wall_offset_ms(73 * 60 * MIN);
    wait_for(Duration::from_secs(10), "review.overdue", || {
        lines(&out)
            .iter()
            .any(|p| p["body"]["kind"] == "review.overdue")
    });
    let overdue = lines(&out)
        .into_iter()
        .find(|p| p["body"]["kind"] == "review.overdue")
        .unwrap();
    assert_eq!(overdue["body"]["routes"][0], "security");
    assert_eq!(overdue["body"]["grant"], b["grant"]);
    let _ = n.kill();
    let _ = n.wait();
}

/// Benchmark row: from the request's answer in the requester's shell to the webhook on the
/// receiver, with the default poll interval (250 ms). Target: p99 under 2 s.
#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn a_pending_request_reaches_the_receiver_within_two_seconds_p99() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-bench");
    let mut kids = Kids(Vec::new());
    let hooks = dir.join("hooks.jsonl");
    let web = serve(
        &mut kids,
        &dir,
        "receiver.py",
        &[&dir.join("webhook-secret"), &hooks],
    );
    std::fs::write(
        dir.join("notify.toml"),
        format!(
            "[[sink]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{web}/jitd\"\n\
             secret_file = {:?}\nevents = [\"request.pending\"]\n",
            dir.join("webhook-secret"),
        ),
    )
    .unwrap();
    let _d = Daemon::start(&sb, "notify-bench-d", approvals::POLICY);
    let mut n = start_notifier(&sb, &dir);
    let mut ms: Vec<u128> = Vec::new();
    for i in 0..20 {
        let id = ask(&[]);
        let t0 = std::time::Instant::now();
        wait_for(Duration::from_secs(5), "the webhook", || {
            lines(&hooks).len() > i
        });
        ms.push(t0.elapsed().as_millis());
        assert_eq!(lines(&hooks)[i]["body"]["request"], id);
        let o = approvals::jitctl("alice", &["cancel", &id]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    ms.sort_unstable();
    let p50 = ms[ms.len() / 2];
    let p99 = ms[(ms.len() * 99).div_ceil(100) - 1];
    println!(
        "outbox -> receiver: p50 {p50} ms, p99 {p99} ms over {} requests",
        ms.len()
    );
    assert!(p99 < 2000, "p99 {p99} ms: {ms:?}");
    let _ = n.kill();
    let _ = n.wait();
}

#[test]
#[ignore = "end-to-end: run by tests/run in the sandbox"]
fn an_approver_logged_in_sees_the_request_on_their_terminal_and_nobody_else_does() {
    let sb = approvals::setup();
    let dir = notifier_setup(&sb, "notify-tty");
    run(Command::new("chmod").arg("777").arg(&dir));
    // Writing to others' terminals is group tty's right (what write(1) has, setgid).
    add_to_group("jitd-notify", "tty");
    std::fs::write(
        dir.join("notify.toml"),
        "poll_ms = 100\n[[sink]]\nname = \"terminals\"\nkind = \"tty\"\nevents = [\"request.pending\"]\n",
    )
    .unwrap();
    let _d = Daemon::start(&sb, "notify-tty-d", approvals::POLICY);
    // bob approves; eve does not. Each is logged in on a real pty (script(1)) that logs what
    // their terminal shows.
    let mut kids = Kids(Vec::new());
    let shown = |who: &str| dir.join(format!("{who}.typescript"));
    for who in ["bob", "eve"] {
        let child = Command::new("su")
            .args([who, "-s", "/bin/sh", "-c"])
            .arg(format!("script -qfc 'sleep 20' {:?}", shown(who)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        kids.0.push(child);
    }
    wait_for(Duration::from_secs(5), "both terminals", || {
        shown("bob").exists() && shown("eve").exists()
    });
    // What a standard devpts mount (gid=5,mode=620) and `mesg y` give every login terminal;
    // this host's devpts leaves them 0600. Only bob's and eve's are touched; eve's too, so only
    // ownership keeps her out.
    let o = run(Command::new("sh").arg("-c").arg(
        "for t in $(find /dev/pts -user bob -o -user eve); do chgrp tty \"$t\" && chmod 620 \"$t\"; done",
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut n = start_notifier(&sb, &dir);
    let id = ask(&[]);
    let read = |who: &str| std::fs::read_to_string(shown(who)).unwrap_or_default();
    let nlog = || std::fs::read_to_string(dir.join("notify.log")).unwrap_or_default();
    wait_for(
        Duration::from_secs(10),
        "the message on bob's terminal",
        || read("bob").contains(&format!("jitctl approve {id}")) || nlog().contains("terminal"),
    );
    assert!(
        read("bob").contains(&format!("jitctl approve {id}")),
        "{}\n{}",
        nlog(),
        run(Command::new("sh")
            .arg("-c")
            .arg("ls -ln /dev/pts; id jitd-notify"))
        .stdout
        .escape_ascii()
    );
    assert!(read("bob").contains("Message from jitd"), "{}", read("bob"));
    assert!(read("bob").contains("reason: restore the orders table"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !read("eve").contains("jitd"),
        "eve is no approver: {}",
        read("eve")
    );
    let _ = n.kill();
    let _ = n.wait();
}
