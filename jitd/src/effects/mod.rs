//! Putting a grant on the system and taking it off: sudoers drop-ins (`sudoers`) and group
//! membership (`group`, with its marker in `manifest`). Both only accept the validated types of
//! `crate::names`, and both are idempotent, so repeating a step after a crash is always safe.
//! What outlives a grant is ended by `recall` (processes, read through `procs`) and `setgid`
//! (files).

use std::path::PathBuf;
use std::time::Duration;

pub mod group;
pub mod group_file;
pub mod manifest;
pub mod routes;
pub mod sudoers;

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not safe to write grants into: {why}")]
    UnsafeDir { path: PathBuf, why: String },
    #[error(
        "{path} was not written by jitd (symlink, special file or foreign content); left untouched"
    )]
    Foreign { path: PathBuf },
    #[error("visudo refused the drop-in, nothing was installed: {output}")]
    Visudo { path: PathBuf, output: String },
    #[error("{tool} is missing or cannot run: {why}")]
    ToolMissing { tool: PathBuf, why: String },
    #[error("gpasswd {args} failed ({status}): {stderr}")]
    Gpasswd {
        args: String,
        status: String,
        stderr: String,
    },
    #[error("check after the change failed: {what}")]
    Verify { what: String },
}

impl GrantError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// How long visudo or gpasswd may take before jitd gives up on it (a hung NSS module, a stuck
/// lock file): the step then fails like any failed tool, and the usual retry applies.
pub(crate) const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs a tool with an empty environment (plus `LC_ALL=C` and a fixed `PATH`), so nothing the
/// daemon inherited can change how visudo or gpasswd behave, and their messages are stable; a
/// tool still running after [`TOOL_TIMEOUT`] is killed.
#[allow(clippy::disallowed_methods)] // the one way jitd runs a tool, and waits for it
pub(crate) fn run_tool(
    tool: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> Result<std::process::Output, GrantError> {
    run_tool_within(tool, args, TOOL_TIMEOUT)
}

fn run_tool_within(
    tool: &std::path::Path,
    args: &[&std::ffi::OsStr],
    timeout: Duration,
) -> Result<std::process::Output, GrantError> {
    run_tool_fed(tool, args, None, timeout)
}

/// Like [`run_tool`], with `input` on the tool's standard input (small: it fits the pipe, so
/// writing it all before waiting cannot block) and its own deadline.
pub(crate) fn run_tool_fed(
    tool: &std::path::Path,
    args: &[&std::ffi::OsStr],
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<std::process::Output, GrantError> {
    start_tool(tool, args, input)?.wait(timeout)
}

/// A tool started by [`start_tool`]: [`RunningTool::wait`] takes its answer; dropped unwaited,
/// it is left to finish and reaped.
pub(crate) struct RunningTool {
    tool: PathBuf,
    pid: nix::unistd::Pid,
    answer: Option<std::sync::mpsc::Receiver<std::io::Result<std::process::Output>>>,
}

/// Starts a tool the way [`run_tool`] runs it, without waiting for it: the caller does other
/// work (a database commit, a synced write) while it runs.
#[allow(clippy::disallowed_methods)] // the one way jitd runs a tool, and waits for it
pub(crate) fn start_tool(
    tool: &std::path::Path,
    args: &[&std::ffi::OsStr],
    input: Option<&[u8]>,
) -> Result<RunningTool, GrantError> {
    use std::io::Write;
    use std::process::Stdio;
    let missing = |e: std::io::Error| GrantError::ToolMissing {
        tool: tool.to_path_buf(),
        why: e.to_string(),
    };
    let mut child = std::process::Command::new(tool)
        .args(args)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(missing)?;
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        // Dropping `stdin` at the end of this block closes it: the tool sees end of input.
        let _ = stdin.write_all(bytes);
    }
    // A thread of its own waits for the tool and reads what it says, so the answer is taken
    // the moment the tool exits (polling cost up to a poll's interval on every visudo run of
    // a grant), and a tool saying more than a pipe holds cannot block before it exits.
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::Builder::new()
        .name("jitd-tool".into())
        .spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
    if let Err(e) = waiter {
        // The child was moved into the closure that never ran: it is reaped nowhere but
        // here. Killed, and reported as missing.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        return Err(missing(e));
    }
    Ok(RunningTool {
        tool: tool.to_path_buf(),
        pid,
        answer: Some(rx),
    })
}

impl RunningTool {
    /// The tool's output once it exits; killed if it is still running after `timeout`.
    pub(crate) fn wait(mut self, timeout: Duration) -> Result<std::process::Output, GrantError> {
        let Some(rx) = self.answer.take() else {
            return Err(self.gone("already waited for"));
        };
        match rx.recv_timeout(timeout) {
            Ok(output) => output.map_err(|e| self.gone(&e.to_string())),
            Err(_) => {
                self.stop(&rx);
                Err(self.gone(&format!(
                    "still running after {} ms; killed",
                    timeout.as_millis()
                )))
            }
        }
    }

    fn gone(&self, why: &str) -> GrantError {
        GrantError::ToolMissing {
            tool: self.tool.clone(),
            why: why.to_string(),
        }
    }

    fn stop(&self, rx: &std::sync::mpsc::Receiver<std::io::Result<std::process::Output>>) {
        // Not reaped yet (the waiter holds it until it exits), so the pid is still the tool's.
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        let _ = rx.recv();
    }
}

impl Drop for RunningTool {
    fn drop(&mut self) {
        // Unwaited (the work it checked was abandoned): left to finish, and reaped by its
        // waiter. Not killed: the waiter may have reaped it already, and its pid may be
        // another process's by now.
        drop(self.answer.take());
    }
}

pub mod enforce;
pub mod procs;
pub mod recall;
pub mod setgid;
pub mod shadow_lock;
pub mod ssh_keygen;

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_tool_that_hangs_is_killed_at_its_deadline() {
        let started = Instant::now();
        let e = run_tool_within(
            std::path::Path::new("/bin/sleep"),
            &[std::ffi::OsStr::new("30")],
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(e.to_string().contains("killed"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let out = run_tool(
            std::path::Path::new("/bin/echo"),
            &[std::ffi::OsStr::new("hi")],
        )
        .unwrap();
        assert_eq!(out.stdout, b"hi\n");
    }

    #[test]
    fn a_tool_saying_more_than_a_pipe_holds_is_read_whole_and_answered_at_once() {
        // 1 MiB on stdout: more than a pipe's 64 KiB, so a reader that waited for the exit
        // first would have waited for the deadline.
        let started = Instant::now();
        let out = run_tool_within(
            std::path::Path::new("/usr/bin/head"),
            &[
                std::ffi::OsStr::new("-c"),
                std::ffi::OsStr::new("1048576"),
                std::ffi::OsStr::new("/dev/zero"),
            ],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.stdout.len(), 1 << 20);
        assert!(out.status.success());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
