//! The core against a fake system and clock: ordering and bookkeeping of the lifecycle.

#![allow(clippy::disallowed_methods)] // temp dirs and real tools in tests
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::requests::Ask;
use super::*;
use crate::audit::Audit;
use crate::clock::FakeClock;
use crate::effects::GrantError;
use crate::effects::enforce::Presence;
use crate::effects::recall::Recaller;
use crate::grant::GrantState;
use crate::terms::Via;
use crate::testutil::TempDir;

mod approvals;

const ROOT: Caller = Caller {
    uid: 0,
    admin: true,
};
const T0: i64 = 1_800_000_000_000;

/// Records what is "on the system"; can be told to fail.
#[derive(Default)]
struct FakeSystem {
    on: Mutex<HashSet<String>>,
    fail_apply: Mutex<bool>,
    fail_remove: Mutex<bool>,
    orphans: Mutex<Vec<GrantId>>,
}

struct FakeEnforcer(Arc<FakeSystem>);

fn boom() -> GrantError {
    GrantError::Verify {
        what: "injected failure".into(),
    }
}

impl Enforcer for FakeEnforcer {
    fn apply(&self, g: &GrantRecord) -> Result<(), GrantError> {
        if *self.0.fail_apply.lock().unwrap() {
            return Err(boom());
        }
        self.0.on.lock().unwrap().insert(g.id.to_string());
        Ok(())
    }
    fn remove(&self, g: &GrantRecord) -> Result<(), GrantError> {
        if *self.0.fail_remove.lock().unwrap() {
            return Err(boom());
        }
        self.0.on.lock().unwrap().remove(g.id.as_str());
        Ok(())
    }
    fn presence(&self, g: &GrantRecord) -> Result<Presence, GrantError> {
        Ok(if self.0.on.lock().unwrap().contains(g.id.as_str()) {
            Presence::Intact
        } else {
            Presence::Missing
        })
    }
    fn owned_drop_ins(&self) -> Result<Vec<GrantId>, GrantError> {
        let mut ids: Vec<GrantId> = self
            .0
            .on
            .lock()
            .unwrap()
            .iter()
            .map(|s| GrantId::parse(s).unwrap())
            .collect();
        ids.extend(self.0.orphans.lock().unwrap().iter().cloned());
        Ok(ids)
    }
    fn remove_orphan(&self, id: &GrantId) -> Result<(), GrantError> {
        self.0.orphans.lock().unwrap().retain(|o| o != id);
        self.0.on.lock().unwrap().remove(id.as_str());
        Ok(())
    }
    fn foreign_lookalikes(&self) -> Result<Vec<PathBuf>, GrantError> {
        Ok(vec![])
    }
    fn remove_stale_temp(&self) -> Result<usize, GrantError> {
        Ok(0)
    }
}

struct RootOnly;

impl Accounts for RootOnly {
    fn user_name(&self, uid: u32) -> Option<String> {
        (uid == 0).then(|| "root".to_string())
    }
    fn user_uid(&self, name: &str) -> Option<u32> {
        (name == "root").then_some(0)
    }
    fn group_gid(&self, name: &str) -> Option<u32> {
        (name == "root").then_some(0)
    }
    fn user_groups(&self, _name: &str) -> Vec<String> {
        vec!["root".into()]
    }
    fn path_exists(&self, _p: &Path) -> bool {
        true
    }
}

const POLICY: &str = r#"
[privilege.whoami]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[privilege.logs]
kind = "sudo"
commands = ["/usr/bin/journalctl"]

[privilege.disk]
kind = "sudo"
commands = ["/usr/bin/df"]

[[rule]]
name = "admins"
users = ["root"]
privileges = ["whoami", "logs", "disk"]
max_duration = "1h"
reason_required = false
max_active_rule = 2
"#;

struct World {
    core: Core,
    clock: Arc<FakeClock>,
    system: Arc<FakeSystem>,
    dir: TempDir,
}

fn world_in(dir: TempDir, system: Arc<FakeSystem>, clock: Arc<FakeClock>) -> World {
    let cfg = Config {
        state_dir: dir.to_path_buf(),
        hostname: "test".into(),
        db_busy_timeout_ms: 100,
        ..Config::default()
    };
    let policy = Policy::parse_str(Path::new("policy.toml"), POLICY, &RootOnly)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .policy;
    let core = Core::open(Parts {
        cfg,
        clock: clock.clone(),
        audit: Arc::new(Audit::new(false)),
        enforcer: Box::new(FakeEnforcer(system.clone())),
        accounts: Arc::new(RootOnly),
        recaller: Recaller::new(dir.join("no-proc"), std::time::Duration::from_millis(10)),
        flavor: SudoFlavor::Classic {
            version: "1.9.13".into(),
            notafter: true,
        },
        policy,
    })
    .unwrap();
    World {
        core,
        clock,
        system,
        dir,
    }
}

