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
