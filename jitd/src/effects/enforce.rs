//! The seam between decisions and the system: put a stored grant on the host, take it off,
//! check it is still there as written. The real implementation drives `grant::sudoers` and
//! `grant::group`; engine tests use a recording fake, because the engine's job is ordering and
//! bookkeeping, and the system effects have their own tests against the real tools.
//!
//! Every operation is idempotent: apply on an applied grant and remove on a removed one succeed
//! without changing anything, which is what makes crash recovery a matter of repeating the step.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use crate::effects::GrantError;
use crate::effects::group::Groups;
use crate::effects::sudoers::{DropInStatus, SudoersDir};
use crate::grant::{GrantRecord, GrantSpec};
use crate::names::{GrantId, UserName};

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

/// Who a group grant's membership is for, re-validated: the record is trusted only as far as
/// the types allow, and it is bound to the uid, not the name: if the name now belongs to
/// someone else, nothing is touched.
fn group_member(g: &GrantRecord) -> Result<UserName, GrantError> {
    let user = UserName::parse(&g.user).map_err(|e| GrantError::Verify {
        what: e.to_string(),
    })?;
    match crate::accounts::account_by_uid(g.uid) {
        Some(account) if account.name == g.user => Ok(user),
        _ => Err(GrantError::Verify {
            what: format!("uid {} is no longer the account {:?}", g.uid, g.user),
        }),
    }
}

/// Every name a group grant's membership may be listed under now, for its removal. Removal must
/// not depend on the account still resolving, so the name it was added as comes first — unless
/// that name now belongs to another account (deleted and recreated): the entry is then the new
/// account's own, and `userdel` already took the old one out. After a rename (`usermod -l`,
/// which renames member entries too) the membership is listed under the uid's new name, so that
/// name is removed as well. If the uid went to a new account that an admin put in the same group
/// before the grant ended, that membership goes too: the error is on the side of less access.
fn member_names(g: &GrantRecord) -> Result<Vec<UserName>, GrantError> {
    use crate::policy::Accounts;
    let invalid = |e: crate::names::NameError| GrantError::Verify {
        what: e.to_string(),
    };
    let mut names = Vec::new();
    let added_as = UserName::parse(&g.user).map_err(invalid)?;
    if crate::accounts::SystemAccounts
        .user_uid(&g.user)
        .is_none_or(|uid| uid == g.uid)
    {
        names.push(added_as);
    }
    if let Some(account) = crate::accounts::account_by_uid(g.uid)
        && account.name != g.user
    {
        names.push(UserName::parse(&account.name).map_err(invalid)?);
    }
    Ok(names)
}

impl Enforcer for SystemEnforcer {
    fn apply(&self, g: &GrantRecord) -> Result<(), GrantError> {
        match &g.spec {
            GrantSpec::Sudo { .. } => self.sudoers.install(&g.id, &g.drop_in),
            GrantSpec::Group { group } => self.groups.add(&group_member(g)?, group),
            // Nothing on the system: the grant lives in the gate index only.
            GrantSpec::Gate => Ok(()),
        }
    }

    fn remove(&self, g: &GrantRecord) -> Result<(), GrantError> {
        match &g.spec {
            GrantSpec::Sudo { .. } => self.sudoers.remove(&g.id).map(|_| ()),
            GrantSpec::Group { group } => {
                for user in member_names(g)? {
                    self.groups.remove(&user, group)?;
                }
                Ok(())
            }
            GrantSpec::Gate => Ok(()),
        }
    }

    fn presence(&self, g: &GrantRecord) -> Result<Presence, GrantError> {
        match &g.spec {
            GrantSpec::Sudo { .. } => Ok(match self.sudoers.status(&g.id, &g.drop_in)? {
                DropInStatus::Intact => Presence::Intact,
                DropInStatus::Missing => Presence::Missing,
                DropInStatus::Tampered(why) => Presence::Tampered(why),
            }),
            GrantSpec::Group { group } => Ok(if self.groups.is_member(&group_member(g)?, group)? {
                Presence::Intact
            } else {
                Presence::Missing
            }),
            GrantSpec::Gate => Ok(Presence::Intact),
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
