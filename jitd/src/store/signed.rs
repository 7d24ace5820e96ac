//! The `request_bindings` and `used_tokens` tables: the nonce and policy digest a pending
//! request binds into a signature, and the signatures already counted. A signature is
//! consumed by inserting its digest under a primary key, so a second use fails in SQLite even
//! after a restart or from a second daemon process.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::names::RequestId;

/// What a request binds into a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub nonce: String,
    /// `sha256:` of the rule and privilege as they were when the request was made.
    pub policy: String,
}

impl Store {
    pub fn insert_binding(
        &self,
        id: &RequestId,
        b: &Binding,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO request_bindings (request_id, nonce, policy, created_ms) \
             VALUES (?1, ?2, ?3, ?4)",
            params![id.as_str(), b.nonce, b.policy, at_ms],
        )?;
        Ok(())
    }

    pub fn binding(&self, id: &RequestId) -> Result<Option<Binding>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT nonce, policy FROM request_bindings WHERE request_id = ?1",
                params![id.as_str()],
                |r| {
                    Ok(Binding {
                        nonce: r.get(0)?,
                        policy: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// When the signature with this digest was used, and for which request, if it was.
    pub fn token_used(&self, sig_sha256: &str) -> Result<Option<(String, i64)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT request_id, at_ms FROM used_tokens WHERE signature_sha256 = ?1",
                params![sig_sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Consumes a signature; false when it was already used.
    pub fn use_token(
        &self,
        sig_sha256: &str,
        id: &RequestId,
        principal: &str,
        kind: &str,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO used_tokens (signature_sha256, request_id, principal, kind, at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![sig_sha256, id.as_str(), principal, kind, at_ms],
        )?;
        Ok(n == 1)
    }
}

/// An MFA challenge as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    pub uid: u32,
    pub created_ms: i64,
    pub proven_ms: i64,
    pub used_ms: i64,
}

impl Store {
    pub fn insert_mfa_challenge(
        &self,
        nonce: &str,
        uid: u32,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO mfa_challenges (nonce, uid, created_ms) VALUES (?1, ?2, ?3)",
            params![nonce, uid, at_ms],
        )?;
        Ok(())
    }

    pub fn mfa_challenge(&self, nonce: &str) -> Result<Option<MfaChallenge>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT uid, created_ms, proven_ms, used_ms FROM mfa_challenges WHERE nonce = ?1",
                params![nonce],
                |r| {
                    Ok(MfaChallenge {
                        uid: r.get(0)?,
                        created_ms: r.get(1)?,
                        proven_ms: r.get(2)?,
                        used_ms: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Marks a challenge proven; false when it already was (a replayed proof).
    pub fn prove_mfa_challenge(&self, nonce: &str, at_ms: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE mfa_challenges SET proven_ms = ?2 WHERE nonce = ?1 AND proven_ms = 0",
            params![nonce, at_ms],
        )?;
        Ok(n == 1)
    }

    /// Uses the newest proof of `uid` proven at or after `since_ms` and not used yet; false
    /// when there is none.
    pub fn use_mfa_proof(&self, uid: u32, since_ms: i64, at_ms: i64) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE mfa_challenges SET used_ms = ?3 WHERE nonce = (
                 SELECT nonce FROM mfa_challenges
                 WHERE uid = ?1 AND proven_ms >= ?2 AND proven_ms > 0 AND used_ms = 0
                 ORDER BY proven_ms DESC LIMIT 1)",
            params![uid, since_ms, at_ms],
        )?;
        Ok(n == 1)
    }
}
