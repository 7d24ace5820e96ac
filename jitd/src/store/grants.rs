//! The `grants` table: one row per grant, from the intent to apply it to its end.

use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, Row, ToSql, params};

use super::{Store, StoreError, insert_row};
use crate::effects::sudoers;
use crate::grant::{EndTerms, GrantKind, GrantRecord, GrantSpec, GrantState, OnEnd};
use crate::names::{GrantId, GroupName};

/// A live grant row that does not read back as a grant: its id as stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub id: String,
    pub why: String,
}

/// The states in which something of the grant may be on the system.
const LIVE: &str = "state IN ('applying', 'active', 'removing')";

impl Store {
    /// Commits the intent to grant: the row in state `applying`.
    pub fn insert(&self, g: &GrantRecord) -> Result<(), StoreError> {
        with_row(g, |row| insert_row(&self.conn, "grants", row))?;
        Ok(())
    }

    /// The grant is on the system.
    pub fn mark_active(&self, id: &GrantId) -> Result<(), StoreError> {
        self.update(
            id,
            "UPDATE grants SET state = 'active' WHERE id = ?1",
            params![id.as_str()],
        )
    }

    /// Commits the intent to take the grant off the system, and what it will be once off.
    pub fn mark_removing(
        &self,
        id: &GrantId,
        end_state: GrantState,
        at_ms: i64,
        why: &str,
    ) -> Result<(), StoreError> {
        self.update(
            id,
            "UPDATE grants SET state = 'removing', end_state = ?2, ended_ms = ?3, end_reason = ?4 \
             WHERE id = ?1",
            params![id.as_str(), end_state.as_str(), at_ms, why],
        )
    }

    /// The grant is off the system for good, in final `state`.
    pub fn mark_ended(
        &self,
        id: &GrantId,
        state: GrantState,
        at_ms: i64,
        why: &str,
    ) -> Result<(), StoreError> {
        self.update(
            id,
            "UPDATE grants SET state = ?2, ended_ms = ?3, end_reason = ?4 WHERE id = ?1",
            params![id.as_str(), state.as_str(), at_ms, why],
        )
    }

    /// Adds `note` to an ended grant's end reason: what its end found later (setgid files
    /// stripped, processes recall could not see), so listings show it beside the reason.
    pub fn note_end(&self, id: &GrantId, note: &str) -> Result<(), StoreError> {
        self.update(
            id,
            "UPDATE grants SET end_reason = end_reason || ?2 WHERE id = ?1",
            params![id.as_str(), note],
        )
    }

    /// The final state a grant in `removing` was headed for (`revoked` when unknown).
    pub fn end_state(&self, id: &GrantId) -> Result<GrantState, StoreError> {
        let s: Option<String> = self
            .conn
            .query_row(
                "SELECT end_state FROM grants WHERE id = ?1",
                [id.as_str()],
                |r| r.get("end_state"),
            )
            .optional()?;
        Ok(s.as_deref()
            .and_then(GrantState::parse)
            .unwrap_or(GrantState::Revoked))
    }

    fn update<P: rusqlite::Params>(&self, id: &GrantId, sql: &str, p: P) -> Result<(), StoreError> {
        match self.conn.execute(sql, p)? {
            1 => Ok(()),
            _ => Err(StoreError::Corrupt(format!("grant {id} has no row"))),
        }
    }

    pub fn get(&self, id: &GrantId) -> Result<Option<GrantRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT * FROM grants WHERE id = ?1",
                [id.as_str()],
                read_grant,
            )
            .optional()?;
        row.transpose()
    }

    /// Every grant something of which may be on the system.
    pub fn live(&self) -> Result<Vec<GrantRecord>, StoreError> {
        self.query(
            &format!("SELECT * FROM grants WHERE {LIVE} ORDER BY expires_ms"),
            [],
        )
    }

    /// Like [`Store::live`], but a row that does not read back as a grant (a hand edit, a bad
    /// restore, a bit flip) is set aside and named instead of failing the whole read: one bad
    /// row must not stop every other grant from ending.
    pub fn live_checked(&self) -> Result<(Vec<GrantRecord>, Vec<Unreadable>), StoreError> {
        let sql = format!("SELECT * FROM grants WHERE {LIVE} ORDER BY expires_ms");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            let id = match r.get_ref("id")? {
                ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Integer(n) => n.to_string(),
                ValueRef::Real(x) => x.to_string(),
                ValueRef::Null => String::new(),
            };
            match read_grant(r) {
                Ok(Ok(g)) => Ok(Ok(g)),
                Ok(Err(e)) => Ok(Err(Unreadable {
                    id,
                    why: e.to_string(),
                })),
                // A value of the wrong type in this row; the next row may be fine.
                Err(
                    e @ (rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)),
                ) => Ok(Err(Unreadable {
                    id,
                    why: e.to_string(),
                })),
                Err(e) => Err(e),
            }
        })?;
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for row in rows {
            match row? {
                Ok(g) => good.push(g),
                Err(u) => bad.push(u),
            }
        }
        Ok((good, bad))
    }

    /// Grants of `uid` (or everyone's), newest first; ended ones only when asked.
    pub fn list(
        &self,
        uid: Option<u32>,
        include_ended: bool,
        limit: u32,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let live = if include_ended {
            String::new()
        } else {
            format!("AND {LIVE}")
        };
        let sql = format!(
            "SELECT * FROM grants WHERE (?1 IS NULL OR uid = ?1) {live} \
             ORDER BY requested_ms DESC LIMIT ?2"
        );
        self.query(&sql, params![uid, limit])
    }

    /// Rows are read by column name ([`read_grant`]), so `SELECT *` is safe against column
    /// order and added columns.
    fn query<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(params, read_grant)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }
}

