//! The `requests` and `request_votes` tables: requests waiting for approval, durable across
//! restarts and reboots, and the votes cast on them. A request leaves `pending` once, in
//! [`Store::finish_request`], which only moves a row that is still pending: two deciders
//! racing cannot both decide it.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, insert_row};
use crate::names::RequestId;
use crate::terms::{RequestState, Via, Vote};

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: RequestId,
    pub uid: u32,
    pub user: String,
    pub privilege: String,
    pub rule: String,
    /// What the privilege gives, in words, when the request was made (what approvers see).
    pub grants: String,
    pub duration_secs: u64,
    pub reason: String,
    pub ticket: String,
    pub via: Via,
    pub state: RequestState,
    pub requested_ms: i64,
    /// When it expires undecided (wall clock).
    pub expires_ms: i64,
    /// The live grant this request would extend ("" for a new grant).
    pub extends: String,
    pub decided_ms: i64,
    /// Who or what decided it ("" while pending).
    pub decided_by: String,
    /// Why it ended as it did.
    pub note: String,
    /// The grant it made or extended ("" when none).
    pub grant: String,
    pub votes: Vec<VoteRecord>,
}

/// One approver's vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteRecord {
    pub uid: u32,
    pub user: String,
    pub vote: Vote,
    pub comment: String,
    /// 0: as requested.
    pub shorten_to_secs: u64,
    pub at_ms: i64,
}

impl Store {
    pub fn insert_request(&self, q: &RequestRecord) -> Result<(), StoreError> {
        insert_row(
            &self.conn,
            "requests",
            &[
                (":id", &q.id.as_str()),
                (":uid", &q.uid),
                (":user", &q.user),
                (":privilege", &q.privilege),
                (":rule", &q.rule),
                (":grants", &q.grants),
                (":duration_secs", &q.duration_secs),
                (":reason", &q.reason),
                (":ticket", &q.ticket),
                (":via", &q.via.as_str()),
                (":state", &q.state.as_str()),
                (":requested_ms", &q.requested_ms),
                (":expires_ms", &q.expires_ms),
                (":extends", &q.extends),
            ],
        )?;
        Ok(())
    }

    pub fn get_request(&self, id: &RequestId) -> Result<Option<RequestRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT * FROM requests WHERE id = ?1",
                [id.as_str()],
                read_request,
            )
            .optional()?;
        match row.transpose()? {
            Some(mut q) => {
                q.votes = self.votes(&q.id)?;
                Ok(Some(q))
            }
            None => Ok(None),
        }
    }

    /// Requests still waiting, oldest first.
    pub fn pending_requests(&self) -> Result<Vec<RequestRecord>, StoreError> {
        self.requests_where("state = 'pending' ORDER BY requested_ms", params![])
    }

    /// Requests of `uid`, or everyone's for `None`, newest first.
    pub fn list_requests(
        &self,
        uid: Option<u32>,
        limit: u32,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        self.requests_where(
            "(?1 IS NULL OR uid = ?1) ORDER BY requested_ms DESC LIMIT ?2",
            params![uid, limit],
        )
    }

    /// Requests of `uid` under `rule` granted by `auto_approve` since `since_ms` (the cap).
    pub fn auto_approved_since(
        &self,
        uid: u32,
        rule: &str,
        since_ms: i64,
    ) -> Result<u32, StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM requests WHERE uid = ?1 AND rule = ?2 AND state = 'approved' \
             AND decided_by = 'auto_approve' AND requested_ms >= ?3",
            params![uid, rule, since_ms],
            |r| r.get(0),
        )?)
    }

    /// Records a vote; `false` when this approver already voted on the request.
    pub fn add_vote(&self, id: &RequestId, v: &VoteRecord) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO request_votes \
             (request_id, uid, user, vote, comment, shorten_to_secs, at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id.as_str(),
                v.uid,
                v.user,
                v.vote.as_str(),
                v.comment,
                v.shorten_to_secs,
                v.at_ms
            ],
        )?;
        Ok(n == 1)
    }

    /// Decides a pending request; `false` when it was no longer pending.
    pub fn finish_request(
        &self,
        id: &RequestId,
        state: RequestState,
        at_ms: i64,
        by: &str,
        note: &str,
        grant: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE requests SET state = ?2, decided_ms = ?3, decided_by = ?4, note = ?5, \
             grant_id = ?6 WHERE id = ?1 AND state = 'pending'",
            params![id.as_str(), state.as_str(), at_ms, by, note, grant],
        )?;
        Ok(n == 1)
    }

    /// A live grant's new deadline (an extension), with its drop-in text for a sudo grant:
    /// the row is the grant as it now is on the system.
    pub fn set_deadline(&self, g: &crate::grant::GrantRecord) -> Result<(), StoreError> {
        let n = match &g.spec {
            crate::grant::GrantSpec::Sudo { .. } => self.conn.execute(
                "UPDATE grants SET expires_ms = ?2, expires_boot_ms = ?3, payload = ?4 \
                 WHERE id = ?1",
                params![g.id.as_str(), g.expires_ms, g.expires_boot_ms, g.drop_in],
            )?,
            _ => self.conn.execute(
                "UPDATE grants SET expires_ms = ?2, expires_boot_ms = ?3 WHERE id = ?1",
                params![g.id.as_str(), g.expires_ms, g.expires_boot_ms],
            )?,
        };
        if n != 1 {
            return Err(StoreError::Corrupt(format!("grant {} has no row", g.id)));
        }
        Ok(())
    }

    fn votes(&self, id: &RequestId) -> Result<Vec<VoteRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT * FROM request_votes WHERE request_id = ?1 ORDER BY at_ms, rowid",
        )?;
        let rows = stmt.query_map([id.as_str()], |r| {
            let vote: String = r.get("vote")?;
            Ok(
                Vote::parse(&vote).map(|vote| -> rusqlite::Result<VoteRecord> {
                    Ok(VoteRecord {
                        uid: r.get("uid")?,
                        user: r.get("user")?,
                        vote,
                        comment: r.get("comment")?,
                        shorten_to_secs: r.get("shorten_to_secs")?,
                        at_ms: r.get("at_ms")?,
                    })
                }),
            )
        })?;
        let mut out = Vec::new();
        for row in rows {
            match row? {
                Some(v) => out.push(v?),
                None => return Err(StoreError::Corrupt(format!("a vote on request {id}"))),
            }
        }
        Ok(out)
    }

    fn requests_where<P: rusqlite::Params>(
        &self,
        clause: &str,
        params: P,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT * FROM requests WHERE {clause}"))?;
        let rows = stmt.query_map(params, read_request)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        drop(stmt);
        for q in &mut out {
            q.votes = self.votes(&q.id)?;
        }
        Ok(out)
    }
}

