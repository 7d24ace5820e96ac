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
    // The refusal, then what was wrong with the duration.
    assert_eq!(pam.said(Style::ErrorMsg).len(), 2);
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
    assert!(pam.said(Style::ErrorMsg)[1].contains("at least 10 characters"));
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

fn choice(name: &str, reason_required: bool, ticket: &str) -> PrivilegeInfo {
    PrivilegeInfo {
        name: name.into(),
        description: String::new(),
        kind: jitd::terms::GrantKind::Gate,
        grants: format!("pam_jit opens the sudoers rule for: /usr/sbin/{name}"),
        rule: "on call".into(),
        default_secs: 600,
        max_secs: 3600,
        reason_required,
        reason_min_chars: if reason_required { 5 } else { 0 },
        ticket_pattern: ticket.into(),
        approval: jitd::wire::RuleApproval(None),
        interactive: true,
        held_grant: String::new(),
        held_until_ms: 0,
    }
}

/// UX H3: the prompt shows what may be chosen, Enter takes the first choice and the rule's
/// default duration, the reason prompt says the minimum, a ticket is asked for when the rule
/// has a pattern, and success says until when.
#[test]
fn the_prompt_shows_the_choices_takes_defaults_and_asks_for_the_ticket() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("")));
    pam.reply(Ok(Some("")));
    pam.reply(Ok(Some("failover drill")));
    pam.reply(Ok(Some("INC-42")));
    let mut g = gate(vec![Ok(refused()), Ok(allowed())]);
    g.choices = Some(vec![
        choice("db-restart", true, "INC-[0-9]+"),
        choice("db-vacuum", false, ""),
    ]);
    g.requests.push_back(Ok(outcome("active")));
    assert_eq!(
        account(&mut pam, &mut g, &opts(&["interactive"])),
        Code::Success
    );
    assert_eq!(
        g.calls[2], "request 1000 db-restart 0 failover drill ticket=INC-42",
        "{:?}",
        g.calls
    );
    let prompts = pam.said(Style::PromptEchoOn);
    assert_eq!(
        prompts,
        vec![
            "jitd: which (1-2, or a name; Enter: db-restart): ",
            "jitd: db-restart for how long (Enter: 10m, at most 1h): ",
            "jitd: reason (at least 5 characters): ",
            "jitd: ticket (matching INC-[0-9]+): ",
        ]
    );
    let shown = pam.said(Style::ErrorMsg).join("\n");
    assert!(shown.contains("1) db-restart - pam_jit opens"), "{shown}");
    assert!(shown.contains("2) db-vacuum"), "{shown}");
    assert!(
        shown.ends_with("jitd: grant g0123456789ab is active"),
        "jitd's answer (\"granted P until ...\") is shown: {shown}"
    );
}

#[test]
fn a_choice_by_number_without_reason_or_ticket_asks_nothing_more() {
    let mut pam = FakePam::sudo();
    pam.reply(Ok(Some("2")));
    pam.reply(Ok(Some("20m")));
    pam.reply(Ok(Some("")));
    let mut g = gate(vec![Ok(refused()), Ok(allowed())]);
    g.choices = Some(vec![
        choice("db-restart", true, "INC-[0-9]+"),
        choice("db-vacuum", false, ""),
    ]);
    g.requests.push_back(Ok(outcome("active")));
    assert_eq!(
        account(&mut pam, &mut g, &opts(&["interactive"])),
        Code::Success
    );
    assert_eq!(g.calls[2], "request 1000 db-vacuum 1200 ");
    assert_eq!(pam.said(Style::PromptEchoOn).len(), 3);
}

#[test]
fn nothing_to_choose_or_an_unknown_choice_denies_without_a_request() {
    for (choices, answer) in [
        (vec![], "x"),
        (vec![choice("a", false, ""), choice("b", false, "")], "c"),
    ] {
        let mut pam = FakePam::sudo();
        pam.reply(Ok(Some(answer)));
        let mut g = gate(vec![Ok(refused())]);
        g.choices = Some(choices);
        assert_eq!(
            account(&mut pam, &mut g, &opts(&["interactive"])),
            Code::PermDenied
        );
        assert!(
            g.calls.iter().all(|c| !c.starts_with("request")),
            "{:?}",
            g.calls
        );
    }
}
