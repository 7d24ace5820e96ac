//! `hook = "/usr/local/libexec/jitd-ticket-check"`: a program `jitd-notify` runs (never root
//! jitd) for each pending request of the rule; its answer is one approver's vote, cast over
//! the bus as the notifier's account, so the rule's `approvers` must name that account.

use super::diagnostics::Reporter;
use super::rule::RawRule;

pub(super) fn hook(r: &mut Reporter<'_>, raw: &RawRule, quorum: bool) -> Option<String> {
    let h = raw.hook.as_ref()?;
    let path = h.get_ref();
    if !quorum {
        r.at(
            h.span(),
            "hook applies only to approval = \"quorum\" (its answer is one approver's vote)",
        );
        return None;
    }
    if !path.starts_with('/') || path.chars().any(char::is_control) || path.len() > 4096 {
        r.at(h.span(), "hook must be an absolute path");
        return None;
    }
    Some(path.clone())
}
