//! The gate socket's server: pam_jit's checks answered on threads of their own, from the
//! in-memory gate index, never behind a bus call, the core's lock, the disk or a child process.
//!
//! - The socket is `gate_socket` (default `/run/jitd/gate`): its directory root-owned and not
//!   writable by others, the socket itself mode 0600. Whatever the file system says, each
//!   connection's peer uid comes from the kernel (`SO_PEERCRED`) and only uid 0 is answered.
//! - One accept thread; each connection is served by a short-lived thread of its own, at most
//!   [`MAX_IN_FLIGHT`] at once (a `Check` takes microseconds; the calls that need the core —
//!   in-place requests and sessions — may wait for it without holding up anyone's check).
//! - A connection sends one line within [`READ_TIMEOUT`] or is dropped.

use std::io::{BufRead, BufReader, Read, Write};
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

/// Connections served at the same time; more are refused at once as busy.
const MAX_IN_FLIGHT: usize = 64;
/// How long a peer has to send its call, and to take the answer.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
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

/// Binds `path` and serves it on a thread of its own until the process ends.
#[allow(clippy::disallowed_methods)] // the gate's own accept thread: the point of the module
pub fn serve(path: &Path, shared: Shared) -> Result<(), SocketError> {
    let listener = bind(path)?;
    let in_flight = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("jitd-gate".into())
        .spawn(move || {
            // Best effort: without it the gate still answers, only later under load. Threads
            // started below inherit it.
            let _ = crate::sys::set_thread_nice(GATE_NICE);
            for stream in listener.incoming().flatten() {
                if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                    refuse_busy(stream);
                    continue;
                }
                let (shared, done) = (shared.clone(), in_flight.clone());
                let spawned = std::thread::Builder::new()
                    .name("jitd-gate-call".into())
                    .spawn(move || {
                        serve_one(stream, &shared);
                        done.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                }
            }
        })
        .map_err(|source| SocketError::Io {
            path: path.to_path_buf(),
            source,
        })?;
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

/// Reads one call, answers it, closes.
fn serve_one(stream: UnixStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let reply = match getsockopt(&stream, PeerCredentials) {
        Ok(peer) if peer.uid() == 0 => match read_call(&stream) {
            Ok(call) => answer(call, shared),
            Err(why) => refused(&Error::InvalidArgument(why)),
        },
        Ok(peer) => refused(&Error::NotAllowed(format!(
            "the gate is for root only, not uid {}",
            peer.uid()
        ))),
        Err(e) => refused(&Error::NotAllowed(format!(
            "cannot identify the caller: {e}"
        ))),
    };
    let mut stream = stream;
    let _ = stream.write_all(&gate_proto::encode(&reply));
}

fn read_call(stream: &UnixStream) -> Result<GateCall, String> {
    let mut line = Vec::new();
    BufReader::new(stream.take(MAX_LINE as u64 + 1))
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("no call received: {e}"))?;
    gate_proto::decode(&line)
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
