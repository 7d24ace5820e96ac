//! E-mail: an RFC 5322 message, handed to an SMTP relay (STARTTLS when the relay offers it,
//! or always, or never, per `starttls`) or to the local `sendmail -t -i` interface.

#![allow(clippy::disallowed_methods)] // the notifier is an edge: it reads the clock and runs sendmail

use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{Sink, StartTls, Transport};
use crate::note::Note;
use crate::sinks::{connect, host_and_addr, run_with_input};
use crate::tls::Conn;

/// Sends `note` by mail to the sink's `to` and the users the note names at `user_domain`.
pub fn send(sink: &Sink, note: &Note, timeout: Duration) -> Result<(), String> {
    let mut rcpt: Vec<String> = sink.to.clone();
    if !sink.user_domain.is_empty() {
        rcpt.extend(
            note.users
                .iter()
                .map(|u| format!("{u}@{}", sink.user_domain)),
        );
    }
    if rcpt.is_empty() {
        return Ok(());
    }
    // An address is put in a header and an SMTP command: nothing that could end either.
    if let Some(bad) = rcpt
        .iter()
        .chain([&sink.from])
        .find(|a| a.is_empty() || a.chars().any(|c| c.is_control() || " <>,\"".contains(c)))
    {
        return Err(format!("not a plain mail address: {bad:?}"));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let msg = message(sink, note, &rcpt, now);
    match sink.transport {
        Transport::Sendmail => {
            let mut cmd = Command::new(&sink.sendmail);
            // -t: recipients from the To: header; -i: a line with a lone dot is text.
            cmd.args(["-t", "-i", "-f", &sink.from]);
            run_with_input(cmd, &sink.sendmail, msg.as_bytes(), timeout)
        }
        Transport::Smtp => smtp(sink, &rcpt, &msg, timeout),
    }
}

/// The message, LF line ends (sendmail's convention; SMTP converts): Date, From, To,
/// Subject, Message-ID (stable across redeliveries, for dedupe), MIME headers for UTF-8 text,
/// and `Auto-Submitted` so auto-responders stay quiet (RFC 3834).
pub fn message(sink: &Sink, note: &Note, rcpt: &[String], now_s: u64) -> String {
    let local = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_".contains(c) {
                    c
                } else {
                    '.'
                }
            })
            .collect::<String>()
            .trim_matches('.')
            .to_string()
    };
    let host = match local(note.field("host")) {
        h if h.is_empty() => "jitd".to_string(),
        h => h,
    };
    format!(
        "Date: {}\nFrom: {}\nTo: {}\nSubject: {}\nMessage-ID: <{}@{host}>\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\
         Auto-Submitted: auto-generated\n\n{}{}",
        rfc5322_date(now_s),
        sink.from,
        rcpt.join(", "),
        header_text(&note.subject()),
        local(&note.id),
        note.text(),
        note.blob_text()
    )
}

/// A header value: control characters (a newline would start a header of the sender's
/// choosing) become spaces; non-ASCII text is an RFC 2047 encoded word.
fn header_text(s: &str) -> String {
    use base64::Engine;
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.is_ascii() {
        clean
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(clean)
        )
    }
}

