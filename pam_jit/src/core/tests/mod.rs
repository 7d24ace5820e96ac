//! The core against a scripted handle and a scripted gate: every branch, without PAM or a bus.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use super::*;
use crate::args;

/// A PAM handle whose items, account database and conversation replies are scripted, and
/// which records everything said and logged.
struct FakePam {
    ruid: u32,
    items: HashMap<&'static str, Result<Option<String>, String>>,
    accounts: HashMap<String, u32>,
    replies: RefCell<VecDeque<Result<Option<String>, String>>>,
    said: RefCell<Vec<(Style, String)>>,
    logged: RefCell<Vec<(Level, String)>>,
    session: Option<String>,
    silent: bool,
}

impl FakePam {
    /// `sudo` run by alice (uid 1000): real uid 0, PAM_RUSER alice, PAM_USER root.
    fn sudo() -> Self {
        let mut p = Self {
            ruid: 0,
            items: HashMap::new(),
            accounts: HashMap::from([("alice".into(), 1000), ("root".into(), 0)]),
            replies: RefCell::default(),
            said: RefCell::default(),
            logged: RefCell::default(),
            session: None,
            silent: false,
        };
        p.set("service", "sudo");
        p.set("ruser", "alice");
        p.set("user", "root");
        p.set("tty", "/dev/pts/3");
        p
    }

    fn set(&mut self, item: &'static str, v: &str) {
        self.items.insert(item, Ok(Some(v.to_string())));
    }

    fn reply(&self, r: Result<Option<&str>, &str>) {
        self.replies
            .borrow_mut()
            .push_back(r.map(|o| o.map(str::to_string)).map_err(str::to_string));
    }

    fn said(&self, style: Style) -> Vec<String> {
        self.said
            .borrow()
            .iter()
            .filter(|(s, _)| *s == style)
            .map(|(_, t)| t.clone())
            .collect()
    }