/// Calls `f` with the row a new grant is inserted as. `end_state` is left to its default: it
/// is set when the removal is decided.
pub(super) fn with_row<T>(g: &GrantRecord, f: impl FnOnce(&[(&str, &dyn ToSql)]) -> T) -> T {
    let (id, kind, state) = (g.id.as_str(), g.kind().as_str(), g.state.as_str());
    f(&[
        (":id", &id),
        (":uid", &g.uid),
        (":user", &g.user),
        (":privilege", &g.privilege),
        (":kind", &kind),
        (":rule", &g.rule),
        (":grants", &g.grants),
        (":payload", &payload(g)),
        (":reason", &g.reason),
        (":ticket", &g.ticket),
        (":state", &state),
        (":requested_ms", &g.requested_ms),
        (":starts_ms", &g.starts_ms),
        (":expires_ms", &g.expires_ms),
        (":boot_id", &g.boot_id),
        (":expires_boot_ms", &g.expires_boot_ms),
        (":ended_ms", &g.ended_ms),
        (":end_reason", &g.end_reason),
        (":gid", &g.end_terms.gid),
        (":on_end", &on_end_text(g.end_terms.on_end)),
    ])
}

fn on_end_text(on_end: Option<OnEnd>) -> &'static str {
    match on_end {
        Some(OnEnd::Keep) => "keep",
        Some(OnEnd::Terminate) => "terminate",
        None => "",
    }
}

/// `on_end` as stored; anything else (an older row) is unknown.
fn on_end_of(text: &str) -> Option<OnEnd> {
    match text {
        "keep" => Some(OnEnd::Keep),
        "terminate" => Some(OnEnd::Terminate),
        _ => None,
    }
}

/// What the `payload` column holds: the drop-in text of a sudo grant, the group of a group
/// grant, nothing for a gate grant. The typed spec is read back from it ([`spec_of`]).
fn payload(g: &GrantRecord) -> &str {
    match &g.spec {
        GrantSpec::Sudo { .. } => &g.drop_in,
        GrantSpec::Group { group } => group.as_str(),
        GrantSpec::Gate => "",
    }
}

/// The spec and drop-in text of a stored grant, re-validated.
fn spec_of(kind: GrantKind, uid: u32, payload: String) -> Result<(GrantSpec, String), String> {
    match kind {
        GrantKind::Sudo => {
            let (run_as_uid, commands, password_each_time) = sudoers::parse_rule(&payload, uid)
                .ok_or_else(|| "its drop-in text is not one jitd rendered".to_string())?;
            let spec = GrantSpec::Sudo {
                run_as_uid,
                commands,
                password_each_time,
            };
            Ok((spec, payload))
        }
        GrantKind::Group => {
            let group = GroupName::parse(&payload).map_err(|e| e.to_string())?;
            Ok((GrantSpec::Group { group }, String::new()))
        }
        GrantKind::Gate => Ok((GrantSpec::Gate, String::new())),
    }
}

