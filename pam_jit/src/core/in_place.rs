//! The in-place request at the sudo/su prompt: after a refusal, show what the user may ask for
//! here, ask only what the rule wants (duration with its default and maximum, a reason when
//! required, a ticket when the rule has a pattern), submit it, and let this very command go on
//! once the new grant opens the door. Any doubt (no answer, empty answer, refusal) denies.

use jitd::duration;
use jitd::terms::RequestStatus;
use jitd::wire::PrivilegeInfo;

use super::{Code, Context, GateClient, GateError, Level, Pam, Style, Subject, tell, unreachable};
use crate::args::Options;

/// What the user chose and typed.
struct Answers {
    privilege: String,
    secs: u64,
    reason: String,
    ticket: String,
}

pub(super) fn request(
    pam: &mut dyn Pam,
    gate: &mut dyn GateClient,
    o: &Options,
    who: &Subject,
    cx: &Context,
    refusal: &str,
    deny: Code,
) -> Code {
    let denied = |pam: &dyn Pam, why: &str| {
        pam.log(
            Level::Notice,
            &format!(
                "uid {}: denied for {}: no live grant; in-place request: {why}",
                who.uid, cx.service
            ),
        );
        deny
    };
    // Error messages, not information: sudo sets PAM_SILENT on the account check, which would
    // drop what the user needs to answer the prompts.
    tell(pam, o, Style::ErrorMsg, refusal);
    let choices = match gate.choices(who.uid, &cx.service) {
        Ok(c) => c,
        Err(GateError::Unreachable(why)) => return unreachable(pam, o, who.uid, &why, deny),
        Err(GateError::Refused { message, .. }) => {
            tell(pam, o, Style::ErrorMsg, &format!("jitd: {message}"));
            return denied(pam, &message);
        }
    };
    let answers = match &choices {
        Some(list) => ask_with_choices(pam, o, list),
        None => ask_blind(pam, o),
    };
    let answers = match answers {
        Ok(a) => a,
        Err(why) => return denied(pam, &why),
    };
    let outcome = gate.request(
        who.uid,
        &answers.privilege,
        answers.secs,
        &answers.reason,
        &answers.ticket,
    );
    match outcome {
        Ok(outcome) if outcome.status == RequestStatus::Active => {
            // The message says until when: "granted P until <UTC> (15m)".
            tell(
                pam,
                o,
                Style::ErrorMsg,
                &format!("jitd: {}", outcome.message),
            );
        }
        Ok(outcome) => {
            tell(
                pam,
                o,
                Style::ErrorMsg,
                &format!("jitd: {}", outcome.message),
            );
            return denied(pam, &format!("request is {}", outcome.status));
        }
        Err(GateError::Refused { message, .. }) => {
            tell(pam, o, Style::ErrorMsg, &format!("jitd: {message}"));
            return denied(pam, &message);
        }
        Err(GateError::Unreachable(why)) => return unreachable(pam, o, who.uid, &why, deny),
    }
    // The grant is live; it must also cover this service, or the user is let through on a
    // privilege that does not open this door.
    match gate.check(who.uid, &cx.service, &cx.tty, &cx.rhost) {
        Ok(d) if d.allowed => {
            pam.log(
                Level::Info,
                &format!(
                    "uid {}: allowed for {} by grant {} requested in place",
                    who.uid, cx.service, d.grant_id
                ),
            );
            Code::Success
        }
        Ok(d) => {
            tell(pam, o, Style::ErrorMsg, &d.message);
            denied(
                pam,
                &format!("{} does not cover {}", answers.privilege, cx.service),
            )
        }
        Err(GateError::Unreachable(why)) => unreachable(pam, o, who.uid, &why, deny),
        Err(GateError::Refused { message, .. }) => denied(pam, &message),
    }
}

/// One prompt; `Ok(None)` for an empty answer (Enter).
fn prompt(pam: &dyn Pam, text: &str) -> Result<Option<String>, String> {
    match pam.converse(Style::PromptEchoOn, text) {
        Ok(Some(answer)) if !answer.trim().is_empty() => Ok(Some(answer.trim().to_string())),
        Ok(_) => Ok(None),
        Err(e) => Err(format!("conversation failed: {e}")),
    }
}

