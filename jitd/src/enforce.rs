//! The seam between decisions and the system: put a stored grant on the host, take it off,
//! check it is still there as written. The real implementation drives `grant::sudoers` and
//! `grant::group`; engine tests use a recording fake, because the engine's job is ordering and
//! bookkeeping, and the system effects have their own tests against the real tools.
//!
//! Every operation is idempotent: apply on an applied grant and remove on a removed one succeed
//! without changing anything, which is what makes crash recovery a matter of repeating the step.

use std::path::PathBuf;

use crate::grant::GrantError;
use crate::grant::group::Groups;
use crate::grant::sudoers::{DropInStatus, SudoersDir};
use crate::names::{GrantId, GroupName, UserName};
use crate::store::GrantRecord;

/// Is a live grant still on the system as it was written?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Intact,
    Missing,
    /// Present but altered by someone else (content, owner or mode), with the detail.
    Tampered(String),
}

pub trait Enforcer: Send {
    fn apply(&self, g: &GrantRecord) -> Result<(), GrantError>;
    fn remove(&self, g: &GrantRecord) -> Result<(), GrantError>;
    fn presence(&self, g: &GrantRecord) -> Result<Presence, GrantError>;
    /// Ids of the drop-ins on the system that carry jitd's marker.
    fn owned_drop_ins(&self) -> Result<Vec<GrantId>, GrantError>;
    /// Removes a jitd drop-in the database does not know (an orphan after a lost DB or a crash).
    fn remove_orphan(&self, id: &GrantId) -> Result<(), GrantError>;
    /// Files named like jitd drop-ins that jitd did not write: reported, never touched.
    fn foreign_lookalikes(&self) -> Result<Vec<PathBuf>, GrantError>;
    /// Removes temp files a crash left behind; returns how many.
    fn remove_stale_temp(&self) -> Result<usize, GrantError>;
}

/// The host's real sudoers directory and group database.
pub struct SystemEnforcer {
    pub sudoers: SudoersDir,
    pub groups: Groups,
}

/// What a group grant's stored payload names, re-validated: the record is trusted only as far
/// as the types allow.
fn group_target(g: &GrantRecord) -> Result<(UserName, GroupName), GrantError> {
    let user = UserName::parse(&g.user).map_err(|e| GrantError::Verify {
        what: e.to_string(),
    })?;
    let group = GroupName::parse(&g.payload).map_err(|e| GrantError::Verify {
        what: e.to_string(),
    })?;
    // Bound to the uid, not the name: if the name now belongs to someone else, touch nothing.
    match crate::sys::account_by_uid(g.uid) {
        Some(account) if account.name == g.user => Ok((user, group)),
        _ => Err(GrantError::Verify {
            what: format!("uid {} is no longer the account {:?}", g.uid, g.user),
        }),
    }
}

impl Enforcer for SystemEnforcer {
    fn apply(&self, g: &GrantRecord) -> Result<(), GrantError> {
        match g.kind.as_str() {
            "sudo" => self.sudoers.install(&g.id, &g.payload),
            "group" => {
                let (user, group) = group_target(g)?;
                self.groups.add(&user, &group)
            }
            // Nothing on the system: the grant lives in the gate index only.
            "gate" => Ok(()),
            other => Err(GrantError::Verify {
                what: format!("unknown grant kind {other:?}"),
            }),
        }
    }

    fn remove(&self, g: &GrantRecord) -> Result<(), GrantError> {
        match g.kind.as_str() {
            "sudo" => self.sudoers.remove(&g.id).map(|_| ()),
            "group" => {
                // Removal must not depend on the account still resolving: use the stored name
                // when the uid lookup fails, since the membership was added under that name.
                let user = UserName::parse(&g.user).map_err(|e| GrantError::Verify {
                    what: e.to_string(),
                })?;
                let group = GroupName::parse(&g.payload).map_err(|e| GrantError::Verify {
                    what: e.to_string(),
                })?;
                self.groups.remove(&user, &group)
            }
            "gate" => Ok(()),
            other => Err(GrantError::Verify {
                what: format!("unknown grant kind {other:?}"),
            }),
        }
    }

    fn presence(&self, g: &GrantRecord) -> Result<Presence, GrantError> {
        match g.kind.as_str() {
            "sudo" => Ok(match self.sudoers.status(&g.id, &g.payload)? {
                DropInStatus::Intact => Presence::Intact,
                DropInStatus::Missing => Presence::Missing,
                DropInStatus::Tampered(why) => Presence::Tampered(why),
            }),
            "group" => {
                let (user, group) = group_target(g)?;
                Ok(if self.groups.is_member(&user, &group)? {
                    Presence::Intact
                } else {
                    Presence::Missing
                })
            }
            "gate" => Ok(Presence::Intact),
            other => Err(GrantError::Verify {
                what: format!("unknown grant kind {other:?}"),
            }),
        }
    }

    fn owned_drop_ins(&self) -> Result<Vec<GrantId>, GrantError> {
        self.sudoers.owned()
    }

    fn remove_orphan(&self, id: &GrantId) -> Result<(), GrantError> {
        self.sudoers.remove(id).map(|_| ())
    }

    fn foreign_lookalikes(&self) -> Result<Vec<PathBuf>, GrantError> {
        self.sudoers.foreign_lookalikes()
    }

    fn remove_stale_temp(&self) -> Result<usize, GrantError> {
        self.sudoers.remove_stale_temp()
    }
}