/// `Sun, 29 Nov 2026 05:30:00 +0000`.
pub fn rfc5322_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[(days.rem_euclid(7)) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn smtp(sink: &Sink, rcpt: &[String], msg: &str, timeout: Duration) -> Result<(), String> {
    let relay = &sink.relay;
    let (host, addr) = host_and_addr(relay, 25);
    let mut s = BufReader::new(Conn::Plain(connect(&addr, timeout)?));
    let err = |e: std::io::Error| format!("{relay}: {e}");
    fn send(s: &mut BufReader<Conn>, line: &str) -> std::io::Result<()> {
        let w = s.get_mut();
        w.write_all(format!("{line}\r\n").as_bytes())?;
        w.flush()
    }
    // The reply's lines (a multi-line reply has `-` after the code), or an error if its code
    // is not `code`.
    let reply = |s: &mut BufReader<Conn>, code: &str| -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            s.read_line(&mut line).map_err(err)?;
            if !line.starts_with(code) {
                return Err(format!("{relay}: expected {code}, got {:?}", line.trim()));
            }
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.trim_end().to_string());
            if !more {
                return Ok(lines);
            }
        }
    };
    reply(&mut s, "220")?;
    send(&mut s, "EHLO jitd-notify").map_err(err)?;
    let ext = reply(&mut s, "250")?;
    let offered = ext.iter().any(|l| {
        l.get(4..)
            .is_some_and(|e| e.eq_ignore_ascii_case("STARTTLS"))
    });
    match (sink.starttls, offered) {
        (StartTls::Off, _) | (StartTls::Opportunistic, false) => {}
        (StartTls::Required, false) => {
            return Err(format!(
                "{relay}: the relay does not offer STARTTLS (starttls = \"required\")"
            ));
        }
        (_, true) => {
            send(&mut s, "STARTTLS").map_err(err)?;
            reply(&mut s, "220")?;
            // Anything sent before the handshake would be taken as said under TLS (the
            // STARTTLS command-injection attack): refuse it.
            if !s.buffer().is_empty() {
                return Err(format!("{relay}: data after STARTTLS's answer: refused"));
            }
            let Conn::Plain(tcp) = s.into_inner() else {
                return Err(format!("{relay}: TLS already"));
            };
            s = BufReader::new(crate::tls::wrap(tcp, &host, sink.ca_file.as_deref())?);
            send(&mut s, "EHLO jitd-notify").map_err(err)?;
            reply(&mut s, "250")?;
        }
    }
    send(&mut s, &format!("MAIL FROM:<{}>", sink.from)).map_err(err)?;
    reply(&mut s, "250")?;
    for to in rcpt {
        send(&mut s, &format!("RCPT TO:<{to}>")).map_err(err)?;
        reply(&mut s, "250")?;
    }
    send(&mut s, "DATA").map_err(err)?;
    reply(&mut s, "354")?;
    // CRLF line ends and dot-stuffing (RFC 5321 4.5.2), then the lone dot.
    let mut data = String::with_capacity(msg.len() + 64);
    for line in msg.split('\n') {
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.push('.');
    send(&mut s, &data).map_err(err)?;
    reply(&mut s, "250")?;
    let _ = send(&mut s, "QUIT");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_930_200),
            "Sun, 29 Nov 2026 05:30:00 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn the_mail_carries_the_blob_and_the_terminal_text_does_not() {
        let cfg = crate::config::Config::parse(
            std::path::Path::new("t.toml"),
            "[[sink]]\nname = \"m\"\nkind = \"smtp\"\ntransport = \"sendmail\"\nfrom = \"j@h\"\n",
        )
        .unwrap();
        let blob = "-----BEGIN JITD REQUEST-----\nalice asks\n\nAAAA\n-----END JITD REQUEST-----";
        let body = serde_json::json!({"host": "db-7", "user": "alice", "command": "jitctl approve r1", "blob": blob});
        let n = Note::new(
            1,
            "request.pending:r1".into(),
            "request.pending".into(),
            body.to_string(),
        );
        let m = message(&cfg.sinks[0], &n, &["a@b".into()], 0);
        assert!(
            m.contains(blob) && m.contains("jitctl approve --sign"),
            "{m}"
        );
        assert!(m.contains("Message-ID: <request.pending.r1@db-7>"), "{m}");
        assert!(!n.text().contains("BEGIN JITD REQUEST"));
    }

    #[test]
    fn headers_cannot_be_injected() {
        assert_eq!(header_text("a\r\nBcc: x"), "a  Bcc: x");
        assert_eq!(header_text("é"), "=?utf-8?B?w6k=?=");
    }
}
