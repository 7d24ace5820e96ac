//! The gate socket's server: pam_jit's checks answered on threads of their own, from the
//! in-memory gate index, never behind a bus call, the core's lock, the disk or a child process.
//!
//! - The socket is `gate_socket` (default `/run/jitd/gate`): its directory root-owned and not
//!   writable by others, the socket itself mode 0600. Whatever the file system says, each
//!   connection's peer uid comes from the kernel (`SO_PEERCRED`) and only uid 0 is answered.
//! - [`ACCEPTORS`] threads accept connections and answer each `Check` themselves (microseconds,
//!   from memory: no thread is started for it). The calls that need the core — in-place
//!   requests and sessions — are served on short-lived threads of their own, at most
//!   [`MAX_IN_FLIGHT`] at once, so waiting for the core never holds up anyone's check.
//! - A connection sends one line within [`READ_TIMEOUT`] or is dropped.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use crate::bus::Shared;
use crate::client::Error;
use crate::daemon::Ask;
use crate::gate_proto::{self, ERROR_PREFIX, GateCall, GateReply, MAX_LINE};
use crate::terms::Via;

/// Threads that accept connections and answer checks themselves: a check never waits for a
/// thread to be started, and one peer slow to send its line holds up one of them, not the gate.
const ACCEPTORS: usize = 4;
/// Calls other than checks (in-place requests, sessions) served at the same time, each on a
/// thread of its own; more are refused at once as busy.
const MAX_IN_FLIGHT: usize = 64;
/// How long a peer has to send its call, and to take the answer.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an accepting thread waits for a call's line itself (pam_jit sends it right after
/// connecting); a peer slower than that is waited for on a thread of its own.
const INLINE_READ: Duration = Duration::from_millis(20);
/// The gate's threads run ahead of the daemon's bulk work and of users' processes: a sudo
/// waits on them. (The unit's `LimitNICE=` lets jitd take this without CAP_SYS_NICE.)
const GATE_NICE: i32 = -10;

/// Why the gate socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("gate socket {path}: {why}")]
    Unsafe { path: PathBuf, why: String },
    #[error("gate socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds `path` and serves it on threads of their own until the process ends.
#[allow(clippy::disallowed_methods)] // the gate's own threads: the point of the module
pub fn serve(path: &Path, shared: Shared) -> Result<(), SocketError> {
    let listener = Arc::new(bind(path)?);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let io = |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    };
    for n in 0..ACCEPTORS {
        let (listener, shared, in_flight) = (listener.clone(), shared.clone(), in_flight.clone());
        std::thread::Builder::new()
            .name(format!("jitd-gate-{n}"))
            .spawn(move || {
                // Best effort: without it the gate still answers, only later under load.
                // Threads started below inherit it.
                let _ = crate::sys::set_thread_nice(GATE_NICE);
                for stream in listener.incoming().flatten() {
                    serve_one(stream, &shared, &in_flight);
                }
            })
            .map_err(io)?;
    }
    Ok(())
}

