//! The external decision hook: the rule's program gets the pending request's JSON on stdin and
//! answers `{"decision": "approve" | "deny" | "pending", "message": "..."}` on stdout within
//! the timeout. Anything else — a crash, a hang, garbage, more than [`MAX_OUTPUT`] bytes — is
//! no vote at all (fail closed): the request waits for its human approvers.

#![allow(clippy::disallowed_methods)] // the notifier is an edge: it runs the hook and waits

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::note::Note;

/// Most bytes of answer read.
pub const MAX_OUTPUT: u64 = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Approve(String),
    Deny(String),
    Pending,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    decision: String,
    #[serde(default)]
    message: String,
}

/// Runs `hook` for `note`; `Err` says why no vote is cast.
pub fn ask(hook: &str, note: &Note, timeout: Duration) -> Result<Answer, String> {
    let mut child = Command::new(hook)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{hook}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(note.body.as_bytes());
    }
    let stdout = child.stdout.take().ok_or("no stdout")?;
    // The answer is read beside the wait so a hook that hangs with its pipe open is still
    // killed at the timeout; the reader ends when the pipe closes with the hook.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.take(MAX_OUTPUT + 1).read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{hook}: no answer within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{hook}: {e}")),
        }
    };
    let out = reader.join().map_err(|_| "reader failed")?;
    if !status.success() {
        return Err(format!("{hook}: {status}"));
    }
    if out.len() as u64 > MAX_OUTPUT {
        return Err(format!("{hook}: answer longer than {MAX_OUTPUT} bytes"));
    }
    let raw: Raw =
        serde_json::from_slice(&out).map_err(|e| format!("{hook}: not a decision ({e})"))?;
    let message: String = raw
        .message
        .chars()
        .filter(|c| !c.is_control())
        .take(500)
        .collect();
    match raw.decision.as_str() {
        "approve" => Ok(Answer::Approve(message)),
        "deny" => Ok(Answer::Deny(message)),
        "pending" => Ok(Answer::Pending),
        other => Err(format!("{hook}: unknown decision {other:?}")),
    }
}
