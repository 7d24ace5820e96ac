//! Putting a grant on the system and taking it off: sudoers drop-ins (`sudoers`) and group
//! membership (`group`). Both only accept the validated types of `crate::names`, and both are
//! idempotent, so repeating a step after a crash is always safe. What outlives a grant is
//! ended by `recall` (processes, read through `procs`) and `setgid` (files).

use std::path::PathBuf;

pub mod group;
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

/// Runs a tool with an empty environment (plus `LC_ALL=C` and a fixed `PATH`), so nothing the
/// daemon inherited can change how visudo or gpasswd behave, and their messages are stable.
#[allow(clippy::disallowed_methods)] // the one way jitd runs a tool
pub(crate) fn run_tool(
    tool: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> Result<std::process::Output, GrantError> {
    std::process::Command::new(tool)
        .args(args)
        .env_clear()
        .env("LC_ALL", "C")
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| GrantError::ToolMissing {
            tool: tool.to_path_buf(),
            why: e.to_string(),
        })
}

pub mod enforce;
pub mod procs;
pub mod recall;
pub mod setgid;
