//! `org.jitd.Jitd1.Manager`: requests, listings, revocation, explanations and policy reload,
//! for any local user, authorised per call.

use zbus::Connection;
use zbus::message::Header;

use super::Shared;
use super::caller::{require_reply_expected, still_connected};
use crate::client::{
    ChainCheck, Error, Explanation, GrantInfo, PrivilegeInfo, RequestInfo, RequestOutcome,
    ReviewInfo,
};
use crate::daemon::{Ask, Caller};
use crate::terms::{RequestScope, Via};

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
        // `admit` asked the bus for the caller's credentials: it was connected just now.
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        let proven = self.0.reauth_if_needed(&header, uid, privilege).await?;
        let ask = Ask {
            privilege,
            duration_secs,
            reason,
            ticket,
            via: Via::Bus,
        };
        let outcome = self.0.engine().request_with(uid, &ask, proven)?;
        self.0.deadline_added(outcome.grant.expires_ms);
        // A caller that left before its answer is not a person waiting to use the grant, and
        // its unique name will never be seen again: take the grant back at once.
        if !still_connected(conn, &header).await {
            self.0.engine().withdraw(
                &outcome.grant.id,
                "the caller disconnected before the answer",
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
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        self.0.engine().list(Some(uid), include_ended)
    }

    async fn list_all(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        include_ended: bool,
    ) -> Result<Vec<GrantInfo>, Error> {
        let (caller, _permit) = self.0.caller(conn, &header, "ListAll", true).await?;
        if !caller.admin {
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
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        // Dropping one's own grant needs nobody's permission: polkit is asked only when the
        // caller acts on another user's grant or wants its processes ended.
        let needs_admin = terminate || !self.0.engine().owns_live(uid, grant_id);
        let admin = needs_admin && self.0.admin(conn, &header, uid, "Revoke").await;
        let out = self
            .0
            .engine()
            .revoke(Caller { uid, admin }, grant_id, reason, terminate);
        // Nothing to wake the expiry loop for: an ended grant moves no deadline sooner, and a
        // removal left to retry is looked at within the loop's longest sleep.
        out
    }

    async fn explain(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        privilege: &str,
    ) -> Result<Explanation, Error> {
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        self.0.engine().explain(uid, privilege)
    }

    async fn list_privileges(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<PrivilegeInfo>, Error> {
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        self.0.engine().privileges(uid)
    }

    async fn list_requests(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        scope: RequestScope,
    ) -> Result<Vec<RequestInfo>, Error> {
        let method = "ListRequests";
        let needs_admin = scope == RequestScope::All;
        let (caller, _permit) = self.0.caller(conn, &header, method, needs_admin).await?;
        self.0.engine().list_requests(caller, scope)
    }

    async fn approve(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        request_id: &str,
        comment: &str,
        shorten_to_secs: u64,
    ) -> Result<RequestInfo, Error> {
        require_reply_expected(&header)?;
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        let out = self
            .0
            .engine()
            .approve(uid, request_id, comment, shorten_to_secs);
        // A new grant's deadline is one the expiry loop must know at once.
        self.0.wake.notify_one();
        out
    }

    async fn deny(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        request_id: &str,
        comment: &str,
    ) -> Result<RequestInfo, Error> {
        require_reply_expected(&header)?;
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        self.0.engine().deny(uid, request_id, comment)
    }

    async fn cancel(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        request_id: &str,
    ) -> Result<RequestInfo, Error> {
        require_reply_expected(&header)?;
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        self.0.engine().cancel(uid, request_id)
    }

    async fn request_blob(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        request_id: &str,
    ) -> Result<String, Error> {
        let (caller, _permit) = self.0.caller(conn, &header, "RequestBlob", false).await?;
        self.0.engine().request_blob(caller, request_id)
    }

    async fn submit_token(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        token: Vec<u8>,
    ) -> Result<RequestInfo, Error> {
        require_reply_expected(&header)?;
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        let out = self.0.engine().submit_token(uid, &token);
        // A new grant's deadline is one the expiry loop must know at once.
        self.0.wake.notify_one();
        out
    }

    async fn mfa_challenge(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, Error> {
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        self.0.engine().mfa_challenge(uid)
    }

    async fn prove_mfa(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        proof: Vec<u8>,
    ) -> Result<(), Error> {
        require_reply_expected(&header)?;
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        self.0.engine().prove_mfa(uid, &proof)
    }

    async fn extend(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        grant_id: &str,
        secs: u64,
        reason: &str,
    ) -> Result<RequestOutcome, Error> {
        require_reply_expected(&header)?;
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        let privilege = self.0.engine().privilege_of(uid, grant_id);
        let proven = self.0.reauth_if_needed(&header, uid, &privilege).await?;
        let out = self.0.engine().extend(uid, grant_id, secs, reason, proven);
        // The deadline moved: the expiry loop must look again.
        self.0.wake.notify_one();
        out
    }

    async fn review(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        grant_id: &str,
        outcome: &str,
        comment: &str,
    ) -> Result<ReviewInfo, Error> {
        require_reply_expected(&header)?;
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        self.0.engine().review(uid, grant_id, outcome, comment)
    }

    async fn list_reviews(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<Vec<ReviewInfo>, Error> {
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        self.0.engine().list_reviews(Caller { uid, admin: false })
    }

    /// Declared for introspection; sent by the runtime (`runtime::emit_request_signals`) on
    /// every change of a request.
    #[zbus(signal)]
    async fn request_changed(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        request_id: &str,
        state: crate::terms::RequestState,
    ) -> zbus::Result<()>;

    async fn reload_policy(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, Error> {
        let (caller, _permit) = self.0.caller(conn, &header, "ReloadPolicy", true).await?;
        if !caller.admin {
            return Err(self.0.not_admin("reloading the policy"));
        }
        self.0.engine().reload_policy()
    }

    async fn verify_audit(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<ChainCheck, Error> {
        let (caller, _permit) = self.0.caller(conn, &header, "VerifyAudit", true).await?;
        if !caller.admin {
            return Err(self.0.not_admin("verifying the audit trail"));
        }
        // A long chain takes a while to walk: on its own read-only connection and thread, so
        // neither the core's lock nor this bus thread waits for it.
        let path = self.0.engine().config().db_path();
        crate::sys::offload(move || crate::daemon::verify_audit(&path))
            .await
            .unwrap_or_else(|| Err(Error::Unavailable("the audit check did not finish".into())))
    }

    /// One page of history as JSON (`crate::history`); read off the core's lock.
    async fn history(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        query: &str,
    ) -> Result<String, Error> {
        let ask = crate::history::HistoryAsk::parse(query)?;
        let others = ask.all || !ask.user.is_empty();
        let (caller, _permit) = self.0.caller(conn, &header, "History", others).await?;
        let (db, accounts) = self.0.readers();
        crate::history::offloaded(db, accounts, move |db, accounts| {
            let filter = crate::history::filter_for(&ask, caller.uid, caller.admin, accounts)?;
            crate::history::history_page(db, &filter, accounts)
        })
        .await
    }

    /// The whole story of one grant as JSON: its owner or an admin.
    async fn show_grant(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        grant_id: &str,
    ) -> Result<String, Error> {
        let (uid, _permit) = self.0.admit(conn, &header).await?;
        let (db, accounts) = self.0.readers();
        let id = grant_id.to_string();
        let (owner, story) = crate::history::offloaded(db, accounts, move |db, accounts| {
            crate::history::grant_story(db, &id, accounts)
        })
        .await?;
        // Someone else's grant reads as no grant at all, as for revoke: ids are not probed.
        if owner != uid && !self.0.admin(conn, &header, uid, "ShowGrant").await {
            return Err(Error::NotFound(format!("no grant {grant_id}")));
        }
        Ok(story)
    }

    /// One page of the audit export (JSON lines, or CSV rows with the header first) and the seq to continue after (0: done).
    async fn export_audit(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        after_seq: i64,
        since_ms: i64,
        limit: u32,
        csv: bool,
    ) -> Result<(Vec<String>, i64), Error> {
        let (caller, _permit) = self.0.caller(conn, &header, "ExportAudit", true).await?;
        if !caller.admin {
            return Err(self.0.not_admin("exporting the audit trail"));
        }
        let (db, accounts) = self.0.readers();
        crate::history::offloaded(db, accounts, move |db, _| {
            let (lines, next) = crate::history::export_page(db, after_seq, since_ms, limit)?;
            Ok((crate::history::in_format(lines, after_seq == 0, csv), next))
        })
        .await
    }
}