/// Creates the directory (root, 0755) if needed, checks nobody else can replace what is in it,
/// removes a socket left by an earlier run and binds a fresh one, mode 0600.
fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let io = |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    };
    let unsafe_because = |why: String| SocketError::Unsafe {
        path: path.to_path_buf(),
        why,
    };
    let dir = path
        .parent()
        .ok_or_else(|| unsafe_because("no directory".into()))?;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .recursive(true)
            .create(dir)
            .map_err(io)?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(unsafe_because(format!(
            "{} must be a directory owned by root and writable by root only",
            dir.display()
        )));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path).map_err(io)?,
        Ok(_) => {
            return Err(unsafe_because(
                "something other than a socket is in the way; remove it".into(),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    // Between bind and chmod a user could connect; the peer check refuses them anyway.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

fn refuse_busy(mut stream: UnixStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(&gate_proto::encode(&refused(&Error::Unavailable(
        "jitd is answering too many checks at once; try again".into(),
    ))));
}

fn refused(e: &Error) -> GateReply {
    GateReply::Refused {
        name: format!("{ERROR_PREFIX}.{}", e.short_name()),
        message: e.message(),
    }
}

/// Reads one call and answers it: a check on this thread (microseconds, from memory), any
/// other call, or a peer slow to send its line, on a thread of its own.
fn serve_one(stream: UnixStream, shared: &Shared, in_flight: &Arc<AtomicUsize>) {
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let root = match getsockopt(&stream, PeerCredentials) {
        Ok(peer) if peer.uid() == 0 => Ok(()),
        Ok(peer) => Err(Error::NotAllowed(format!(
            "the gate is for root only, not uid {}",
            peer.uid()
        ))),
        Err(e) => Err(Error::NotAllowed(format!(
            "cannot identify the caller: {e}"
        ))),
    };
    if let Err(e) = root {
        return reply(stream, &refused(&e));
    }
    let mut line = Vec::new();
    match read_line(&stream, &mut line, INLINE_READ) {
        Ok(true) => match gate_proto::decode(&line) {
            Ok(call @ GateCall::Check { .. }) => reply(stream, &answer(call, shared)),
            Ok(call) => elsewhere(stream, shared, in_flight, Ok(call)),
            Err(why) => reply(stream, &refused(&Error::InvalidArgument(why))),
        },
        Ok(false) => elsewhere(stream, shared, in_flight, Err(line)),
        Err(why) => reply(stream, &refused(&Error::InvalidArgument(why))),
    }
}

/// Serves a call (or the rest of a line not yet received) on a thread of its own.
#[allow(clippy::disallowed_methods)] // the slow calls' own threads
fn elsewhere(
    stream: UnixStream,
    shared: &Shared,
    in_flight: &Arc<AtomicUsize>,
    call: Result<GateCall, Vec<u8>>,
) {
    if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
        in_flight.fetch_sub(1, Ordering::AcqRel);
        return refuse_busy(stream);
    }
    let (shared, done) = (shared.clone(), in_flight.clone());
    let spawned = std::thread::Builder::new()
        .name("jitd-gate-call".into())
        .spawn(move || {
            let call = call.or_else(
                |mut line| match read_line(&stream, &mut line, READ_TIMEOUT) {
                    Ok(true) => gate_proto::decode(&line),
                    Ok(false) => Err("no whole call received in time".into()),
                    Err(why) => Err(why),
                },
            );
            let answer = match call {
                Ok(call) => answer(call, &shared),
                Err(why) => refused(&Error::InvalidArgument(why)),
            };
            reply(stream, &answer);
            done.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn reply(mut stream: UnixStream, reply: &GateReply) {
    let _ = stream.write_all(&gate_proto::encode(reply));
}

/// Reads into `line` until a newline, for at most `wait`. `Ok(true)`: the line is whole;
/// `Ok(false)`: not yet (what came so far is in `line`); `Err`: the peer closed, failed or
/// sent more than a call may hold.
fn read_line(stream: &UnixStream, line: &mut Vec<u8>, wait: Duration) -> Result<bool, String> {
    let deadline = std::time::Instant::now() + wait;
    let mut chunk = [0u8; 1024];
    loop {
        if line.contains(&b'\n') {
            return Ok(true);
        }
        if line.len() > MAX_LINE {
            return Err(format!("message longer than {MAX_LINE} bytes"));
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let _ = stream.set_read_timeout(Some(left));
        match (&*stream).read(&mut chunk) {
            Ok(0) => return Err("the peer closed before sending a whole call".into()),
            Ok(n) => line.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(false);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("no call received: {e}")),
        }
    }
}

fn answer(call: GateCall, shared: &Shared) -> GateReply {
    let result = match call {
        GateCall::Check { uid, service, .. } => {
            let now = shared.clock.now();
            let gate = shared.gate.read().unwrap_or_else(|p| p.into_inner());
            return GateReply::Decision {
                decision: gate.check(uid, &service, &now),
            };
        }
        GateCall::RequestFor {
            uid,
            privilege,
            duration_secs,
            reason,
            ticket,
        } => {
            let ask = Ask {
                privilege: &privilege,
                duration_secs,
                reason: &reason,
                ticket: &ticket,
                via: Via::Pam,
            };
            let out = shared.engine().request(uid, &ask);
            shared.wake.notify_one();
            out.map(|outcome| GateReply::Outcome { outcome })
        }
        GateCall::Choices { uid, service } => shared
            .engine()
            .choices(uid, &service)
            .map(|choices| GateReply::Choices { choices }),
        GateCall::SessionOpened { session } => shared
            .engine()
            .session_opened(session)
            .map(|id| GateReply::SessionId { id }),
        GateCall::SessionClosed { session_id } => shared
            .engine()
            .session_closed(&session_id)
            .map(|()| GateReply::Done),
    };
    result.unwrap_or_else(|e| refused(&e))
}
