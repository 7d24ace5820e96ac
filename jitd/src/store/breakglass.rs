//! The `breakglass` table: every grant made under a `breakglass` rule, and its review. The
//! rate limit counts these rows, so it holds across restarts; a review is written once.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, insert_row};
use crate::names::GrantId;
use crate::terms::ReviewOutcome;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakglassRecord {
    pub grant: GrantId,
    pub uid: u32,
    pub user: String,
    pub privilege: String,
    pub rule: String,
    pub reason: String,
    pub granted_ms: i64,
    pub review_by_ms: i64,
    /// 0 while unreviewed.
    pub reviewed_ms: i64,
    pub reviewer: String,
    pub outcome: Option<ReviewOutcome>,
    pub comment: String,
}

impl Store {
    pub fn insert_breakglass(&self, b: &BreakglassRecord) -> Result<(), StoreError> {
        insert_row(
            &self.conn,
            "breakglass",
            &[
                (":grant_id", &b.grant.as_str()),
                (":uid", &b.uid),
                (":user", &b.user),
                (":privilege", &b.privilege),
                (":rule", &b.rule),
                (":reason", &b.reason),
                (":granted_ms", &b.granted_ms),
                (":review_by_ms", &b.review_by_ms),
            ],
        )?;
        Ok(())
    }

    /// The latest break-glass grant of `uid` made at or after `since_ms`.
    pub fn breakglass_since(
        &self,
        uid: u32,
        since_ms: i64,
    ) -> Result<Option<BreakglassRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT * FROM breakglass WHERE uid = ?1 AND granted_ms >= ?2 \
                 ORDER BY granted_ms DESC LIMIT 1",
                params![uid, since_ms],
                read,
            )
            .optional()?;
        row.transpose()
    }

    pub fn get_breakglass(&self, grant: &GrantId) -> Result<Option<BreakglassRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT * FROM breakglass WHERE grant_id = ?1",
                [grant.as_str()],
                read,
            )
            .optional()?;
        row.transpose()
    }

    /// Break-glass grants nobody reviewed yet, oldest first.
    pub fn unreviewed_breakglass(&self) -> Result<Vec<BreakglassRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM breakglass WHERE reviewed_ms = 0 ORDER BY granted_ms")?;
        let rows = stmt.query_map([], read)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// Records the review; `false` when the grant was reviewed already.
    pub fn review_breakglass(
        &self,
        grant: &GrantId,
        at_ms: i64,
        reviewer: &str,
        outcome: ReviewOutcome,
        comment: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE breakglass SET reviewed_ms = ?2, reviewer = ?3, outcome = ?4, comment = ?5 \
             WHERE grant_id = ?1 AND reviewed_ms = 0",
            params![grant.as_str(), at_ms, reviewer, outcome.as_str(), comment],
        )?;
        Ok(n == 1)
    }

    /// Unreviewed grants past their review deadline not yet reported; each is marked so it is
    /// reported once.
    pub fn newly_overdue_breakglass(
        &self,
        now_ms: i64,
    ) -> Result<Vec<BreakglassRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM breakglass WHERE reviewed_ms = 0 AND overdue_noted = 0 \
             AND review_by_ms <= ?1",
        )?;
        let rows = stmt.query_map([now_ms], read)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        drop(stmt);
        for b in &out {
            self.conn.execute(
                "UPDATE breakglass SET overdue_noted = 1 WHERE grant_id = ?1",
                [b.grant.as_str()],
            )?;
        }
        Ok(out)
    }
}

fn read(r: &Row<'_>) -> rusqlite::Result<Result<BreakglassRecord, StoreError>> {
    let id: String = r.get("grant_id")?;
    let outcome: String = r.get("outcome")?;
    let Ok(grant) = GrantId::parse(&id) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "break-glass grant {id:?}"
        ))));
    };
    let outcome = match outcome.as_str() {
        "" => None,
        text => match ReviewOutcome::parse(text) {
            Some(o) => Some(o),
            None => {
                return Ok(Err(StoreError::Corrupt(format!(
                    "break-glass grant {id}: outcome {text:?}"
                ))));
            }
        },
    };
    Ok(Ok(BreakglassRecord {
        grant,
        uid: r.get("uid")?,
        user: r.get("user")?,
        privilege: r.get("privilege")?,
        rule: r.get("rule")?,
        reason: r.get("reason")?,
        granted_ms: r.get("granted_ms")?,
        review_by_ms: r.get("review_by_ms")?,
        reviewed_ms: r.get("reviewed_ms")?,
        reviewer: r.get("reviewer")?,
        outcome,
        comment: r.get("comment")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_db;

    #[test]
    fn a_breakglass_grant_is_counted_reviewed_once_and_reported_overdue_once() {
        let (_dir, store) = temp_db();
        let b = BreakglassRecord {
            grant: GrantId::from_random(7),
            uid: 1001,
            user: "alice".into(),
            privilege: "db".into(),
            rule: "glass".into(),
            reason: "outage".into(),
            granted_ms: 100,
            review_by_ms: 200,
            reviewed_ms: 0,
            reviewer: String::new(),
            outcome: None,
            comment: String::new(),
        };
        store.insert_breakglass(&b).unwrap();
        assert_eq!(store.breakglass_since(1001, 50).unwrap().as_ref(), Some(&b));
        assert!(store.breakglass_since(1001, 101).unwrap().is_none());
        assert!(store.newly_overdue_breakglass(199).unwrap().is_empty());
        assert_eq!(store.newly_overdue_breakglass(200).unwrap().len(), 1);
        assert!(
            store.newly_overdue_breakglass(300).unwrap().is_empty(),
            "once"
        );
        let review =
            |who| store.review_breakglass(&b.grant, 250, who, ReviewOutcome::Drill, "test");
        assert!(review("bob").unwrap());
        assert!(!review("carol").unwrap(), "reviewed once");
        let got = store.get_breakglass(&b.grant).unwrap().unwrap();
        assert_eq!(
            (got.reviewer.as_str(), got.outcome),
            ("bob", Some(ReviewOutcome::Drill))
        );
        assert!(store.unreviewed_breakglass().unwrap().is_empty());
    }
}