/// A grant row, by column name. The outer error is SQLite's; the inner one a row that does
/// not hold a valid grant (it is reported, not skipped: a grant on the system must not vanish
/// from view).
fn read_grant(r: &Row<'_>) -> rusqlite::Result<Result<GrantRecord, StoreError>> {
    let id: String = r.get("id")?;
    let state: String = r.get("state")?;
    let kind: String = r.get("kind")?;
    let uid: u32 = r.get("uid")?;
    let (Ok(id), Some(state), Some(kind)) = (
        GrantId::parse(&id),
        GrantState::parse(&state),
        GrantKind::parse(&kind),
    ) else {
        return Ok(Err(StoreError::Corrupt(format!(
            "grant {id:?} of kind {kind:?} in state {state:?}"
        ))));
    };
    let (spec, drop_in) = match spec_of(kind, uid, r.get("payload")?) {
        Ok(found) => found,
        Err(why) => return Ok(Err(StoreError::Corrupt(format!("grant {id}: {why}")))),
    };
    Ok(Ok(GrantRecord {
        id,
        uid,
        user: r.get("user")?,
        privilege: r.get("privilege")?,
        spec,
        drop_in: drop_in.into(),
        rule: r.get("rule")?,
        grants: r.get("grants")?,
        reason: r.get("reason")?,
        ticket: r.get("ticket")?,
        state,
        requested_ms: r.get("requested_ms")?,
        starts_ms: r.get("starts_ms")?,
        expires_ms: r.get("expires_ms")?,
        boot_id: r.get::<_, String>("boot_id")?.into(),
        expires_boot_ms: r.get("expires_boot_ms")?,
        ended_ms: r.get("ended_ms")?,
        end_reason: r.get("end_reason")?,
        end_terms: EndTerms {
            gid: r.get("gid")?,
            on_end: on_end_of(&r.get::<_, String>("on_end")?),
        },
    }))
}

#[cfg(test)]
mod tests {
    use crate::grant::GrantState;
    use crate::store::tests::{record, temp_db};

    #[test]
    fn a_grant_moves_through_its_states_and_leaves_the_live_set() {
        let (_dir, store) = temp_db();
        let g = record(1, GrantState::Applying);
        store.insert(&g).unwrap();
        assert_eq!(store.live().unwrap(), vec![g.clone()]);
        store.mark_active(&g.id).unwrap();
        store
            .mark_removing(&g.id, GrantState::Expired, 200, "expired")
            .unwrap();
        assert_eq!(store.live().unwrap().len(), 1, "removing is still live");
        assert_eq!(store.end_state(&g.id).unwrap(), GrantState::Expired);
        store
            .mark_ended(&g.id, GrantState::Expired, 200, "expired")
            .unwrap();
        assert!(store.live().unwrap().is_empty());
        let back = store.get(&g.id).unwrap().unwrap();
        assert_eq!(
            (back.state, back.ended_ms, back.end_reason.as_str()),
            (GrantState::Expired, 200, "expired")
        );
        assert_eq!(store.list(Some(1001), true, 10).unwrap().len(), 1);
        assert!(store.list(Some(1001), false, 10).unwrap().is_empty());
        assert!(store.list(Some(1002), true, 10).unwrap().is_empty());
    }

    #[test]
    fn an_unreadable_row_is_set_aside_and_the_others_still_read() {
        let (_dir, store) = temp_db();
        for i in 1..=3 {
            store.insert(&record(i, GrantState::Active)).unwrap();
        }
        let bad = record(2, GrantState::Active).id;
        store
            .conn
            .execute(
                "UPDATE grants SET payload = 'no such group!' WHERE id = ?1",
                [bad.as_str()],
            )
            .unwrap();
        store
            .conn
            .execute(
                "UPDATE grants SET uid = 'x' WHERE id = ?1",
                [record(3, GrantState::Active).id.as_str()],
            )
            .unwrap();
        assert!(store.live().is_err(), "the strict read fails");
        let (good, bad_rows) = store.live_checked().unwrap();
        assert_eq!(good, vec![record(1, GrantState::Active)]);
        let ids: Vec<&str> = bad_rows.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&bad.as_str()), "{bad_rows:?}");
    }

    #[test]
    fn duplicate_grant_id_is_refused() {
        let (_dir, store) = temp_db();
        store.insert(&record(7, GrantState::Applying)).unwrap();
        assert!(store.insert(&record(7, GrantState::Applying)).is_err());
    }

    /// Every column written is read back into the field it came from.
    #[test]
    fn every_column_survives_the_round_trip() {
        let (_dir, store) = temp_db();
        let mut g = record(3, GrantState::Active);
        g.ticket = "OPS-1".into();
        (g.requested_ms, g.starts_ms, g.expires_ms, g.expires_boot_ms) = (10, 11, 12, 13);
        (g.ended_ms, g.end_reason) = (14, "why".into());
        g.end_terms = crate::grant::EndTerms {
            gid: Some(998),
            on_end: Some(crate::grant::OnEnd::Terminate),
        };
        store.insert(&g).unwrap();
        assert_eq!(store.get(&g.id).unwrap(), Some(g.clone()));
        store.note_end(&g.id, "; noted").unwrap();
        assert_eq!(store.get(&g.id).unwrap().unwrap().end_reason, "why; noted");
    }
}
