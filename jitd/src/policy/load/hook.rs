//! `hook = "/usr/local/libexec/jitd-ticket-check"`: a program `jitd-notify` runs (never root
//! jitd) for each pending request of the rule; its answer is one approver's vote, cast over
//! the bus as the notifier's account. With `approval = "hook"` that account is an approver of
//! the rule by itself; the older form, `approval = "quorum"` with `hook`, counts the vote only
//! when the rule's `approvers` name the account.

use super::diagnostics::Reporter;
use super::rule::RawRule;

/// Whether the rule says `approval = "hook"`.
pub(super) fn hook_mode(raw: &RawRule) -> bool {
    raw.approval.as_ref().is_some_and(|a| a.get_ref() == "hook")
}

pub(super) fn hook(r: &mut Reporter<'_>, raw: &RawRule, quorum: bool) -> Option<String> {
    let Some(h) = raw.hook.as_ref() else {
        if let Some(a) = raw.approval.as_ref().filter(|_| hook_mode(raw)) {
            r.at(
                a.span(),
                "approval = \"hook\" needs hook = \"/path/to/program\" (run by jitd-notify; its \
                 answer is one approver's vote)",
            );
        }
        return None;
    };
    let path = h.get_ref();
    if !quorum {
        r.at(
            h.span(),
            "hook applies only to approval = \"hook\" or \"quorum\" (its answer is one \
             approver's vote)",
        );
        return None;
    }
    if !path.starts_with('/') || path.chars().any(char::is_control) || path.len() > 4096 {
        r.at(h.span(), "hook must be an absolute path");
        return None;
    }
    Some(path.clone())
}
