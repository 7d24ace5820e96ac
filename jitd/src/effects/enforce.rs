//! The seam between decisions and the system: put a stored grant on the host, take it off,
//! check it is still there as written. The real implementation drives `grant::sudoers` and
//! `grant::group`; engine tests use a recording fake, because the engine's job is ordering and
//! bookkeeping, and the system effects have their own tests against the real tools.
//!
//! Every operation is idempotent: apply on an applied grant and remove on a removed one succeed
//! without changing anything, which is what makes crash recovery a matter of repeating the step.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::effects::GrantError;
use crate::effects::group::Groups;
use crate::effects::manifest::{Manifests, Membership};
use crate::effects::routes::RouteFiles;
use crate::effects::sudoers::shards::{Entry, Shards};
use crate::effects::sudoers::{DropInStatus, SudoersDir};
use crate::grant::{GrantRecord, GrantSpec};
use crate::names::{GrantId, GroupName, PrivilegeName, UserName};
use crate::policy::routes::Route;

/// Is a live grant still on the system as it was written?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Intact,
    Missing,
    /// Present but altered by someone else (content, owner or mode), with the detail.
    Tampered(String),
}

/// Something of a grant on the system, as the marker jitd keeps beside it describes it: what
/// ends a grant when the database cannot say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marked {
    pub grant: GrantId,
    /// The deadline the marker carries, in ms by the wall clock.
    pub until_ms: i64,
    pub what: MarkedKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkedKind {
    /// A sudoers drop-in (its second line carries the deadline).
    DropIn,
    /// A group membership (its manifest under the state directory).
    Membership { user: UserName, group: GroupName },
}

impl std::fmt::Display for MarkedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DropIn => f.write_str("sudoers drop-in"),
            Self::Membership { user, group } => write!(f, "membership of {user} in {group}"),
        }
    }
}

/// The second step of [`Enforcer::stage`]: puts the grant in place.
pub type Finish<'a> = Box<dyn FnOnce() -> Result<(), GrantError> + 'a>;

