use proptest::prelude::*;

use crate::audit::MAX_VALUE_CHARS;
use crate::audit::event::AuditEvent;
use crate::terms::Via;

const HOSTILE: &[&str] = &[
    "ok\nevent=grant.revoked uid=0 \"x\\\u{1b}[2J\u{202e}%n",
    "\r\n\t\0\u{7f}\u{85}\u{2028}\u{2029}",
    "\u{202e}gnp.exe",
    "naïve café — 東京 🦀",
    "\\u{41} is not A",
    "\"\"\\\\\"",
    " leading and trailing ",
    "key=value other=\"x\"",
    "...(+5 chars)",
];

#[test]
fn hostile_text_round_trips_on_one_line() {
    for text in HOSTILE {
        let e = AuditEvent::RequestDenied {
            uid: 1001,
            user: (*text).into(),
            via: Via::Bus,
            privilege: (*text).into(),
            duration: 60,
            reason: (*text).into(),
            ticket: (*text).into(),
            why: (*text).into(),
        };
        let line = e.to_line();
        let json = e.to_json();
        for out in [&line, &json] {
            assert!(out.is_ascii(), "{out}");
            assert!(!out.chars().any(|c| c.is_ascii_control()), "{out:?}");
        }
        assert_eq!(AuditEvent::from_line(&line), Ok(e.clone()), "{line}");
        assert_eq!(AuditEvent::from_json(&json), Ok(e), "{json}");
    }
}

#[test]
fn a_maximal_reason_survives_and_a_longer_one_reads_back_cut() {
    let reason = "é".repeat(crate::client::MAX_REASON_CHARS);
    let denied = |reason: String| AuditEvent::RequestDenied {
        uid: 1,
        user: "u".into(),
        via: Via::Bus,
        privilege: "p".into(),
        duration: 1,
        reason,
        ticket: String::new(),
        why: "w".into(),
    };
    let e = denied(reason);
    assert_eq!(AuditEvent::from_line(&e.to_line()), Ok(e));

    let long = "a".repeat(MAX_VALUE_CHARS + 900);
    let read = AuditEvent::from_line(&denied(long.clone()).to_line()).unwrap();
    let cut = format!("{}...(+900 chars)", &long[..MAX_VALUE_CHARS]);
    assert_eq!(read, denied(cut));
    let whole = denied(long);
    assert_eq!(AuditEvent::from_json(&whole.to_json()), Ok(whole));
}

#[test]
fn garbage_lines_are_errors_with_a_place() {
    let cases: &[(&str, usize)] = &[
        ("", 0),
        ("grant=g0123456789ab", 0),
        ("event=", 6),
        ("event=nope.never", 6),
        ("event=clock.changed ", 20),
        ("event=clock.changed  x=1", 20),
        ("event=clock.changed x=1", 20),
        ("event=clock.changed\n", 19),
        ("event=sweep.done removed=1", 26),
        ("event=sweep.done removed=1 live=1 live=2", 34),
        ("event=sweep.done removed=01 live=1", 25),
        ("event=sweep.done removed=-1 live=1", 25),
        ("event=sweep.done removed=18446744073709551616 live=1", 25),
        ("event=sweep.done removed=1 live=", 32),
        ("event=sweep.done removed=1 live", 31),
        ("event=sweep.done removed=1 live=\"1", 32),
        ("event=policy.loaded summary=\"a\\qb\"", 30),
        ("event=policy.loaded summary=\"\\u{110000}\"", 29),
        ("event=policy.loaded summary=\"\\u{d800}\"", 29),
        ("event=policy.loaded summary=\"\\u{}\"", 29),
        ("event=policy.loaded summary=\"\\u{1234567}\"", 29),
        ("event=policy.loaded summary=\"\\u41\"", 29),
        ("event=policy.loaded summary=\"é\"", 29),
        ("event=policy.loaded summary=\"tab\there\"", 32),
        ("event=policy.loaded summary=a\"b\"", 29),
        ("event=policy.loaded summary=x y", 31),
        ("event=revoke.denied grant=G0123456789AB caller=1", 26),
        (
            "event=revoke.denied grant=g0123456789ab caller=4294967296",
            47,
        ),
        ("event=request.invalid uid=1 via=door privilege=p why=w", 32),
        (
            "event=recall.started grant=g0123456789ab uid=1 pids=1,,2",
            52,
        ),
        (
            "event=grant.repaired grant=g0123456789ab found=x ok=yes error=\"\"",
            52,
        ),
        (
            "event=admin.polkit caller=1 method=m action=a answer=maybe",
            53,
        ),
        ("event=daemon.log msg=hello", 6),
    ];
    for (line, at) in cases {
        let err = AuditEvent::from_line(line).expect_err(line);
        assert_eq!(err.offset, Some(*at), "{line:?}: {err}");
    }
}

