//! The request lifecycle against the fake system and clock: who counts and when, the access
//! clock starting at the final approval, the TTL on the daemon's clock, the shortest duration.

use std::sync::Mutex;

use super::*;
use crate::store::RequestRecord;
use crate::terms::{RequestScope, RequestState, RequestStatus};

/// alice (1001) asks; bob (1002), carol (1003) and alice-adm (1004, alice too) are in `appr`;
/// groups can change while a request waits.
struct Team(Mutex<Vec<(u32, &'static str, Vec<String>)>>);

impl Team {
    fn new() -> Self {
        let appr = || vec!["appr".to_string()];
        Self(Mutex::new(vec![
            (0, "root", vec!["root".to_string()]),
            (1001, "alice", vec![]),
            (1002, "bob", appr()),
            (1003, "carol", appr()),
            (1004, "alice-adm", appr()),
        ]))
    }
    fn leave(&self, name: &str) {
        for (_, n, groups) in self.0.lock().unwrap().iter_mut() {
            if *n == name {
                groups.clear();
            }
        }
    }
}

impl Accounts for Team {
    fn user_name(&self, uid: u32) -> Option<String> {
        let users = self.0.lock().unwrap();
        users.iter().find(|u| u.0 == uid).map(|u| u.1.to_string())
    }
    fn user_uid(&self, name: &str) -> Option<u32> {
        let users = self.0.lock().unwrap();
        users.iter().find(|u| u.1 == name).map(|u| u.0)
    }
    fn group_gid(&self, name: &str) -> Option<u32> {
        match name {
            "appr" => Some(3000),
            "root" => Some(0),
            _ => None,
        }
    }
    fn user_groups(&self, name: &str) -> Vec<String> {
        let users = self.0.lock().unwrap();
        users
            .iter()
            .find(|u| u.1 == name)
            .map(|u| u.2.clone())
            .unwrap_or_default()
    }
    fn path_exists(&self, _p: &Path) -> bool {
        true
    }
}

const QUORUM: &str = r#"
same_person = [["alice", "alice-adm"]]

[privilege.db]
kind = "sudo"
commands = ["/usr/bin/id -u"]

[privilege.db2]
kind = "sudo"
commands = ["/usr/bin/id -g"]

[[rule]]
name = "dba"
users = ["alice"]
privileges = ["db", "db2"]
max_duration = "2h"
reason_required = false
approval = "quorum"
approvers = ["%appr"]
approvals = 2
request_ttl = "1h"
"#;

struct Desk {
    core: Core,
    clock: Arc<FakeClock>,
    team: Arc<Team>,
    _dir: TempDir,
}

fn desk() -> Desk {
    let dir = TempDir::new();
    let team = Arc::new(Team::new());
    let clock = Arc::new(FakeClock::new(T0));
    let policy = Policy::parse_str(Path::new("policy.toml"), QUORUM, team.as_ref())
        .unwrap_or_else(|e| panic!("{e:?}"))
        .policy;
    let core = Core::open(Parts {
        cfg: Config {
            state_dir: dir.to_path_buf(),
            hostname: "test".into(),
            db_busy_timeout_ms: 100,
            ..Config::default()
        },
        clock: clock.clone(),
        audit: Arc::new(Audit::new(false)),
        enforcer: Box::new(FakeEnforcer(Arc::default())),
        accounts: team.clone(),
        recaller: Recaller::new(dir.join("no-proc"), std::time::Duration::from_millis(10)),
        flavor: SudoFlavor::Classic {
            version: "1.9.13".into(),
            notafter: true,
        },
        policy,
    })
    .unwrap();
    Desk {
        core,
        clock,
        team,
        _dir: dir,
    }
}

const MIN: i64 = 60_000;

impl Desk {
    /// alice asks for `secs`; the request id.
    fn ask(&mut self, secs: u64) -> String {
        let out = self.core.request(1001, &ask("db", secs, "")).unwrap();
        assert_eq!(out.status, RequestStatus::Pending, "{}", out.message);
        out.request_id
    }
    fn request(&self, id: &str) -> RequestRecord {
        let id = crate::names::RequestId::parse(id).unwrap();
        self.core.store.get_request(&id).unwrap().unwrap()
    }
}

#[test]
fn the_access_clock_starts_at_the_final_approval_and_the_shortest_duration_wins() {
    let mut d = desk();
    let id = d.ask(3600);
    d.clock.advance_ms(30 * MIN);
    let q = d.core.approve(1002, &id, "ok", 50 * 60).unwrap();
    assert_eq!((q.state, q.approvals), (RequestState::Pending, 1));
    d.clock.advance_ms(5 * MIN);
    let q = d.core.approve(1003, &id, "", 40 * 60).unwrap();
    assert_eq!(q.state, RequestState::Approved);
    let g = d.core.list(Some(1001), false).unwrap().remove(0);
    assert_eq!(g.id, q.grant_id);
    assert_eq!(g.starts_ms, T0 + 35 * MIN, "from the final approval");
    assert_eq!(
        g.expires_ms - g.starts_ms,
        40 * MIN,
        "carol's 40m is the shortest"
    );
}

#[test]
fn the_requester_and_the_same_person_never_count_and_a_removed_approver_stops_counting() {
    let mut d = desk();
    let id = d.ask(600);
    for uid in [1001, 1004] {
        let e = d.core.approve(uid, &id, "", 0).unwrap_err();
        assert!(matches!(e, Error::NotAllowed(_)), "{e:?}");
    }
    d.core.approve(1002, &id, "", 0).unwrap();
    let e = d.core.approve(1002, &id, "", 0).unwrap_err();
    assert!(e.message().contains("already voted"), "{e:?}");
    d.team.leave("bob");
    let q = d.core.approve(1003, &id, "", 0).unwrap();
    assert_eq!(
        (q.state, q.approvals),
        (RequestState::Pending, 1),
        "bob no longer counts"
    );
    assert!(d.core.list(Some(1001), false).unwrap().is_empty());
    // bob does not even see it to decide any more.
    let seen = d
        .core
        .list_requests(
            Caller {
                uid: 1002,
                admin: false,
            },
            RequestScope::Pending,
        )
        .unwrap();
    assert!(seen.is_empty());
}

#[test]
fn a_request_expires_by_its_ttl_on_the_daemons_clock_and_then_takes_no_vote() {
    let mut d = desk();
    let id = d.ask(600);
    d.clock.advance_ms(59 * MIN);
    d.core.tick();
    assert_eq!(d.request(&id).state, RequestState::Pending);
    d.clock.advance_ms(MIN);
    d.core.tick();
    assert_eq!(d.request(&id).state, RequestState::Expired);
    let e = d.core.approve(1002, &id, "", 0).unwrap_err();
    assert!(
        e.message().contains("no longer pending: it was expired"),
        "{e:?}"
    );
}

#[test]
fn a_denial_needs_a_comment_and_ends_the_request() {
    let mut d = desk();
    let id = d.ask(600);
    assert!(d.core.deny(1002, &id, "  ").is_err());
    assert_eq!(d.request(&id).state, RequestState::Pending);
    let q = d.core.deny(1002, &id, "use the replica").unwrap();
    assert_eq!(q.state, RequestState::Denied);
    assert_eq!(q.note, "use the replica");
    assert!(d.core.cancel(1001, &id).is_err(), "decided already");
}

#[test]
fn an_approval_that_would_exceed_max_active_grants_nothing() {
    let mut d = desk();
    let first = d.ask(600);
    let second = d
        .core
        .request(1001, &ask("db2", 600, ""))
        .unwrap()
        .request_id;
    d.core.approve(1002, &first, "", 0).unwrap();
    d.core.approve(1003, &first, "", 0).unwrap();
    d.core.approve(1002, &second, "", 0).unwrap();
    let e = d.core.approve(1003, &second, "", 0).unwrap_err();
    assert!(e.message().contains("at most 1"), "{e:?}");
    assert_eq!(d.request(&second).state, RequestState::Failed);
    assert_eq!(d.core.list(Some(1001), false).unwrap().len(), 1);
}