pub trait Enforcer: Send {
    fn apply(&self, g: &GrantRecord) -> Result<(), GrantError>;
    /// [`Enforcer::apply`] in two steps, so the grant's intent can be made durable in between:
    /// what needs no intent first (a sudoers file written aside and its `visudo` check
    /// started, under the records' lock), and the step that puts it in place, returned.
    /// Dropping that step undoes the first: nothing changed.
    fn stage<'a>(&'a self, g: &'a GrantRecord) -> Result<Finish<'a>, GrantError> {
        Ok(Box::new(move || self.apply(g)))
    }
    fn remove(&self, g: &GrantRecord) -> Result<(), GrantError>;
    /// Takes many grants off at once (many ending in the same second): one result per grant,
    /// in order. The system's files are each written once for the batch.
    fn remove_many(&self, gs: &[GrantRecord]) -> Vec<Result<(), GrantError>> {
        gs.iter().map(|g| self.remove(g)).collect()
    }
    fn presence(&self, g: &GrantRecord) -> Result<Presence, GrantError>;
    /// The copy of `g`'s rule text the system's record keeps, when it is the same text (after
    /// [`Enforcer::presence`]): the live grant then shares it rather than keeping its own.
    fn shared_rule(&self, _g: &GrantRecord) -> Option<Arc<str>> {
        None
    }
    /// Ids of the grants with something on the system that carries jitd's marker: drop-ins,
    /// and memberships with their manifest.
    fn owned_drop_ins(&self) -> Result<Vec<GrantId>, GrantError>;
    /// Removes what carries the marker of a grant the database does not know (an orphan after
    /// a lost DB or a crash): its drop-in, its membership and manifest.
    fn remove_orphan(&self, id: &GrantId) -> Result<(), GrantError>;
    /// Everything on the system that carries jitd's marker, with the deadline the marker
    /// says, read without the database; markers that cannot be read are returned as errors
    /// naming them.
    fn marked(&self) -> (Vec<Marked>, Vec<GrantError>) {
        (Vec::new(), Vec::new())
    }
    /// Takes off what `m` describes.
    fn remove_marked(&self, _m: &Marked) -> Result<(), GrantError> {
        Ok(())
    }
    /// Writes the marker of a live grant that has none (applied by a jitd from before
    /// markers); true when it wrote one.
    fn keep_marker(&self, _g: &GrantRecord) -> Result<bool, GrantError> {
        Ok(false)
    }
    /// Files named like jitd drop-ins that jitd did not write: reported, never touched.
    fn foreign_lookalikes(&self) -> Result<Vec<PathBuf>, GrantError>;
    /// Removes temp files a crash left behind; returns how many.
    fn remove_stale_temp(&self) -> Result<usize, GrantError>;
    /// Rebuilds what is derived from several grants' records (the per-user sudo settings), in
    /// case a crash came between two writes: at start-up.
    fn recount(&self) -> Result<(), GrantError> {
        Ok(())
    }
    /// Lets go of what outlives the grants by design once its time is up (a user's sudo
    /// settings line, kept a few minutes after their last grant): at the integrity check.
    fn tidy(&self) -> Result<(), GrantError> {
        Ok(())
    }
    /// Makes sudo run each privilege's commands under the PAM service `routes` say.
    fn route(&self, _routes: &[Route]) -> Result<(), GrantError> {
        Ok(())
    }
    /// How the routes on the system differ from `routes` (one line per file; empty: intact).
    fn route_damage(&self, _routes: &[Route]) -> Vec<String> {
        Vec::new()
    }
    /// Takes every route off the system.
    fn unroute(&self) -> Result<(), GrantError> {
        Ok(())
    }
    /// Privileges whose shared sudoers file was found deleted or altered (and put right) since
    /// the last call, with what was found.
    fn drift(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// The host's real sudoers directory and group database.
pub struct SystemEnforcer {
    /// The drop-in directory: grants' rules live in their privilege's file ([`Shards`]);
    /// one file per grant is what earlier jitd wrote, read and removed here on upgrade.
    pub sudoers: SudoersDir,
    pub shards: Shards,
    pub routes: RouteFiles,
    pub groups: Groups,
    pub manifests: Manifests,
}

/// The manifest a group grant's membership is recorded in.
fn manifest_of(g: &GrantRecord, user: UserName, group: &GroupName) -> Membership {
    Membership {
        grant: g.id.clone(),
        uid: g.uid,
        user,
        group: group.clone(),
        until_ms: g.expires_ms,
    }
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

/// The privilege a sudo grant's line is filed under.
fn privilege_of(g: &GrantRecord) -> Result<PrivilegeName, GrantError> {
    PrivilegeName::parse(&g.privilege).map_err(|e| GrantError::Verify {
        what: e.to_string(),
    })
}

fn entry_of(g: &GrantRecord) -> Entry {
    Entry {
        grant: g.id.clone(),
        uid: g.uid,
        until_ms: g.expires_ms,
        text: g.drop_in.clone(),
    }
}

impl SystemEnforcer {
    /// Takes grant `id`'s sudo rule off, wherever it is (its privilege's file, or its own file
    /// an earlier jitd wrote), without the database.
    fn remove_line(&self, id: &GrantId) -> Result<(), GrantError> {
        self.sudoers.remove(id)?;
        match self.shards.find(id) {
            Some(p) => self.shards.take(&p, &[id]),
            None => Ok(()),
        }
    }
}

impl Enforcer for SystemEnforcer {
    fn stage<'a>(&'a self, g: &'a GrantRecord) -> Result<Finish<'a>, GrantError> {
        match &g.spec {
            GrantSpec::Sudo { .. } => {
                let staged = self.shards.stage_put(&privilege_of(g)?, entry_of(g))?;
                Ok(Box::new(move || {
                    staged.finish()?;
                    // An upgrade: the grant's own file from before goes once its line is in.
                    self.sudoers.remove(&g.id).map(|_| ())
                }))
            }
            GrantSpec::Group { .. } | GrantSpec::Gate => Ok(Box::new(move || self.apply(g))),
        }
    }

    fn apply(&self, g: &GrantRecord) -> Result<(), GrantError> {
        match &g.spec {
            GrantSpec::Sudo { .. } => self.stage(g)?(),
            GrantSpec::Group { group } => {
                // The manifest first: the membership never exists without its marker.
                let user = group_member(g)?;
                self.manifests.write(&manifest_of(g, user.clone(), group))?;
                self.groups.add(&user, group)
            }
            // Nothing on the system: the grant lives in the gate index only.
            GrantSpec::Gate => Ok(()),
        }
    }

    fn remove(&self, g: &GrantRecord) -> Result<(), GrantError> {
        match &g.spec {
            GrantSpec::Sudo { .. } => {
                self.sudoers.remove(&g.id)?;
                self.shards.take(&privilege_of(g)?, &[&g.id])
            }
            GrantSpec::Group { group } => {
                for user in member_names(g)? {
                    self.groups.remove(&user, group)?;
                }
                // The manifest goes last: until the membership is gone it is what lets the
                // sweep end it without the database.
                self.manifests.remove(&g.id)
            }
            GrantSpec::Gate => Ok(()),
        }
    }

    fn presence(&self, g: &GrantRecord) -> Result<Presence, GrantError> {
        match &g.spec {
            GrantSpec::Sudo { .. } => Ok(
                match self.shards.status(&privilege_of(g)?, &g.id, &g.drop_in)? {
                    DropInStatus::Intact => Presence::Intact,
                    DropInStatus::Missing => Presence::Missing,
                    DropInStatus::Tampered(why) => Presence::Tampered(why),
                },
            ),
            GrantSpec::Group { group } => Ok(if self.groups.is_member(&group_member(g)?, group)? {
                Presence::Intact
            } else {
                Presence::Missing
            }),
            GrantSpec::Gate => Ok(Presence::Intact),
        }
    }

    fn shared_rule(&self, g: &GrantRecord) -> Option<Arc<str>> {
        match &g.spec {
            GrantSpec::Sudo { .. } => {
                self.shards
                    .shared_text(&privilege_of(g).ok()?, &g.id, &g.drop_in)
            }
            _ => None,
        }
    }

    fn remove_many(&self, gs: &[GrantRecord]) -> Vec<Result<(), GrantError>> {
        // Sudo grants: one write of each privilege's file for all of its grants.
        let mut by_privilege: BTreeMap<PrivilegeName, Vec<&GrantId>> = BTreeMap::new();
        // Group grants: one locked edit of /etc/group and /etc/gshadow for all memberships.
        let mut members: Vec<(UserName, GroupName)> = Vec::new();
        let mut member_of: Vec<Option<Result<std::ops::Range<usize>, GrantError>>> = Vec::new();
        for g in gs {
            member_of.push(None);
            match (&g.spec, privilege_of(g)) {
                (GrantSpec::Sudo { .. }, Ok(p)) => by_privilege.entry(p).or_default().push(&g.id),
                (GrantSpec::Group { group }, _) => {
                    let at = members.len();
                    let names = member_names(g).map(|names| {
                        members.extend(names.into_iter().map(|u| (u, group.clone())));
                        at..members.len()
                    });
                    if let Some(last) = member_of.last_mut() {
                        *last = Some(names);
                    }
                }
                _ => {}
            }
        }
        let taken: BTreeMap<PrivilegeName, Result<(), GrantError>> = by_privilege
            .into_iter()
            .map(|(p, ids)| {
                let out = self.shards.take(&p, &ids);
                (p, out)
            })
            .collect();
        // One membership is gpasswd's, like a single removal (its own syslog line included).
        let removed = match members.as_slice() {
            [(user, group)] => vec![self.groups.remove(user, group)],
            _ => self.groups.remove_members(&members),
        };
        gs.iter()
            .zip(member_of)
            .map(|(g, members)| match (&g.spec, privilege_of(g), members) {
                (GrantSpec::Sudo { .. }, Ok(p), _) => {
                    self.sudoers.remove(&g.id)?;
                    match taken.get(&p) {
                        Some(Err(e)) => Err(GrantError::Verify {
                            what: e.to_string(),
                        }),
                        _ => Ok(()),
                    }
                }
                (GrantSpec::Group { .. }, _, Some(range)) => {
                    for r in &removed[range?] {
                        if let Err(e) = r {
                            return Err(GrantError::Verify {
                                what: e.to_string(),
                            });
                        }
                    }
                    // The manifest goes last, as in `remove`.
                    self.manifests.remove(&g.id)
                }
                _ => self.remove(g),
            })
            .collect()
    }

    fn owned_drop_ins(&self) -> Result<Vec<GrantId>, GrantError> {
        let mut ids = self.sudoers.owned()?;
        let (entries, mut errors) = self.shards.entries();
        if let Some(e) = errors.pop() {
            return Err(e);
        }
        ids.extend(entries.into_iter().map(|(_, e)| e.grant));
        ids.extend(self.manifests.ids()?);
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    fn remove_orphan(&self, id: &GrantId) -> Result<(), GrantError> {
        let drop_in = self.remove_line(id);
        let membership = match self.manifests.read(id)? {
            Some(m) => self.remove_marked(&Marked {
                grant: m.grant,
                until_ms: m.until_ms,
                what: MarkedKind::Membership {
                    user: m.user,
                    group: m.group,
                },
            }),
            None => Ok(()),
        };
        drop_in.and(membership)
    }

    fn marked(&self) -> (Vec<Marked>, Vec<GrantError>) {
        let (mut found, mut unreadable) = (Vec::new(), Vec::new());
        match self.sudoers.owned() {
            Ok(ids) => {
                for id in ids {
                    match self.sudoers.until_ms(&id) {
                        Some(until_ms) => found.push(Marked {
                            grant: id,
                            until_ms,
                            what: MarkedKind::DropIn,
                        }),
                        None => unreadable.push(GrantError::Verify {
                            what: format!(
                                "{}: no deadline on its second line",
                                self.sudoers.path_for(&id).display()
                            ),
                        }),
                    }
                }
            }
            Err(e) => unreadable.push(e),
        }
        let (entries, errors) = self.shards.entries();
        unreadable.extend(errors);
        found.extend(entries.into_iter().map(|(_, e)| Marked {
            grant: e.grant,
            until_ms: e.until_ms,
            what: MarkedKind::DropIn,
        }));
        match self.manifests.ids() {
            Ok(ids) => {
                for id in ids {
                    match self.manifests.read(&id) {
                        Ok(Some(m)) => found.push(Marked {
                            grant: m.grant,
                            until_ms: m.until_ms,
                            what: MarkedKind::Membership {
                                user: m.user,
                                group: m.group,
                            },
                        }),
                        Ok(None) => {}
                        Err(e) => unreadable.push(e),
                    }
                }
            }
            Err(e) => unreadable.push(e),
        }
        (found, unreadable)
    }

    fn remove_marked(&self, m: &Marked) -> Result<(), GrantError> {
        match &m.what {
            MarkedKind::DropIn => self.remove_line(&m.grant),
            MarkedKind::Membership { user, group } => {
                self.groups.remove(user, group)?;
                self.manifests.remove(&m.grant)
            }
        }
    }

    fn keep_marker(&self, g: &GrantRecord) -> Result<bool, GrantError> {
        let GrantSpec::Group { group } = &g.spec else {
            return Ok(false);
        };
        if self.manifests.read(&g.id)?.is_some() {
            return Ok(false);
        }
        let user = group_member(g)?;
        self.manifests.write(&manifest_of(g, user, group))?;
        Ok(true)
    }

    fn foreign_lookalikes(&self) -> Result<Vec<PathBuf>, GrantError> {
        let mut out = self.sudoers.foreign_lookalikes()?;
        out.extend(self.shards.stray_files()?);
        Ok(out)
    }

    fn remove_stale_temp(&self) -> Result<usize, GrantError> {
        Ok(self.sudoers.remove_stale_temp()? + self.shards.remove_stale_temps()?)
    }

    fn recount(&self) -> Result<(), GrantError> {
        self.shards.recount_users()
    }

    fn tidy(&self) -> Result<(), GrantError> {
        self.shards.tidy_users()
    }

    fn route(&self, routes: &[Route]) -> Result<(), GrantError> {
        self.routes.install(routes)
    }

    fn route_damage(&self, routes: &[Route]) -> Vec<String> {
        self.routes.damage(routes)
    }

    fn unroute(&self) -> Result<(), GrantError> {
        self.routes.remove_all()
    }

    fn drift(&self) -> Vec<(String, String)> {
        self.shards
            .take_drift()
            .into_iter()
            .map(|(p, found)| (p.to_string(), found))
            .collect()
    }
}
