//! sudo's JSON event log read as it grows. sudo (1.9.4+, `log_format=json` with `logfile=`)
//! keeps the file as ONE JSON object and appends each event as another member, reusing the
//! keys: `{ "accept": {...}, "exit": {...}, "accept": {...}, ... }`. A JSON library reading
//! it as an object keeps only the last `accept`; this reader walks the members one by one and
//! keeps every one. To append, sudo writes over the object's closing `\n}\n`, so a reader
//! stops at the end of the last whole member and reads on from there.

#![forbid(unsafe_code)]

use serde_json::Value;

/// One event sudo logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SudoEvent {
    pub kind: SudoKind,
    pub uuid: String,
    pub submituser: String,
    pub runuser: String,
    pub argv: Vec<String>,
    pub cwd: String,
    pub tty: String,
    /// When sudo was asked (accept, reject) or the command ended (exit), ms since the epoch.
    pub at_ms: i64,
    /// Why a command was refused.
    pub reason: String,
    pub exit_value: Option<i64>,
    pub signal: String,
    pub run_ms: u64,
    /// sudo\'s I/O log of the command (`log_output`), for `sudoreplay`; empty without one.
    pub iolog: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SudoKind {
    Accept,
    Reject,
    Exit,
    /// alert and other kinds: kept as they are, not attributed.
    Other,
}

/// Longest one member may be; a longer one is skipped and reported (sudo's own argument
/// limit keeps real entries far below it).
pub const MAX_MEMBER_BYTES: usize = 4 << 20;

/// What one read of new bytes gave.
#[derive(Debug, Default)]
pub struct Parsed {
    pub events: Vec<SudoEvent>,
    /// How many bytes of the buffer were consumed (whole members, and what led up to them).
    pub consumed: usize,
    /// Where each event's member ends in the buffer, parallel to `events`.
    pub ends: Vec<usize>,
    /// Bytes skipped that were not a readable member: (offset in the buffer, length).
    pub skipped: Vec<(usize, usize)>,
}