fn world() -> World {
    world_in(TempDir::new(), Arc::default(), Arc::new(FakeClock::new(T0)))
}

fn ask<'a>(privilege: &'a str, duration_secs: u64, reason: &'a str) -> Ask<'a> {
    Ask {
        privilege,
        duration_secs,
        reason,
        ticket: "",
        via: Via::Bus,
    }
}

impl World {
    fn grant(&mut self, privilege: &str, secs: u64) -> GrantId {
        let out = self.core.request(0, &ask(privilege, secs, "")).unwrap();
        GrantId::parse(&out.grant.id).unwrap()
    }
    fn on(&self, id: &GrantId) -> bool {
        self.system.on.lock().unwrap().contains(id.as_str())
    }
    fn state(&self, id: &GrantId) -> GrantState {
        self.core.store.get(id).unwrap().unwrap().state
    }
    fn gate_allows(&self, service: &str) -> bool {
        self.core
            .gate
            .read()
            .unwrap()
            .check(0, service, &self.clock.now())
            .allowed
    }
    /// A new engine over the same database and system, as after a restart.
    fn restart(self) -> World {
        world_in(self.dir, self.system, self.clock)
    }
}

#[test]
fn a_grant_is_recorded_applied_and_visible_to_the_gate() {
    let mut w = world();
    let id = w.grant("whoami", 600);
    assert!(w.on(&id));
    assert_eq!(w.state(&id), GrantState::Active);
    assert!(
        w.gate_allows("jitd-whoami"),
        "the service its commands are routed to"
    );
    assert!(!w.gate_allows("sudo"), "no static sudoers rule");
    assert!(!w.gate_allows("su"), "only the privilege's PAM services");
}

#[test]
fn an_expired_grant_is_removed_by_the_tick_at_its_deadline() {
    let mut w = world();
    let id = w.grant("whoami", 60);
    assert_eq!(w.core.tick(), Some(60_000));
    w.clock.advance_ms(59_999);
    assert_eq!(w.core.tick(), Some(1));
    assert!(w.on(&id));
    w.clock.advance_ms(1);
    assert_eq!(w.core.tick(), None);
    assert!(!w.on(&id));
    assert_eq!(w.state(&id), GrantState::Expired);
    assert!(!w.gate_allows("sudo"));
}

#[test]
fn setting_the_wall_clock_back_does_not_extend_a_grant() {
    let mut w = world();
    let id = w.grant("whoami", 60);
    // Back by less than the tampering tolerance, so only the boot-time deadline can end it.
    w.clock.set_wall_ms(T0 - 240_000);
    w.clock.advance_ms(59_999);
    w.core.tick();
    assert!(w.on(&id));
    w.clock.advance_ms(1);
    w.core.tick();
    assert!(!w.on(&id), "boot-time deadline ended it");
    assert_eq!(w.state(&id), GrantState::Expired);
}

#[test]
fn setting_the_wall_clock_forward_ends_grants_early() {
    let mut w = world();
    let id = w.grant("whoami", 3600);
    w.clock.set_wall_ms(T0 + 86_400_000);
    w.core.tick();
    assert!(!w.on(&id));
}

#[test]
fn the_gate_refuses_a_due_grant_even_before_the_tick_removes_it() {
    let mut w = world();
    w.grant("whoami", 60);
    w.clock.advance_ms(60_000);
    assert!(!w.gate_allows("sudo"));
}

#[test]
fn a_failed_apply_is_rolled_back_and_recorded_as_failed() {
    let mut w = world();
    *w.system.fail_apply.lock().unwrap() = true;
    let err = w.core.request(0, &ask("whoami", 60, "")).unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(w.system.on.lock().unwrap().is_empty());
    let rows = w.core.store.list(None, true, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, GrantState::Failed);
    assert!(!w.gate_allows("sudo"));
}

#[test]
fn a_failed_removal_is_retried_and_the_gate_refuses_meanwhile() {
    let mut w = world();
    let id = w.grant("whoami", 60);
    *w.system.fail_remove.lock().unwrap() = true;
    w.clock.advance_ms(60_000);
    w.core.tick();
    assert!(w.on(&id), "still on the system");
    assert_eq!(w.state(&id), GrantState::Removing);
    assert!(!w.gate_allows("sudo"), "but no longer honoured by the gate");
    *w.system.fail_remove.lock().unwrap() = false;
    w.core.tick();
    assert!(!w.on(&id));
    assert_eq!(w.state(&id), GrantState::Expired);
}

