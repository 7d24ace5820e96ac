//! Who is calling: the uid from the bus daemon's credentials for the message's sender, never
//! from an argument; whether the sender is still there; whether it waits for the answer.

use zbus::Connection;
use zbus::message::Header;

use super::Shared;
use super::limits::{Permit, SUMMARY_EVERY};
use crate::audit::AuditEvent;
use crate::client::Error;
use crate::daemon::Caller;

impl Shared {
    /// The uid of the caller, if the per-uid limits let it in. Checked before any work that
    /// costs jitd something (an audit row, a name lookup, polkit, the core's lock); a refusal
    /// is summarised in the audit once per window. Keep the permit for the whole call.
    pub(super) async fn admit(
        &self,
        conn: &Connection,
        header: &Header<'_>,
    ) -> Result<(u32, Option<Permit>), Error> {
        let uid = caller_uid(conn, header).await?;
        match self.limits.admit(uid, std::time::Instant::now()) {
            Ok(permit) => Ok((uid, permit)),
            Err(refusal) => {
                if let Some(refused) = refusal.summary {
                    self.engine().record(AuditEvent::CallsThrottled {
                        uid,
                        refused,
                        window_secs: SUMMARY_EVERY.as_secs(),
                    });
                }
                Err(Error::Unavailable(refusal.message))
            }
        }
    }

    /// The caller of this call: the uid from the bus, and — only when `needs_admin`, because
    /// polkit may be asked — whether it may act as an admin: root and members of
    /// `admin_group` without bus traffic, anyone else only on polkit's explicit yes for
    /// `org.jitd.Jitd1.manage`, asked without the core's lock held. `method` names the call in
    /// the audit of polkit's answer.
    pub(super) async fn caller(
        &self,
        conn: &Connection,
        header: &Header<'_>,
        method: &str,
        needs_admin: bool,
    ) -> Result<(Caller, Option<Permit>), Error> {
        let (uid, permit) = self.admit(conn, header).await?;
        let admin = needs_admin && self.admin(conn, header, uid, method).await;
        Ok((Caller { uid, admin }, permit))
    }

    pub(super) async fn admin(
        &self,
        conn: &Connection,
        header: &Header<'_>,
        uid: u32,
        method: &str,
    ) -> bool {
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

    /// The refusal for a caller who is not an admin.
    pub(super) fn not_admin(&self, what: &str) -> Error {
        Error::NotAllowed(crate::daemon::not_admin(
            what,
            &self.engine().config().admin_group,
        ))
    }
}

/// Refuses a state-changing call whose sender said it will not read the answer. A request
/// fired and forgotten (the sender may already be gone, its unique name soon reused) is not one
/// a person is waiting on; granting it would act for a caller nobody can see.
pub(super) fn require_reply_expected(header: &Header<'_>) -> Result<(), Error> {
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
pub(super) async fn still_connected(conn: &Connection, header: &Header<'_>) -> bool {
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
pub(super) async fn caller_uid(conn: &Connection, header: &Header<'_>) -> Result<u32, Error> {
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