#[test]
fn garbage_json_is_an_error() {
    let cases = [
        "",
        "[]",
        "{}",
        "null",
        r#"{"event":1}"#,
        r#"{"event":"nope"}"#,
        r#"{"event":"clock.changed","x":1}"#,
        r#"{"event":"clock.changed","event":"clock.changed"}"#,
        r#"{"event":"clock.changed"} trailing"#,
        r#"{"event":"sweep.done","removed":"1","live":1}"#,
        r#"{"event":"sweep.done","removed":-1,"live":1}"#,
        r#"{"event":"sweep.done","removed":1.5,"live":1}"#,
        r#"{"event":"sweep.done","removed":1,"live":1,"live":2}"#,
        r#"{"event":"sweep.done","removed":1}"#,
        r#"{"event":"revoke.denied","grant":"g0123456789ab","caller":4294967296}"#,
        r#"{"event":"recall.started","grant":"g0123456789ab","uid":1,"pids":"1,2"}"#,
        r#"{"event":"recall.started","grant":"g0123456789ab","uid":1,"pids":[-1]}"#,
        r#"{"event":"grant.repaired","grant":"g0123456789ab","found":"x","ok":"true","error":""}"#,
        r#"{"event":"policy.loaded","summary":"\ud800"}"#,
    ];
    for text in cases {
        assert!(AuditEvent::from_json(text).is_err(), "{text}");
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(AuditEvent::from_json(&deep).is_err());
    let err = AuditEvent::from_json("{\"event\":\"clock.changed\",}").unwrap_err();
    assert!(err.offset.is_some(), "{err}");
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..MAX_VALUE_CHARS + 50)
        .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn any_free_text_round_trips(reason in text(), error in text()) {
        let e = AuditEvent::RequestDenied {
            uid: 1001,
            user: "alice".into(),
            via: Via::Pam,
            privilege: "db".into(),
            duration: 60,
            reason: reason.clone(),
            ticket: String::new(),
            why: "no".into(),
        };
        let line = e.to_line();
        prop_assert!(line.is_ascii() && !line.chars().any(|c| c.is_ascii_control()));
        let read = AuditEvent::from_line(&line).unwrap();
        if reason.chars().count() <= MAX_VALUE_CHARS {
            prop_assert_eq!(&read, &e);
        } else {
            let AuditEvent::RequestDenied { reason: cut, .. } = &read else { unreachable!() };
            let kept: String = reason.chars().take(MAX_VALUE_CHARS).collect();
            prop_assert!(cut.starts_with(&kept) && cut.ends_with(" chars)"));
        }
        prop_assert_eq!(AuditEvent::from_json(&e.to_json()), Ok(e));

        let whole = error.chars().count() <= MAX_VALUE_CHARS;
        let warn = AuditEvent::GrantCheckFailed { error };
        prop_assert_eq!(AuditEvent::from_json(&warn.to_json()), Ok(warn.clone()));
        let line = warn.to_line();
        let again = AuditEvent::from_line(&line).unwrap().to_line();
        // A cut value is cut again, with a new count.
        prop_assert!(again == line || !whole);
    }

    #[test]
    fn any_input_is_read_or_refused_without_panicking(s in text()) {
        let _ = AuditEvent::from_line(&s);
        let _ = AuditEvent::from_json(&s);
        let _ = AuditEvent::from_line(&format!("event=policy.loaded summary={s}"));
        let _ = AuditEvent::from_json(&format!("{{\"event\":\"policy.loaded\",\"summary\":{s}}}"));
    }
}