/// A prompt that needs an answer.
fn required(pam: &dyn Pam, text: &str) -> Result<String, String> {
    prompt(pam, text)?.ok_or_else(|| "no answer".to_string())
}

/// The duration prompt: Enter takes the rule's default (0 asks jitd for it).
fn ask_duration(pam: &dyn Pam, o: &Options, text: &str) -> Result<u64, String> {
    match prompt(pam, text)? {
        None => Ok(0),
        Some(typed) => duration::parse(&typed).map_err(|e| {
            tell(pam, o, Style::ErrorMsg, &format!("jitd: {e}"));
            "bad duration".to_string()
        }),
    }
}

/// The prompts when jitd said what may be asked for here.
fn ask_with_choices(
    pam: &dyn Pam,
    o: &Options,
    choices: &[PrivilegeInfo],
) -> Result<Answers, String> {
    let chosen = match &o.privilege {
        // The PAM line names the privilege: its terms when jitd listed it here; otherwise ask
        // plainly and let jitd say why it refuses (a rule without `interactive`, ...).
        Some(p) => match choices.iter().find(|c| c.name == p.as_str()) {
            Some(c) => c,
            None => return ask_blind(pam, o),
        },
        None => pick(pam, o, choices)?,
    };
    let secs = ask_duration(
        pam,
        o,
        &format!(
            "jitd: {} for how long (Enter: {}, at most {}): ",
            chosen.name,
            duration::format(chosen.default_secs.min(chosen.max_secs)),
            duration::format(chosen.max_secs)
        ),
    )?;
    let reason = if chosen.reason_required {
        required(
            pam,
            &format!(
                "jitd: reason (at least {} characters): ",
                chosen.reason_min_chars
            ),
        )?
    } else {
        prompt(pam, "jitd: reason (optional): ")?.unwrap_or_default()
    };
    let ticket = if chosen.ticket_pattern.is_empty() {
        String::new()
    } else {
        required(
            pam,
            &format!("jitd: ticket (matching {}): ", chosen.ticket_pattern),
        )?
    };
    Ok(Answers {
        privilege: chosen.name.clone(),
        secs,
        reason,
        ticket,
    })
}

/// Shows the choices and takes one by number or name; Enter takes the first.
fn pick<'a>(
    pam: &dyn Pam,
    o: &Options,
    choices: &'a [PrivilegeInfo],
) -> Result<&'a PrivilegeInfo, String> {
    let Some(first) = choices.first() else {
        tell(
            pam,
            o,
            Style::ErrorMsg,
            "jitd: no privilege you may request at this prompt covers this",
        );
        return Err("nothing to choose".into());
    };
    if choices.len() == 1 {
        tell(
            pam,
            o,
            Style::ErrorMsg,
            &format!("jitd: you may request {}: {}", first.name, first.grants),
        );
        return Ok(first);
    }
    let mut list = String::from("jitd: you may request:");
    for (i, c) in choices.iter().enumerate() {
        list.push_str(&format!(
            "\n  {}) {} - {} (up to {})",
            i + 1,
            c.name,
            c.grants,
            duration::format(c.max_secs)
        ));
    }
    tell(pam, o, Style::ErrorMsg, &list);
    let typed = prompt(
        pam,
        &format!(
            "jitd: which (1-{}, or a name; Enter: {}): ",
            choices.len(),
            first.name
        ),
    )?;
    let Some(typed) = typed else {
        return Ok(first);
    };
    let by_number = typed
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| choices.get(i));
    by_number
        .or_else(|| choices.iter().find(|c| c.name == typed))
        .ok_or_else(|| {
            tell(
                pam,
                o,
                Style::ErrorMsg,
                &format!("jitd: {typed:?} is not one of the choices"),
            );
            "unknown choice".to_string()
        })
}

/// The prompts when jitd could not say what may be asked for (an older jitd).
fn ask_blind(pam: &dyn Pam, o: &Options) -> Result<Answers, String> {
    let privilege = match &o.privilege {
        Some(p) => p.as_str().to_string(),
        None => required(pam, "jitd: privilege to request: ")?,
    };
    let secs = ask_duration(
        pam,
        o,
        &format!("jitd: {privilege} for how long (Enter: the rule's default): "),
    )?;
    let reason = required(pam, "jitd: reason: ")?;
    Ok(Answers {
        privilege,
        secs,
        reason,
        ticket: String::new(),
    })
}
