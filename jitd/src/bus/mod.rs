//! The two bus interfaces the daemon serves at `/org/jitd/Jitd1`.
//!
//! Every method starts by asking the bus who the caller is (`GetConnectionCredentials` on the
//! message's sender). Arguments never say who the caller is. If the bus cannot say — the caller
//! already disconnected (polkit CVE-2021-3560), or the reply lacks a uid — the call is refused.
//! The Gate interface is also restricted to uid 0 by the bus policy file; it is checked here
//! again so a mistaken bus policy cannot open it.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use zbus::Connection;
use zbus::message::Header;

use crate::client::{Error, Explanation, GateDecision, GrantInfo, RequestOutcome, SessionInfo};
use crate::clock::Clock;
use crate::daemon::{Engine, GateIndex};
use crate::terms::Via;

/// State shared by both interfaces.
#[derive(Clone)]
pub struct Shared {
    pub engine: Arc<Mutex<Engine>>,
    pub gate: Arc<RwLock<GateIndex>>,
    pub clock: Arc<dyn Clock>,
    /// Wakes the expiry loop when a grant is added, so its next deadline is known at once.
    pub wake: Arc<tokio::sync::Notify>,
}

impl Shared {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock must not wedge revocation: take the state as it is.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the caller (`uid`, the sender of `header`) may manage every grant: root and
    /// members of `admin_group` without bus traffic, anyone else only on polkit's explicit yes
    /// for `org.jitd.Jitd1.manage`. The engine lock is not held while polkit thinks.
    async fn admin(&self, conn: &Connection, header: &Header<'_>, uid: u32, method: &str) -> bool {
        if self.engine().is_admin(uid) {
            return true;
        }
        let Some(sender) = header.sender() else {
            return false;
        };
        let answer = crate::polkit::authorized(conn, sender.as_str(), crate::polkit::MANAGE).await;
        self.engine().audit_polkit(uid, method, &answer);
        answer.unwrap_or(false)
    }

    fn not_admin(&self, what: &str) -> Error {
        Error::NotAllowed(format!(
            "{what} needs root, membership of {} or a polkit rule granting {}",
            self.engine().config().admin_group,
            crate::polkit::MANAGE
        ))
    }
}

/// Refuses a state-changing call whose sender said it will not read the answer. A request
/// fired and forgotten (the sender may already be gone, its unique name soon reused) is not one
/// a person is waiting on; granting it would act for a caller nobody can see.
fn require_reply_expected(header: &Header<'_>) -> Result<(), Error> {
    if header
        .primary()
        .flags()
        .contains(zbus::message::Flags::NO_REPLY_EXPECTED)
    {
        return Err(Error::InvalidArgument(
            "this call changes state: send it expecting a reply".into(),
        ));
    }
    Ok(())
}

/// Whether the sender of `header` is still on the bus.
async fn still_connected(conn: &Connection, header: &Header<'_>) -> bool {
    let Some(sender) = header.sender() else {
        return false;
    };
    let Ok(dbus) = zbus::fdo::DBusProxy::new(conn).await else {
        return false;
    };
    dbus.name_has_owner(sender.clone().into())
        .await
        .unwrap_or(false)
}

/// The uid of the connection that sent `header`, from the bus daemon.
async fn caller_uid(conn: &Connection, header: &Header<'_>) -> Result<u32, Error> {
    let Some(sender) = header.sender() else {
        return Err(Error::NotAllowed("the call carries no sender".into()));
    };
    let dbus = zbus::fdo::DBusProxy::new(conn)
        .await
        .map_err(|e| Error::NotAllowed(format!("cannot identify the caller: {e}")))?;
    let creds = dbus
        .get_connection_credentials(sender.clone().into())
        .await
        .map_err(|e| Error::NotAllowed(format!("cannot identify the caller: {e}")))?;
    creds
        .unix_user_id()
        .ok_or_else(|| Error::NotAllowed("the bus did not report the caller's uid".into()))
}

pub struct Manager(pub Shared);

#[zbus::interface(name = "org.jitd.Jitd1.Manager")]
impl Manager {
    async fn request(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        privilege: &str,
        duration_secs: u64,
        reason: &str,
        ticket: &str,
    ) -> Result<RequestOutcome, Error> {
        require_reply_expected(&header)?;
        let uid = caller_uid(conn, &header).await?;
        if !still_connected(conn, &header).await {
            return Err(Error::NotAllowed(
                "the caller disconnected before the answer".into(),
            ));
        }
        let outcome =
            self.0
                .engine()
                .request(uid, privilege, duration_secs, reason, ticket, Via::Bus)?;
        self.0.wake.notify_one();
        // A caller that left before its answer is not a person waiting to use the grant, and
        // its unique name will never be seen again: take the grant back at once.
        if !still_connected(conn, &header).await {
            let _ = self.0.engine().revoke(
                0,
                true,
                &outcome.grant.id,
                "the caller disconnected before the answer",
                false,
            );
            return Err(Error::NotAllowed(
                "the caller disconnected before the answer".into(),
            ));
        }
        Ok(outcome)
    }

    async fn list_mine(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        include_ended: bool,
    ) -> Result<Vec<GrantInfo>, Error> {
        let uid = caller_uid(conn, &header).await?;
        self.0.engine().list(Some(uid), include_ended)
    }

    async fn list_all(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        include_ended: bool,
    ) -> Result<Vec<GrantInfo>, Error> {
        let uid = caller_uid(conn, &header).await?;
        if !self.0.admin(conn, &header, uid, "ListAll").await {
            return Err(self.0.not_admin("listing every grant"));
        }
        self.0.engine().list(None, include_ended)
    }

    async fn revoke(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        grant_id: &str,
        reason: &str,
        terminate: bool,
    ) -> Result<GrantInfo, Error> {
        let uid = caller_uid(conn, &header).await?;
        // Dropping one's own grant needs nobody's permission: polkit is asked only when the
        // caller acts on another user's grant or wants its processes ended.
        let needs_admin = terminate || !self.0.engine().owns_live(uid, grant_id);
        let admin = needs_admin && self.0.admin(conn, &header, uid, "Revoke").await;
        let out = self
            .0
            .engine()
            .revoke(uid, admin, grant_id, reason, terminate);
        self.0.wake.notify_one();
        out
    }

    async fn explain(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        privilege: &str,
    ) -> Result<Explanation, Error> {
        let uid = caller_uid(conn, &header).await?;
        self.0.engine().explain(uid, privilege)
    }

    async fn reload_policy(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, Error> {
        let uid = caller_uid(conn, &header).await?;
        if !self.0.admin(conn, &header, uid, "ReloadPolicy").await {
            return Err(self.0.not_admin("reloading the policy"));
        }
        self.0.engine().reload_policy()
    }
}

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
        let out = self
            .0
            .engine()
            .request(uid, privilege, duration_secs, reason, ticket, Via::Pam);
        self.0.wake.notify_one();
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
