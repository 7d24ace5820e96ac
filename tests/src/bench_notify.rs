//! The bench row for notifications: from the start of a requester's `jitctl elevate` that
//! ends pending to the moment the approvers' webhook receiver on 127.0.0.1 has accepted the
//! signed note (its own clock, `at`): jitd's outbox write, the notifier's poll (the shipped
//! `poll_ms = 250`), the bus fetch, the HMAC and the HTTP POST.

#![allow(clippy::disallowed_methods)] // a benchmark runs real processes, reads the wall clock and waits

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::notify::*;
use crate::*;

/// `runs` samples, in ms; `requester` asks under `bench_approve::policy`'s rule.
pub fn pending_to_receiver(sb: &Sandbox, runs: usize, requester: &str) -> Vec<f64> {
    let dir = notifier_setup(sb, "bench-notify");
    let mut kids = Kids(Vec::new());
    let got = dir.join("hooks.jsonl");
    let port = serve(
        &mut kids,
        &dir,
        "receiver.py",
        &[&dir.join("webhook-secret"), &got],
    );
    std::fs::write(
        dir.join("notify.toml"),
        format!(
            "[[sink]]\nname = \"approvers\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/jitd\"\n\
             secret_file = {:?}\nevents = [\"request.pending\"]\n",
            dir.join("webhook-secret")
        ),
    )
    .unwrap();
    let mut notifier = start_notifier(sb, &dir);
    let mut out = Vec::new();
    for i in 0..runs {
        // Requests one after another would fall at the same point of the notifier's poll
        // cycle each time (just after the poll that delivered the last one: the worst); a
        // spread of start offsets over the 250 ms cycle samples it evenly.
        std::thread::sleep(Duration::from_millis((i as u64 * 97) % 250));
        // The receiver stamps with the wall clock; so does the start.
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let o = as_user(
            requester,
            &[
                "jitctl",
                "--json",
                "elevate",
                "bench-approved",
                "--for",
                "10m",
            ],
        );
        assert_eq!(o.status.code(), Some(12), "pending: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let id = v["request_id"].as_str().unwrap().to_string();
        let want = format!("request.pending:{id}");
        let waited = Instant::now();
        let at = loop {
            // Read while the receiver writes: a line not yet whole is looked at next time.
            let text = std::fs::read_to_string(&got).unwrap_or_default();
            let found = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|n| n["id"] == want.as_str());
            if let Some(n) = found {
                break n["at"].as_f64().unwrap();
            }
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "the note of {id} never reached the receiver"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        out.push((at - start) * 1000.0);
        let o = as_user(requester, &["jitctl", "cancel", &id]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let _ = notifier.kill();
    let _ = notifier.wait();
    out
}
