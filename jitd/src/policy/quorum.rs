//! Who approves a rule's requests, how many must, and which accounts belong to one person.
//! Whether someone counts is asked at decision time with their groups as they are then, so an
//! approver taken out of the approver group before the quorum completes is not counted.

#![forbid(unsafe_code)]

use crate::names::{GroupName, UserName};

/// A rule's `approval = "quorum"` terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    /// Approvers named one by one.
    pub users: Vec<UserName>,
    /// Approver groups (`%name` in the policy): their members at decision time.
    pub groups: Vec<GroupName>,
    /// Approvals that grant.
    pub approvals: u32,
    /// Denials that end the request.
    pub denials: u32,
    /// How long a request may wait for its quorum.
    pub request_ttl_secs: u64,
    /// When requests are granted without waiting for people.
    pub auto: Option<super::window::AutoApprove>,
}

impl Quorum {
    /// Whether the account `name`, in `groups` now, is an approver.
    pub fn is_approver(&self, name: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u.as_str() == name)
            || self
                .groups
                .iter()
                .any(|g| groups.iter().any(|h| h == g.as_str()))
    }

    /// The approvers as the policy names them: `alice, %dba-leads`.
    pub fn approvers_text(&self) -> String {
        self.users
            .iter()
            .map(ToString::to_string)
            .chain(self.groups.iter().map(|g| format!("%{g}")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// One line for `jitctl explain`.
    pub fn describe(&self) -> String {
        let auto = self.auto.as_ref().map_or(String::new(), |a| {
            format!(
                "; granted at once {}{}",
                a.describe(),
                a.per_user_per_day
                    .map_or(String::new(), |n| format!(", at most {n} a day"))
            )
        });
        format!(
            "approval: {} of {} must approve within {} ({} denial(s) end the request){auto}",
            self.approvals,
            self.approvers_text(),
            crate::duration::format(self.request_ttl_secs),
            self.denials
        )
    }
}

/// A rule's `breakglass = true` terms: granted at once, reviewed afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakglass {
    /// Who reviews (the rule's `approvers`; only `users` and `groups` are used).
    pub reviewers: Quorum,
    /// At most one break-glass grant per user in this long (`breakglass_every`).
    pub every_secs: u64,
    /// An approver must review each grant within this long of it (`review_within`).
    pub review_within_secs: u64,
}

/// The hard ceiling of a break-glass grant: it is for the hour of an emergency.
pub const BREAKGLASS_MAX_SECS: u64 = 3600;

/// Sets of accounts that belong to one person (`same_person = [["alice", "alice-adm"]]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SamePerson(pub Vec<Vec<UserName>>);

impl SamePerson {
    /// Whether accounts `a` and `b` are one person: the same name, or named together.
    pub fn same(&self, a: &str, b: &str) -> bool {
        a == b
            || self.0.iter().any(|set| {
                set.iter().any(|u| u.as_str() == a) && set.iter().any(|u| u.as_str() == b)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers_count_by_name_or_by_group_now_and_one_person_is_one_person() {
        let q = Quorum {
            users: vec![UserName::parse("alice").unwrap()],
            groups: vec![GroupName::parse("dba").unwrap()],
            approvals: 2,
            denials: 1,
            request_ttl_secs: 3600,
            auto: None,
        };
        assert!(q.is_approver("alice", &[]));
        assert!(q.is_approver("bob", &["dba".into()]));
        assert!(!q.is_approver("bob", &["wheel".into()]));
        assert_eq!(q.approvers_text(), "alice, %dba");
        let p = SamePerson(vec![vec![
            UserName::parse("alice").unwrap(),
            UserName::parse("alice-adm").unwrap(),
        ]]);
        assert!(p.same("alice", "alice-adm") && p.same("bob", "bob"));
        assert!(!p.same("alice", "bob"));
    }
}
