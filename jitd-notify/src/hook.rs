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
    // Too long first: a hook cut off after MAX_OUTPUT bytes dies of SIGPIPE, which is not
    // the cause worth reporting.
    if out.len() as u64 > MAX_OUTPUT {
        return Err(format!("{hook}: answer longer than {MAX_OUTPUT} bytes"));
    }
    if !status.success() {
        return Err(format!("{hook}: {status}"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn hook(name: &str, body: &str) -> String {
        let path = std::env::temp_dir().join(format!("jitd-hook-{}-{name}", std::process::id()));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn note() -> Note {
        Note::new(
            1,
            "request.pending:r1".into(),
            "request.pending".into(),
            "{}".into(),
        )
    }

    #[test]
    fn answers_are_read_and_everything_else_fails_closed() {
        let t = Duration::from_secs(5);
        let h = hook(
            "ok",
            r#"cat >/dev/null; echo '{"decision":"approve","message":"ticket open"}'"#,
        );
        assert_eq!(
            ask(&h, &note(), t),
            Ok(Answer::Approve("ticket open".into()))
        );
        let h = hook("big", "head -c 10000000 /dev/zero | tr '\\0' x");
        assert!(ask(&h, &note(), t).unwrap_err().contains("longer than"));
        let h = hook("crash", "exit 3");
        assert!(ask(&h, &note(), t).unwrap_err().contains("exit status: 3"));
        let h = hook("odd", r#"echo '{"decision":"maybe"}'"#);
        assert!(
            ask(&h, &note(), t)
                .unwrap_err()
                .contains("unknown decision")
        );
        let h = hook("slow", "sleep 5");
        let e = ask(&h, &note(), Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("no answer within"), "{e}");
        for name in ["ok", "big", "crash", "odd", "slow"] {
            let _ = std::fs::remove_file(
                std::env::temp_dir().join(format!("jitd-hook-{}-{name}", std::process::id())),
            );
        }
    }
}
