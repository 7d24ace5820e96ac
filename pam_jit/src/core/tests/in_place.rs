//! In-place requests at the sudo/su prompt: what is asked, what is sent, when it denies.

use super::*;

#[test]
fn auth_asks_for_a_grant_in_place_and_lets_sudo_continue() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("nginx-admin")));
    pam.reply(Ok(Some(" 15m ")));
    pam.reply(Ok(Some("restart after config change")));
    let mut g = gate(vec![Ok(refused()), Ok(allowed())]);
    g.requests.push_back(Ok(outcome("active")));
    // Ignore, not Success: the grant lets the stack go on; it authenticates nobody.
    assert_eq!(authenticate(&mut pam, &mut g, &opts(&[])), Code::Ignore);
    assert_eq!(
        g.calls[1],
        "request 1000 nginx-admin 900 restart after config change"
    );
    assert_eq!(
        g.calls.len(),
        3,
        "re-checked after the request: {:?}",
        g.calls
    );
    assert_eq!(pam.said(Style::PromptEchoOn).len(), 3);
}

/// Finding 18: under `auth sufficient pam_jit.so` a live grant must not stand in for the
/// password.
#[test]
fn a_live_grant_never_authenticates_in_the_auth_phase() {
    let mut pam = FakePam::sudo();
    let mut g = gate(vec![Ok(allowed())]);
    assert_eq!(authenticate(&mut pam, &mut g, &opts(&[])), Code::Ignore);
    let mut g = gate(vec![Ok(allowed())]);
    assert_eq!(account(&mut pam, &mut g, &opts(&[])), Code::Success);
}

/// Finding 8: at a login prompt (root-run service, subject from PAM_USER) nobody is known yet:
/// no request is made in the typed name and nothing is said about what could be requested.
#[test]
fn a_subject_named_only_by_pam_user_gets_no_in_place_request_and_no_hint() {
    let mut pam = FakePam::sudo();
    pam.items.remove("ruser");
    pam.set("service", "sshd");
    pam.set("user", "alice");
    pam.reply(Ok(Some("nginx-admin")));
    pam.reply(Ok(Some("15m")));
    pam.reply(Ok(Some("attacker's reason")));
    for phase in [authenticate, account] {
        let mut g = gate(vec![Ok(refused())]);
        g.requests.push_back(Ok(outcome("active")));
        let o = opts(&["interactive", "privilege=nginx-admin"]);
        assert_ne!(phase(&mut pam, &mut g, &o), Code::Success);
        assert_eq!(g.calls.len(), 1, "only the check: {:?}", g.calls);
    }
    assert!(pam.said(Style::PromptEchoOn).is_empty(), "no prompt");
    assert!(
        pam.said(Style::ErrorMsg)
            .iter()
            .all(|m| !m.contains("jitctl elevate")),
        "the policy is not revealed: {:?}",
        pam.said(Style::ErrorMsg)
    );
}

#[test]
fn the_privilege_argument_skips_its_prompt() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("5m")));
    pam.reply(Ok(Some("deploy")));
    let mut g = gate(vec![Ok(refused()), Ok(allowed())]);
    g.requests.push_back(Ok(outcome("active")));
    let o = opts(&["privilege=web-deploy"]);
    assert_eq!(authenticate(&mut pam, &mut g, &o), Code::Ignore);
    assert_eq!(g.calls[1], "request 1000 web-deploy 300 deploy");
    assert_eq!(pam.said(Style::PromptEchoOn).len(), 2);
}

#[test]
fn account_asks_in_place_only_with_the_interactive_argument() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("nginx-admin")));
    pam.reply(Ok(Some("1m")));
    pam.reply(Ok(Some("fix")));
    let mut g = gate(vec![Ok(refused()), Ok(allowed())]);
    g.requests.push_back(Ok(outcome("active")));
    assert_eq!(
        account(&mut pam, &mut g, &opts(&["interactive"])),
        Code::Success
    );
}

