//! The gate socket: how pam_jit asks jitd, from inside sudo and su, without the bus.
//!
//! One connection, one call: pam_jit writes one JSON line ([`GateCall`]) and reads one JSON line
//! back ([`GateReply`]). The socket (`/run/jitd/gate`, root-owned, mode 0600) and the peer
//! credentials the kernel reports on both ends are the authentication: jitd answers only uid 0,
//! and pam_jit talks only to a listener running as uid 0. No bus daemon in between, so a flood
//! of bus calls from a user cannot queue in front of a sudo's check.

#![forbid(unsafe_code)]

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::wire::{GateDecision, PrivilegeInfo, RequestOutcome, SessionInfo};

/// Where jitd listens unless `gate_socket` in jitd.toml (and `socket=` on the PAM line) say
/// otherwise.
pub const DEFAULT_SOCKET: &str = "/run/jitd/gate";

/// Longest line either side sends or accepts, in bytes (a call carries at most a reason of
/// 1024 characters).
pub const MAX_LINE: usize = 16 * 1024;

/// Prefix of the error names in [`GateReply::Refused`], as on the bus.
pub const ERROR_PREFIX: &str = "org.jitd.Jitd1.Error";

/// What pam_jit asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum GateCall {
    /// Whether `uid` holds a live grant that covers PAM service `service`.
    Check {
        uid: u32,
        service: String,
        tty: String,
        rhost: String,
    },
    /// An in-place request at the sudo/su prompt, for the invoking user `uid`.
    RequestFor {
        uid: u32,
        privilege: String,
        duration_secs: u64,
        reason: String,
        ticket: String,
    },
    /// What `uid` may request in place that would open PAM service `service`: the choices the
    /// prompt shows after a refusal.
    Choices {
        uid: u32,
        service: String,
    },
    /// An elevated session opened under a grant; the answer is its id.
    SessionOpened {
        session: SessionInfo,
    },
    SessionClosed {
        session_id: String,
    },
}

/// What jitd answers.
// One reply per line, built, sent and dropped: boxing the outcome would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum GateReply {
    Decision {
        decision: GateDecision,
    },
    Outcome {
        outcome: RequestOutcome,
    },
    SessionId {
        id: String,
    },
    Choices {
        choices: Vec<PrivilegeInfo>,
    },
    Done,
    /// jitd refused: `name` is the bus error name (`org.jitd.Jitd1.Error.PolicyDenied`, ...),
    /// `message` is for the user.
    Refused {
        name: String,
        message: String,
    },
}

/// One message as the line sent on the socket.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail; an empty line is refused by the peer.
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}

/// One received line (without its newline, or with it) as a message.
pub fn decode<T: DeserializeOwned>(line: &[u8]) -> Result<T, String> {
    if line.len() > MAX_LINE {
        return Err(format!("message longer than {MAX_LINE} bytes"));
    }
    serde_json::from_slice(line.strip_suffix(b"\n").unwrap_or(line))
        .map_err(|e| format!("malformed message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_replies_survive_the_line() {
        let call = GateCall::RequestFor {
            uid: 1001,
            privilege: "db-maint".into(),
            duration_secs: 900,
            reason: "line\nbreak \"quoted\" \u{202e}".into(),
            ticket: String::new(),
        };
        let line = encode(&call);
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        assert_eq!(decode::<GateCall>(&line), Ok(call));
        let reply = GateReply::Refused {
            name: format!("{ERROR_PREFIX}.PolicyDenied"),
            message: "no".into(),
        };
        assert_eq!(decode::<GateReply>(&encode(&reply)), Ok(reply));
    }

    #[test]
    fn garbage_and_oversized_lines_are_refused() {
        assert!(decode::<GateCall>(b"{\"call\":\"format_disk\"}").is_err());
        assert!(decode::<GateCall>(b"\xff\xfe").is_err());
        assert!(decode::<GateCall>(&vec![b' '; MAX_LINE + 1]).is_err());
    }
}