#[test]
fn limits_refuse_a_second_grant_of_the_same_privilege_and_beyond_max_active() {
    let mut w = world();
    w.grant("whoami", 60);
    let again = w.core.request(0, &ask("whoami", 60, "")).unwrap_err();
    assert!(matches!(again, Error::PolicyDenied(_)), "{again:?}");
    w.grant("logs", 60);
    let third = w.core.request(0, &ask("disk", 60, "")).unwrap_err();
    assert!(
        matches!(third, Error::PolicyDenied(_)),
        "max_active_rule = 2: {third:?}"
    );
}

#[test]
fn hostile_reasons_are_refused_before_the_policy_is_asked() {
    let mut w = world();
    for reason in ["a\nb", "\u{1b}[2J", "x\u{202e}y", &"r".repeat(2000)] {
        let e = w.core.request(0, &ask("whoami", 60, reason)).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{reason:?}: {e:?}");
    }
    assert!(w.system.on.lock().unwrap().is_empty());
}

#[test]
fn an_owner_drops_and_only_admins_revoke_others() {
    let mut w = world();
    let id = w.grant("whoami", 600);
    let e = w
        .core
        .revoke(
            Caller {
                uid: 4242,
                admin: false,
            },
            id.as_str(),
            "",
            false,
        )
        .unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert!(w.on(&id));
    let ended = w.core.revoke(ROOT, id.as_str(), "", false).unwrap();
    assert_eq!(ended.state, GrantState::Dropped);
    assert!(!w.on(&id));
    let e = w.core.revoke(ROOT, "g../../etc", "", false).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
}

#[test]
fn restart_reconciles_every_interrupted_state() {
    let mut w = world();
    let live = w.grant("whoami", 3600);
    let expiring = w.grant("logs", 60);
    // A crash between intent and apply: the row says applying, the system has it.
    let mut half = w.core.store.get(&live).unwrap().unwrap();
    half.id = GrantId::from_random(0xabc);
    half.state = GrantState::Applying;
    w.core.store.insert(&half).unwrap();
    w.system.on.lock().unwrap().insert(half.id.to_string());
    // A live grant deleted behind jitd's back, and an orphan drop-in the DB never knew.
    w.system.on.lock().unwrap().remove(live.as_str());
    w.system
        .orphans
        .lock()
        .unwrap()
        .push(GrantId::from_random(0xdef));
    w.clock.advance_ms(61_000);

    let mut w = w.restart();
    w.core.reconcile().unwrap();
    assert!(w.on(&live), "live grant re-applied");
    assert_eq!(w.state(&live), GrantState::Active);
    assert!(!w.on(&expiring));
    assert_eq!(w.state(&expiring), GrantState::Expired);
    assert!(!w.on(&half.id), "interrupted apply undone");
    assert_eq!(w.state(&half.id), GrantState::Failed);
    assert!(
        w.system.orphans.lock().unwrap().is_empty(),
        "orphan removed"
    );
    assert!(w.gate_allows("jitd-whoami"));
}

#[test]
fn a_record_dated_in_the_future_is_revoked() {
    let mut w = world();
    let id = w.grant("whoami", 3600);
    w.clock.set_wall_ms(T0 - 3_600_000);
    w.core.tick();
    assert!(!w.on(&id));
    assert_eq!(w.state(&id), GrantState::Revoked);
}

/// A drop whose database writes all fail (another connection holds the lock) is not undone at
/// the next start: the tombstone written before the removal wins over the stale `active` row,
/// and the end reaches the database once it takes writes.
#[test]
fn an_end_the_database_could_not_record_is_not_undone_by_a_restart() {
    let mut w = world();
    let id = w.grant("whoami", 600);
    let other = rusqlite::Connection::open(w.dir.join("jitd.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    w.core.revoke(ROOT, id.as_str(), "", false).unwrap();
    assert!(!w.on(&id));
    drop(other);
    assert_eq!(
        w.state(&id),
        GrantState::Active,
        "nothing reached the database"
    );
    let mut w = w.restart();
    w.core.reconcile().unwrap();
    assert!(!w.on(&id), "not put back");
    assert!(!w.gate_allows("sudo"));
    assert_eq!(w.state(&id), GrantState::Dropped);
    assert!(w.core.ended.read().unwrap().is_empty(), "settled");
}