fn skip_ws(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && buf[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Where the next top-level member starts after `from` (`,` then a key at sudo's indent of 4
/// spaces), for reading on past something unreadable.
fn resync(buf: &[u8], from: usize) -> Option<usize> {
    const MARK: &[u8] = b",\n    \"";
    buf.get(from..)?
        .windows(MARK.len())
        .position(|w| w == MARK)
        .map(|p| from + p)
}

/// Reads the whole members in `buf`, which starts at the file's byte `start` (0: the file's
/// first byte, where the object opens). Invalid UTF-8 is read as `?`, byte for byte.
pub fn members(buf: &[u8], start: u64) -> Parsed {
    let buf = lossy_same_length(buf);
    let mut out = Parsed::default();
    let mut i = 0;
    loop {
        let mut j = skip_ws(&buf, i);
        match buf.get(j) {
            Some(b'{') if start == 0 && out.events.is_empty() && j == skip_ws(&buf, 0) => j += 1,
            Some(b',') => j += 1,
            // The object's end (for now), or nothing yet.
            Some(b'}') | None => return out,
            Some(_) => {
                let Some(next) = resync(&buf, j) else {
                    return out;
                };
                out.skipped.push((i, next - i));
                i = next;
                out.consumed = i;
                continue;
            }
        }
        match member(&buf[j..]) {
            Member::Whole(key, value, len) => {
                out.events.push(event(&key, &value));
                i = j + len;
                out.consumed = i;
                out.ends.push(i);
            }
            Member::Incomplete if buf.len() - j <= MAX_MEMBER_BYTES => return out,
            Member::Incomplete | Member::Bad => {
                let Some(next) = resync(&buf, j) else {
                    if buf.len() - j > MAX_MEMBER_BYTES {
                        out.skipped.push((i, buf.len() - i));
                        out.consumed = buf.len();
                    }
                    return out;
                };
                out.skipped.push((i, next - i));
                i = next;
                out.consumed = i;
            }
        }
    }
}

enum Member {
    Whole(String, Value, usize),
    Incomplete,
    Bad,
}

/// `"key": value` at the start of `buf`, and its length.
fn member(buf: &[u8]) -> Member {
    let i = skip_ws(buf, 0);
    let mut keys = serde_json::Deserializer::from_slice(&buf[i..]).into_iter::<String>();
    let key = match keys.next() {
        Some(Ok(k)) => k,
        Some(Err(e)) if e.is_eof() => return Member::Incomplete,
        None => return Member::Incomplete,
        Some(Err(_)) => return Member::Bad,
    };
    let mut j = skip_ws(buf, i + keys.byte_offset());
    match buf.get(j) {
        Some(b':') => j += 1,
        None => return Member::Incomplete,
        Some(_) => return Member::Bad,
    }
    let mut values = serde_json::Deserializer::from_slice(&buf[j..]).into_iter::<Value>();
    match values.next() {
        Some(Ok(v)) => Member::Whole(key, v, j + values.byte_offset()),
        Some(Err(e)) if e.is_eof() => Member::Incomplete,
        None => Member::Incomplete,
        Some(Err(_)) => Member::Bad,
    }
}

/// `buf` with every byte of an invalid UTF-8 sequence replaced by `?`, so offsets stay those
/// of the file. An incomplete sequence at the very end is left for the next read.
fn lossy_same_length(buf: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if std::str::from_utf8(buf).is_ok() {
        return std::borrow::Cow::Borrowed(buf);
    }
    let mut out = buf.to_vec();
    let mut i = 0;
    while i < out.len() {
        match std::str::from_utf8(&out[i..]) {
            Ok(_) => break,
            Err(e) => {
                let bad = i + e.valid_up_to();
                match e.error_len() {
                    Some(n) => {
                        out[bad..bad + n].fill(b'?');
                        i = bad + n;
                    }
                    None => break,
                }
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn time_ms(v: &Value, key: &str) -> i64 {
    let t = &v[key];
    let secs = t["seconds"].as_i64().unwrap_or(0);
    let nanos = t["nanoseconds"].as_i64().unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(nanos / 1_000_000)
}

pub(crate) fn event(key: &str, v: &Value) -> SudoEvent {
    let kind = match key {
        "accept" => SudoKind::Accept,
        "reject" => SudoKind::Reject,
        "exit" => SudoKind::Exit,
        _ => SudoKind::Other,
    };
    let argv = match v.get("runargv") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| s.as_str().unwrap_or("").to_string())
            .collect(),
        _ => vec![text(v, "command")],
    };
    let run = &v["run_time"];
    SudoEvent {
        kind,
        uuid: text(v, "uuid"),
        submituser: text(v, "submituser"),
        runuser: text(v, "runuser"),
        argv,
        cwd: text(v, "runcwd"),
        tty: text(v, "ttyname"),
        at_ms: if kind == SudoKind::Exit {
            time_ms(v, "exit_time")
        } else {
            time_ms(v, "submit_time")
        },
        reason: text(v, "reason"),
        exit_value: v["exit_value"]
            .as_i64()
            .or_else(|| v.get("signal").map(|_| 128)),
        signal: text(v, "signal"),
        run_ms: run["seconds"]
            .as_u64()
            .unwrap_or(0)
            .saturating_mul(1000)
            .saturating_add(run["nanoseconds"].as_u64().unwrap_or(0) / 1_000_000),
        iolog: text(v, "iolog_path"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &[u8] = include_bytes!("fixtures/sudo-1.9.13.json");

    #[test]
    fn every_member_of_real_sudo_output_is_kept_despite_duplicate_keys() {
        let p = members(FIXTURE, 0);
        let kinds: Vec<SudoKind> = p.events.iter().map(|e| e.kind).collect();
        use SudoKind::*;
        assert_eq!(
            kinds,
            [
                Accept, Exit, Accept, Exit, Reject, Accept, Exit, Accept, Exit, Reject
            ]
        );
        let first = &p.events[0];
        assert_eq!(first.argv, ["/usr/bin/id", "-u"]);
        assert_eq!(first.submituser, "alice");
        assert_eq!(first.runuser, "root");
        assert_eq!(first.cwd, "/tmp");
        assert_eq!(p.events[1].uuid, first.uuid);
        assert_eq!(p.events[1].exit_value, Some(0));
        assert_eq!(p.events[3].exit_value, Some(1));
        assert_eq!(p.events[4].reason, "a password is required");
        // Stops before the closing brace sudo writes over.
        assert_eq!(&FIXTURE[p.consumed..], b"\n}\n");
        assert!(p.skipped.is_empty());
    }

    #[test]
    fn reading_on_from_any_cut_gives_each_event_once() {
        let whole = members(FIXTURE, 0).events;
        for cut in (0..FIXTURE.len()).step_by(97) {
            let first = members(&FIXTURE[..cut], 0);
            let start = first.consumed;
            let rest = members(&FIXTURE[start..], start as u64);
            let mut all = first.events;
            all.extend(rest.events);
            assert_eq!(all, whole, "cut at {cut}");
        }
    }

    #[test]
    fn appending_over_the_closing_brace_reads_on() {
        let p = members(FIXTURE, 0);
        // What sudo does: the object's end is overwritten by the next member.
        let mut grown = FIXTURE[..p.consumed].to_vec();
        grown.extend_from_slice(b",\n    \"reject\": {\"uuid\": \"x\", \"reason\": \"command not allowed\", \"runargv\": [\"/bin/sh\"]}\n}\n");
        let next = members(&grown[p.consumed..], p.consumed as u64);
        assert_eq!(next.events.len(), 1);
        assert_eq!(next.events[0].reason, "command not allowed");
    }

    #[test]
    fn garbage_invalid_utf8_and_control_characters_do_not_stop_the_reader() {
        let text = b"{\n    \"accept\": {\"uuid\": \"a\", \"runargv\": [\"/bin/echo\", \"\xff\xfe\\u001b[2J\"]},\n    \"junk\": [1, 2,,,\n    \"exit\": {\"uuid\": \"a\", \"exit_value\": 3}\n}\n";
        let p = members(text, 0);
        let kinds: Vec<SudoKind> = p.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [SudoKind::Accept, SudoKind::Exit]);
        assert_eq!(p.events[0].argv[1], "??\u{1b}[2J");
        assert_eq!(p.skipped.len(), 1);
    }

    #[test]
    fn a_member_too_big_to_be_real_is_skipped() {
        let mut text = b"{\n    \"accept\": {\"uuid\": \"".to_vec();
        text.extend(std::iter::repeat_n(b'a', MAX_MEMBER_BYTES + 10));
        let p = members(&text, 0);
        assert!(p.events.is_empty());
        assert_eq!(p.consumed, text.len());
        assert_eq!(p.skipped.len(), 1);
    }
}
