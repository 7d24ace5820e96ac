//! `org.jitd.Jitd1.Gate`: what pam_jit calls, as root, from sudo and su.

use zbus::Connection;
use zbus::message::Header;

use super::Shared;
use super::caller::{caller_uid, require_reply_expected};
use crate::client::{Error, GateDecision, RequestOutcome, SessionInfo};
use crate::daemon::Ask;
use crate::terms::Via;

pub struct Gate(pub Shared);

impl Gate {
    async fn require_root(conn: &Connection, header: &Header<'_>) -> Result<(), Error> {
        match caller_uid(conn, header).await? {
            0 => Ok(()),
            uid => Err(Error::NotAllowed(format!(
                "the Gate interface is for root only, not uid {uid}"
            ))),
        }
    }
}

#[zbus::interface(name = "org.jitd.Jitd1.Gate")]
impl Gate {
    /// Answered from the in-memory index: no database access, no engine lock.
    async fn check_access(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        uid: u32,
        service: &str,
        _tty: &str,
        _rhost: &str,
    ) -> Result<GateDecision, Error> {
        Self::require_root(conn, &header).await?;
        let now = self.0.clock.now();
        let gate = self.0.gate.read().unwrap_or_else(|p| p.into_inner());
        Ok(gate.check(uid, service, &now))
    }

    #[allow(clippy::too_many_arguments)] // the bus method's arguments plus zbus's two
    async fn request_for(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        uid: u32,
        privilege: &str,
        duration_secs: u64,
        reason: &str,
        ticket: &str,
    ) -> Result<RequestOutcome, Error> {
        require_reply_expected(&header)?;
        Self::require_root(conn, &header).await?;
        let ask = Ask {
            privilege,
            duration_secs,
            reason,
            ticket,
            via: Via::Pam,
        };
        let out = self.0.engine().request(uid, &ask);
        self.0
            .deadline_added(out.as_ref().map_or(0, |o| o.grant.expires_ms));
        out
    }

    async fn session_opened(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        session: SessionInfo,
    ) -> Result<String, Error> {
        Self::require_root(conn, &header).await?;
        self.0.engine().session_opened(session)
    }

    async fn session_closed(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        session_id: &str,
    ) -> Result<(), Error> {
        Self::require_root(conn, &header).await?;
        self.0.engine().session_closed(session_id)
    }
}
