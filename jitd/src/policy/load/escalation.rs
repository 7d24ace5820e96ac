//! `escalate_after` and `escalate_to`, checked where they are written.

use toml::Spanned;

use super::diagnostics::Reporter;
use super::rule::RawRule;
use crate::names::{GroupName, UserName};
use crate::policy::escalation::{Escalation, MAX_TIERS};

/// The rule's escalation, if it has one; `quorum` says whether the rule waits for approvers.
pub(super) fn escalation(r: &mut Reporter<'_>, raw: &RawRule, quorum: bool) -> Option<Escalation> {
    let (after, to) = match (&raw.escalate_after, &raw.escalate_to) {
        (None, None) => return None,
        (Some(a), None) => {
            r.at(
                a.span(),
                "escalate_after needs escalate_to = [\"%group\", ...]",
            );
            return None;
        }
        (None, Some(t)) => {
            r.at(t.span(), "escalate_to needs escalate_after = \"15m\"");
            return None;
        }
        (Some(a), Some(t)) => (a, t),
    };
    if !quorum {
        r.at(
            after.span(),
            "escalate_after applies only to approval = \"quorum\" (nothing waits on this rule)",
        );
        return None;
    }
    let after_secs = match crate::duration::parse(after.get_ref()) {
        Ok(s) if s >= 60 => s,
        Ok(_) => {
            r.at(after.span(), "escalate_after: at least 1m");
            return None;
        }
        Err(e) => {
            r.at(after.span(), format!("escalate_after: {e}"));
            return None;
        }
    };
    let list: &Vec<Spanned<String>> = to.get_ref();
    if list.is_empty() || list.len() > MAX_TIERS {
        r.at(
            to.span(),
            format!("escalate_to names 1 to {MAX_TIERS} tiers (a user or %group each)"),
        );
        return None;
    }
    let mut tiers = Vec::new();
    for t in list {
        let text = t.get_ref().as_str();
        let ok = match text.strip_prefix('%') {
            Some(g) => GroupName::parse(g).map(|_| ()).map_err(|e| e.to_string()),
            None => UserName::parse(text).map(|_| ()).map_err(|e| e.to_string()),
        };
        match ok {
            Ok(()) => tiers.push(text.to_string()),
            Err(e) => r.at(t.span(), format!("escalate_to: {e}")),
        }
    }
    (tiers.len() == list.len()).then_some(Escalation { after_secs, tiers })
}