    fn logged_at(&self, level: Level) -> Vec<String> {
        self.logged
            .borrow()
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

impl Pam for FakePam {
    fn item(&self, item: Item) -> Result<Option<String>, String> {
        let key = match item {
            Item::Service => "service",
            Item::User => "user",
            Item::Ruser => "ruser",
            Item::Tty => "tty",
            Item::Rhost => "rhost",
        };
        self.items.get(key).cloned().unwrap_or(Ok(None))
    }

    fn converse(&self, style: Style, text: &str) -> Result<Option<String>, String> {
        self.said.borrow_mut().push((style, text.to_string()));
        if style == Style::PromptEchoOn {
            self.replies
                .borrow_mut()
                .pop_front()
                .unwrap_or(Err("no scripted reply".into()))
        } else {
            Ok(None)
        }
    }

    fn real_uid(&self) -> u32 {
        self.ruid
    }

    fn pid(&self) -> u32 {
        4242
    }

    fn uid_of(&self, name: &str) -> Option<u32> {
        self.accounts.get(name).copied()
    }

    fn set_session_id(&mut self, id: &str) -> Result<(), String> {
        self.session = Some(id.to_string());
        Ok(())
    }

    fn session_id(&self) -> Option<String> {
        self.session.clone()
    }

    fn log(&self, level: Level, msg: &str) {
        self.logged.borrow_mut().push((level, msg.to_string()));
    }

    fn silent(&self) -> bool {
        self.silent
    }
}

/// A gate with scripted answers that records the calls it got.
#[derive(Default)]
struct FakeGate {
    checks: VecDeque<Result<GateDecision, GateError>>,
    requests: VecDeque<Result<RequestOutcome, GateError>>,
    opened: Option<Result<String, GateError>>,
    /// What jitd says may be requested in place (`None`: a jitd that cannot say).
    choices: Option<Vec<PrivilegeInfo>>,
    calls: Vec<String>,
}

fn allowed() -> GateDecision {
    GateDecision {
        allowed: true,
        grant_id: "g0123456789ab".into(),
        privilege: "nginx-admin".into(),
        expires_ms: 1,
        message: String::new(),
    }
}

fn refused() -> GateDecision {
    GateDecision {
        allowed: false,
        grant_id: String::new(),
        privilege: String::new(),
        expires_ms: 0,
        message: "no active elevation for alice on web-3: run `jitctl elevate nginx-admin --for 15m --reason ...`".into(),
    }
}

fn outcome(status: &str) -> RequestOutcome {
    RequestOutcome {
        status: jitd::terms::RequestStatus::parse(status).unwrap(),
        message: format!("grant g0123456789ab is {status}"),
        grant: jitd::wire::GrantInfo {
            id: "g0123456789ab".into(),
            uid: 1000,
            user: "alice".into(),
            privilege: "nginx-admin".into(),
            kind: jitd::terms::GrantKind::Gate,
            state: jitd::terms::GrantState::parse(status)
                .unwrap_or(jitd::terms::GrantState::Applying),
            rule: "r".into(),
            grants: String::new(),
            reason: String::new(),
            ticket: String::new(),
            requested_ms: 0,
            starts_ms: 0,
            expires_ms: 0,
            ended_ms: 0,
            end_reason: String::new(),
        },
        clamped: false,
        request_id: String::new(),
        request_expires_ms: 0,
    }
}

fn down() -> GateError {
    GateError::Unreachable("no answer within 2000 ms".into())
}

impl GateClient for FakeGate {
    fn check(
        &mut self,
        uid: u32,
        service: &str,
        tty: &str,
        rhost: &str,
    ) -> Result<GateDecision, GateError> {
        self.calls
            .push(format!("check {uid} {service} {tty} {rhost}"));
        self.checks.pop_front().unwrap_or(Err(down()))
    }

    fn request(
        &mut self,
        uid: u32,
        privilege: &str,
        duration_secs: u64,
        reason: &str,
        ticket: &str,
    ) -> Result<RequestOutcome, GateError> {
        let ticket = if ticket.is_empty() {
            String::new()
        } else {
            format!(" ticket={ticket}")
        };
        self.calls.push(format!(
            "request {uid} {privilege} {duration_secs} {reason}{ticket}"
        ));
        self.requests.pop_front().unwrap_or(Err(down()))
    }

    fn choices(
        &mut self,
        uid: u32,
        service: &str,
    ) -> Result<Option<Vec<PrivilegeInfo>>, GateError> {
        if self.choices.is_some() {
            self.calls.push(format!("choices {uid} {service}"));
        }
        Ok(self.choices.clone())
    }

    fn session_opened(&mut self, s: &SessionInfo) -> Result<String, GateError> {
        self.calls.push(format!(
            "opened {} {} {} {}",
            s.grant_id, s.uid, s.pid, s.service
        ));
        self.opened.take().unwrap_or(Err(down()))
    }

    fn session_closed(&mut self, id: &str) -> Result<(), GateError> {
        self.calls.push(format!("closed {id}"));
        Ok(())
    }
}

fn opts(a: &[&str]) -> Options {
    args::parse(a.iter().copied()).unwrap()
}

fn gate(checks: Vec<Result<GateDecision, GateError>>) -> FakeGate {
    FakeGate {
        checks: checks.into(),
        ..Default::default()
    }
}

// ---- who is checked --------------------------------------------------------------------------

#[test]
fn sudo_checks_the_invoking_user_from_ruser_not_the_target_user() {
    let pam = FakePam::sudo();
    assert_eq!(subject(&pam).unwrap().uid, 1000);
}

#[test]
fn su_checks_the_real_uid_whatever_the_items_say() {
    let mut pam = FakePam::sudo();
    pam.ruid = 1000;
    pam.set("ruser", "root");
    pam.set("user", "root");
    let s = subject(&pam).unwrap();
    assert_eq!((s.uid, s.source), (1000, "real uid"));
}

#[test]
fn sshd_without_ruser_checks_pam_user() {
    let mut pam = FakePam::sudo();
    pam.items.remove("ruser");
    pam.set("user", "alice");
    assert_eq!(subject(&pam).unwrap().source, "PAM_USER");
    pam.set("ruser", "");
    assert_eq!(subject(&pam).unwrap().uid, 1000);
}

#[test]
fn unknown_or_missing_users_are_refused() {
    let mut pam = FakePam::sudo();
    pam.set("ruser", "mallory");
    assert_eq!(subject(&pam), Err(Code::UserUnknown));
    pam.items.remove("ruser");
    pam.items.remove("user");
    assert_eq!(subject(&pam), Err(Code::UserUnknown));
    pam.items.insert("ruser", Err("PAM_BAD_ITEM".into()));
    assert_eq!(subject(&pam), Err(Code::ServiceErr));
}

#[test]
fn a_non_utf8_or_unreadable_item_denies_without_asking_jitd() {
    let mut pam = FakePam::sudo();
    pam.items.insert("tty", Err("not UTF-8".into()));
    let mut g = gate(vec![Ok(allowed())]);
    assert_eq!(account(&mut pam, &mut g, &opts(&[])), Code::ServiceErr);
    assert!(g.calls.is_empty());
}

#[test]
fn a_missing_service_name_denies() {
    let mut pam = FakePam::sudo();
    pam.items.remove("service");
    let mut g = gate(vec![Ok(allowed())]);
    assert_eq!(account(&mut pam, &mut g, &opts(&[])), Code::ServiceErr);
}

#[test]
fn root_is_never_gated_and_jitd_is_not_asked() {
    let mut pam = FakePam::sudo();
    pam.set("ruser", "root");
    let mut g = gate(vec![]);
    assert_eq!(account(&mut pam, &mut g, &opts(&[])), Code::Success);
    assert!(g.calls.is_empty());
}

// ---- account ---------------------------------------------------------------------------------

#[test]
fn account_allows_with_a_live_grant_and_says_nothing() {
    let mut pam = FakePam::sudo();
    let mut g = gate(vec![Ok(allowed())]);
    assert_eq!(account(&mut pam, &mut g, &opts(&[])), Code::Success);
    assert_eq!(g.calls, ["check 1000 sudo /dev/pts/3 "]);
    assert!(pam.said.borrow().is_empty());
}

#[test]
fn account_denies_without_a_grant_and_tells_the_user_what_to_run() {
    let mut pam = FakePam::sudo();
    let mut g = gate(vec![Ok(refused())]);
    assert_eq!(account(&mut pam, &mut g, &opts(&[])), Code::PermDenied);
    let errors = pam.said(Style::ErrorMsg);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("jitctl elevate nginx-admin"),
        "{errors:?}"
    );
    assert!(!pam.logged_at(Level::Notice).is_empty());
}

#[test]
fn the_refusal_is_shown_even_under_pam_silent_which_sudo_always_sets() {
    let mut pam = FakePam::sudo();
    pam.silent = true;
    let mut g = gate(vec![Ok(refused())]);
    assert_eq!(account(&mut pam, &mut g, &opts(&[])), Code::PermDenied);
    assert_eq!(pam.said(Style::ErrorMsg).len(), 1);
}

#[test]
fn the_silent_argument_keeps_the_module_quiet_but_still_denies() {
    let mut pam = FakePam::sudo();
    let mut g = gate(vec![Ok(refused())]);
    assert_eq!(
        account(&mut pam, &mut g, &opts(&["silent"])),
        Code::PermDenied
    );
    assert!(pam.said.borrow().is_empty());
}

#[test]
fn account_fails_closed_when_jitd_does_not_answer() {
    let mut pam = FakePam::sudo();
    let mut g = gate(vec![Err(down())]);
    assert_eq!(account(&mut pam, &mut g, &opts(&[])), Code::PermDenied);
    assert!(pam.said(Style::ErrorMsg)[0].contains("not answering"));
    assert!(pam.logged_at(Level::Err)[0].contains("fail=closed"));
}

#[test]
fn account_fails_open_only_when_told_and_raises_an_alert() {
    let mut pam = FakePam::sudo();
    let mut g = gate(vec![Err(down())]);
    assert_eq!(
        account(&mut pam, &mut g, &opts(&["fail=open"])),
        Code::Success
    );
    assert!(pam.logged_at(Level::Alert)[0].contains("WITHOUT A GRANT"));
}

#[test]
fn fail_open_does_not_open_on_a_refusal_from_jitd() {
    let mut pam = FakePam::sudo();
    let mut g = gate(vec![Ok(refused())]);
    assert_eq!(
        account(&mut pam, &mut g, &opts(&["fail=open"])),
        Code::PermDenied
    );
    let mut g = gate(vec![Err(GateError::Refused {
        name: "org.jitd.Jitd1.Error.NotAllowed".into(),
        message: "root only".into(),
    })]);
    assert_eq!(
        account(&mut pam, &mut g, &opts(&["fail=open"])),
        Code::PermDenied
    );
}

mod in_place;

// ---- session ---------------------------------------------------------------------------------

#[test]
fn an_elevated_session_is_recorded_and_closed_with_its_id() {
    let mut pam = FakePam::sudo();
    let mut g = gate(vec![Ok(allowed())]);
    g.opened = Some(Ok("s00000000000a".into()));
    assert_eq!(open_session(&mut pam, &mut g, &opts(&[])), Code::Success);
    assert_eq!(g.calls[1], "opened g0123456789ab 1000 4242 sudo");
    assert_eq!(pam.session.as_deref(), Some("s00000000000a"));
    assert_eq!(close_session(&mut pam, &mut g, &opts(&[])), Code::Success);
    assert_eq!(g.calls[2], "closed s00000000000a");
}

#[test]
fn a_session_without_a_grant_is_not_recorded() {
    let mut pam = FakePam::sudo();
    let mut g = gate(vec![Ok(refused())]);
    assert_eq!(open_session(&mut pam, &mut g, &opts(&[])), Code::Ignore);
    assert_eq!(close_session(&mut pam, &mut g, &opts(&[])), Code::Ignore);
    assert_eq!(g.calls.len(), 1);
}

#[test]
fn a_session_that_cannot_be_recorded_fails_closed() {
    let mut pam = FakePam::sudo();
    let mut g = gate(vec![Ok(allowed())]);
    assert_eq!(open_session(&mut pam, &mut g, &opts(&[])), Code::SessionErr);
    let mut g = gate(vec![Err(down())]);
    assert_eq!(open_session(&mut pam, &mut g, &opts(&[])), Code::SessionErr);
}

#[test]
fn closing_never_fails_even_when_jitd_is_gone() {
    struct Gone;
    impl GateClient for Gone {
        fn check(&mut self, _: u32, _: &str, _: &str, _: &str) -> Result<GateDecision, GateError> {
            Err(down())
        }
        fn request(
            &mut self,
            _: u32,
            _: &str,
            _: u64,
            _: &str,
            _: &str,
        ) -> Result<RequestOutcome, GateError> {
            Err(down())
        }
        fn session_opened(&mut self, _: &SessionInfo) -> Result<String, GateError> {
            Err(down())
        }
        fn session_closed(&mut self, _: &str) -> Result<(), GateError> {
            Err(down())
        }
    }
    let mut pam = FakePam::sudo();
    pam.session = Some("s00000000000a".into());
    assert_eq!(
        close_session(&mut pam, &mut Gone, &opts(&[])),
        Code::Success
    );
    assert!(!pam.logged_at(Level::Warning).is_empty());
}

#[test]
fn services_outside_the_list_are_left_alone_and_jitd_is_not_asked() {
    let mut pam = FakePam::sudo();
    pam.set("service", "sshd");
    let mut g = gate(vec![]);
    let o = opts(&["services=sudo,su"]);
    assert_eq!(account(&mut pam, &mut g, &o), Code::Ignore);
    assert_eq!(open_session(&mut pam, &mut g, &o), Code::Ignore);
    assert!(g.calls.is_empty());
    pam.set("service", "sudo");
    let mut g = gate(vec![Ok(refused())]);
    assert_eq!(account(&mut pam, &mut g, &o), Code::PermDenied);
}

#[test]
fn the_services_jitd_routes_commands_to_are_gated_whatever_the_list_says() {
    // sudo runs a privilege's commands under jitd-<privilege>, whose stack is sudo's own: the
    // pam_jit line there says services=sudo, and must gate it all the same.
    let mut pam = FakePam::sudo();
    pam.set("service", "jitd-db-restart");
    let o = opts(&["services=sudo,su"]);
    let mut g = gate(vec![Ok(refused())]);
    assert_eq!(account(&mut pam, &mut g, &o), Code::PermDenied);
    assert_eq!(g.calls.len(), 1);
}