#[test]
fn a_declined_or_failed_conversation_makes_no_request() {
    for reply in [Ok(None), Ok(Some("   ")), Err("PAM_CONV_ERR")] {
        let mut pam = FakePam::sudo();
        pam.reply(reply);
        let mut g = gate(vec![Ok(refused())]);
        assert_eq!(authenticate(&mut pam, &mut g, &opts(&[])), Code::AuthErr);
        assert_eq!(
            g.calls.len(),
            1,
            "no request after {reply:?}: {:?}",
            g.calls
        );
    }
}

#[test]
fn a_bad_duration_is_explained_and_makes_no_request() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("nginx-admin")));
    pam.reply(Ok(Some("forever")));
    let mut g = gate(vec![Ok(refused())]);
    assert_eq!(authenticate(&mut pam, &mut g, &opts(&[])), Code::AuthErr);
    assert_eq!(g.calls.len(), 1);
    assert_eq!(pam.said(Style::ErrorMsg).len(), 1);
}

/// UX H3: Enter at the duration prompt takes the rule's default instead of denying.
#[test]
fn enter_at_the_duration_prompt_takes_the_rules_default() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("")));
    pam.reply(Ok(Some("restart after config change")));
    let mut g = gate(vec![Ok(refused()), Ok(allowed())]);
    g.requests.push_back(Ok(outcome("active")));
    let o = opts(&["privilege=nginx-admin"]);
    assert_eq!(account_interactive(&mut pam, &mut g, &o), Code::Success);
    assert_eq!(
        g.calls[1], "request 1000 nginx-admin 0 restart after config change",
        "0: jitd applies the rule's default"
    );
    assert!(
        pam.said(Style::PromptEchoOn)[0].contains("Enter: the rule's default"),
        "{:?}",
        pam.said(Style::PromptEchoOn)
    );
}

fn account_interactive(pam: &mut FakePam, g: &mut FakeGate, o: &Options) -> Code {
    let mut o = o.clone();
    o.interactive = true;
    account(pam, g, &o)
}

#[test]
fn a_refused_request_shows_jitds_reason_and_denies() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("nginx-admin")));
    pam.reply(Ok(Some("15m")));
    pam.reply(Ok(Some("x")));
    let mut g = gate(vec![Ok(refused())]);
    g.requests.push_back(Err(GateError::Refused {
        name: "org.jitd.Jitd1.Error.PolicyDenied".into(),
        message: "the reason must be at least 10 characters".into(),
    }));
    assert_eq!(authenticate(&mut pam, &mut g, &opts(&[])), Code::AuthErr);
    assert!(pam.said(Style::ErrorMsg)[0].contains("at least 10 characters"));
}

#[test]
fn a_request_that_is_not_active_yet_denies() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("nginx-admin")));
    pam.reply(Ok(Some("15m")));
    pam.reply(Ok(Some("restart it")));
    let mut g = gate(vec![Ok(refused())]);
    g.requests.push_back(Ok(outcome("pending")));
    assert_eq!(authenticate(&mut pam, &mut g, &opts(&[])), Code::AuthErr);
}

#[test]
fn a_grant_that_does_not_cover_this_service_does_not_let_the_user_in() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("docker")));
    pam.reply(Ok(Some("15m")));
    pam.reply(Ok(Some("restart it")));
    let mut g = gate(vec![Ok(refused()), Ok(refused())]);
    g.requests.push_back(Ok(outcome("active")));
    assert_eq!(authenticate(&mut pam, &mut g, &opts(&[])), Code::AuthErr);
}

#[test]
fn jitd_vanishing_during_the_request_fails_closed() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("nginx-admin")));
    pam.reply(Ok(Some("15m")));
    pam.reply(Ok(Some("restart it")));
    let mut g = gate(vec![Ok(refused())]);
    assert_eq!(authenticate(&mut pam, &mut g, &opts(&[])), Code::AuthErr);
}
