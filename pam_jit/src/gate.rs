//! The real [`GateClient`]: one exchange with jitd's gate socket per call, on the calling
//! thread, under a hard deadline.
//!
//! Before anything is sent, the socket must prove it is jitd's: its directory root-owned and
//! writable by root only, the socket itself root-owned with no access for group or others, and
//! — what no file trick can fake — the kernel reporting the listening peer as uid 0
//! (`SO_PEERCRED`). A user who replaces the socket or the directory, or points a symlink at
//! their own listener, gets nothing answered and nothing sent. Nothing outlives the call: no
//! thread, no descriptor. The path comes from [`Options`] only, never from the environment.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jitd::gate_proto::{self, GateCall, GateReply, MAX_LINE};
use jitd::wire::{GateDecision, PrivilegeInfo, RequestOutcome, SessionInfo};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, UnixAddr, connect, getsockopt, socket,
    sockopt::PeerCredentials,
};

use crate::args::Options;
use crate::core::{GateClient, GateError};

pub struct SocketGate {
    path: PathBuf,
    timeout: Duration,
}

impl SocketGate {
    pub fn new(o: &Options) -> Self {
        Self {
            path: o.socket.clone(),
            timeout: o.timeout,
        }
    }

    /// Sends `call` and reads the one reply, within the timeout, connection included.
    fn exchange(&self, call: &GateCall) -> Result<GateReply, GateError> {
        let deadline = Instant::now() + self.timeout;
        check_socket_file(&self.path).map_err(GateError::Unreachable)?;
        let mut stream = connect_by(&self.path, deadline).map_err(GateError::Unreachable)?;
        let peer = getsockopt(&stream, PeerCredentials)
            .map_err(|e| GateError::Unreachable(format!("cannot identify the gate: {e}")))?;
        if peer.uid() != 0 {
            return Err(GateError::Unreachable(format!(
                "{} is served by uid {}, not root: refusing to talk to an impostor",
                self.path.display(),
                peer.uid()
            )));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let left = left.max(Duration::from_millis(1));
        let io = |e: std::io::Error| GateError::Unreachable(format!("gate socket: {e}"));
        stream.set_write_timeout(Some(left)).map_err(io)?;
        stream.set_read_timeout(Some(left)).map_err(io)?;
        stream.write_all(&gate_proto::encode(call)).map_err(io)?;
        let mut line = Vec::new();
        BufReader::new((&stream).take(MAX_LINE as u64 + 1))
            .read_until(b'\n', &mut line)
            .map_err(io)?;
        gate_proto::decode(&line).map_err(GateError::Unreachable)
    }
}

/// The socket and its directory must be root's alone before we connect.
fn check_socket_file(path: &Path) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let d = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !d.is_dir() || d.uid() != 0 || d.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is not a root-owned directory writable by root only: not jitd's",
            dir.display()
        ));
    }
    let s = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !s.file_type().is_socket() || s.uid() != 0 || s.mode() & 0o077 != 0 {
        return Err(format!(
            "{} is not a root-owned socket closed to others: not jitd's",
            path.display()
        ));
    }
    Ok(())
}

/// Connects without ever blocking past `deadline`: a full listen queue is retried briefly.
fn connect_by(path: &Path, deadline: Instant) -> Result<UnixStream, String> {
    let addr = UnixAddr::new(path).map_err(|e| format!("{}: {e}", path.display()))?;
    loop {
        let fd: OwnedFd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(|e| format!("no socket: {e}"))?;
        match connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
            Ok(()) => {
                let stream = UnixStream::from(fd);
                stream
                    .set_nonblocking(false)
                    .map_err(|e| format!("gate socket: {e}"))?;
                return Ok(stream);
            }
            Err(Errno::EAGAIN) if Instant::now() < deadline => {
                // The listen queue is full for a moment: try again shortly, on this thread.
                #[allow(clippy::disallowed_methods)] // a bounded wait inside the PAM call
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(Errno::EAGAIN) => return Err("jitd did not accept in time".into()),
            Err(e) => return Err(format!("cannot reach jitd at {}: {e}", path.display())),
        }
    }
}

/// jitd's refusals carry a message for the user; any other reply means no usable answer.
fn refused_or(reply: GateReply, what: &str) -> GateError {
    match reply {
        GateReply::Refused { name, message } => GateError::Refused { name, message },
        other => GateError::Unreachable(format!("unexpected answer to {what}: {other:?}")),
    }
}

impl GateClient for SocketGate {
    fn check(
        &mut self,
        uid: u32,
        service: &str,
        tty: &str,
        rhost: &str,
    ) -> Result<GateDecision, GateError> {
        let call = GateCall::Check {
            uid,
            service: service.into(),
            tty: tty.into(),
            rhost: rhost.into(),
        };
        match self.exchange(&call)? {
            GateReply::Decision { decision } => Ok(decision),
            other => Err(refused_or(other, "a check")),
        }
    }

    fn request(
        &mut self,
        uid: u32,
        privilege: &str,
        duration_secs: u64,
        reason: &str,
        ticket: &str,
    ) -> Result<RequestOutcome, GateError> {
        let call = GateCall::RequestFor {
            uid,
            privilege: privilege.into(),
            duration_secs,
            reason: reason.into(),
            ticket: ticket.into(),
        };
        match self.exchange(&call)? {
            GateReply::Outcome { outcome } => Ok(outcome),
            other => Err(refused_or(other, "a request")),
        }
    }

    fn choices(
        &mut self,
        uid: u32,
        service: &str,
    ) -> Result<Option<Vec<PrivilegeInfo>>, GateError> {
        let call = GateCall::Choices {
            uid,
            service: service.into(),
        };
        match self.exchange(&call)? {
            GateReply::Choices { choices } => Ok(Some(choices)),
            // A jitd from before the call cannot parse it: ask without choices.
            GateReply::Refused { name, .. } if name.ends_with(".InvalidArgument") => Ok(None),
            other => Err(refused_or(other, "a list of choices")),
        }
    }

    fn session_opened(&mut self, s: &SessionInfo) -> Result<String, GateError> {
        let call = GateCall::SessionOpened { session: s.clone() };
        match self.exchange(&call)? {
            GateReply::SessionId { id } => Ok(id),
            other => Err(refused_or(other, "a session")),
        }
    }

    fn session_closed(&mut self, id: &str) -> Result<(), GateError> {
        let call = GateCall::SessionClosed {
            session_id: id.into(),
        };
        match self.exchange(&call)? {
            GateReply::Done => Ok(()),
            other => Err(refused_or(other, "a session's end")),
        }
    }
}