fn read_request(r: &Row<'_>) -> rusqlite::Result<Result<RequestRecord, StoreError>> {
    let id: String = r.get("id")?;
    let state: String = r.get("state")?;
    let via: String = r.get("via")?;
    let (Ok(id), Some(state), Some(via)) = (
        RequestId::parse(&id),
        RequestState::parse(&state),
        Via::parse(&via),
    ) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "request {id:?} in state {state:?} via {via:?}"
        ))));
    };
    Ok(Ok(RequestRecord {
        id,
        uid: r.get("uid")?,
        user: r.get("user")?,
        privilege: r.get("privilege")?,
        rule: r.get("rule")?,
        grants: r.get("grants")?,
        duration_secs: r.get("duration_secs")?,
        reason: r.get("reason")?,
        ticket: r.get("ticket")?,
        via,
        state,
        requested_ms: r.get("requested_ms")?,
        expires_ms: r.get("expires_ms")?,
        extends: r.get("extends")?,
        decided_ms: r.get("decided_ms")?,
        decided_by: r.get("decided_by")?,
        note: r.get("note")?,
        grant: r.get("grant_id")?,
        votes: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_db;

    pub(crate) fn request(id: u64) -> RequestRecord {
        RequestRecord {
            id: RequestId::from_random(id),
            uid: 1001,
            user: "alice".into(),
            privilege: "db".into(),
            rule: "dba".into(),
            grants: "as root: /usr/bin/true".into(),
            duration_secs: 600,
            reason: "incident".into(),
            ticket: String::new(),
            via: Via::Bus,
            state: RequestState::Pending,
            requested_ms: 10,
            expires_ms: 1000,
            extends: String::new(),
            decided_ms: 0,
            decided_by: String::new(),
            note: String::new(),
            grant: String::new(),
            votes: Vec::new(),
        }
    }

    #[test]
    fn a_request_is_decided_once_and_each_approver_votes_once() {
        let (_dir, store) = temp_db();
        let q = request(1);
        store.insert_request(&q).unwrap();
        assert_eq!(store.get_request(&q.id).unwrap().as_ref(), Some(&q));
        let vote = VoteRecord {
            uid: 1002,
            user: "bob".into(),
            vote: Vote::Approve,
            comment: "ok".into(),
            shorten_to_secs: 300,
            at_ms: 20,
        };
        assert!(store.add_vote(&q.id, &vote).unwrap());
        assert!(!store.add_vote(&q.id, &vote).unwrap(), "twice");
        assert_eq!(store.pending_requests().unwrap()[0].votes, vec![vote]);
        let ok = |s| store.finish_request(&q.id, s, 30, "bob", "approved", "g000000000001");
        assert!(ok(RequestState::Approved).unwrap());
        assert!(!ok(RequestState::Denied).unwrap(), "decided already");
        let back = store.get_request(&q.id).unwrap().unwrap();
        assert_eq!(back.state, RequestState::Approved);
        assert_eq!(back.grant, "g000000000001");
        assert!(store.pending_requests().unwrap().is_empty());
        assert_eq!(store.list_requests(Some(1001), 10).unwrap().len(), 1);
        assert!(store.list_requests(Some(1), 10).unwrap().is_empty());
    }
}
