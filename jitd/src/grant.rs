//! The grant as the daemon knows it: what it gives ([`GrantSpec`]), to whom, until when, and
//! where it is in its life ([`GrantState`]). The store persists it, the enforcer puts it on the
//! system, the gate index answers from it.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::clock::Deadline;
use crate::names::{GrantId, GroupName, SudoCommand};
pub use crate::policy::OnEnd;
pub use crate::terms::{GrantKind, GrantState};

/// How the grant's end reaches past its removal, fixed when it was granted so that a later
/// policy (another group, another `on_end`, the privilege gone) cannot change what is recalled.
/// `None` in grants recorded before jitd kept these; recall then asks the policy in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndTerms {
    /// The gid the group resolved to when granted (group grants).
    pub gid: Option<u32>,
    /// The privilege's `on_end` when granted.
    pub on_end: Option<OnEnd>,
}

/// What a grant gives, typed: enough to render its drop-in again (an extension moves the
/// deadline) without asking the policy, which may have changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSpec {
    /// Exact commands as `run_as_uid`, through a sudoers drop-in.
    Sudo {
        run_as_uid: u32,
        commands: Vec<SudoCommand>,
        password_each_time: bool,
    },
    /// Membership of `group`.
    Group { group: GroupName },
    /// Nothing on the system: pam_jit's gate opens for the privilege's PAM services.
    Gate,
}

/// The stored form of a [`GrantSpec`]: plain strings, re-validated on the way back.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredSpec {
    Sudo {
        run_as_uid: u32,
        commands: Vec<String>,
        password_each_time: bool,
    },
    Group {
        group: String,
    },
    Gate,
}

impl GrantSpec {
    pub fn kind(&self) -> GrantKind {
        match self {
            Self::Sudo { .. } => GrantKind::Sudo,
            Self::Group { .. } => GrantKind::Group,
            Self::Gate => GrantKind::Gate,
        }
    }

    /// The spec as one JSON value, for the `spec` column.
    pub fn to_json(&self) -> String {
        let stored = match self {
            Self::Sudo {
                run_as_uid,
                commands,
                password_each_time,
            } => StoredSpec::Sudo {
                run_as_uid: *run_as_uid,
                commands: commands.iter().map(ToString::to_string).collect(),
                password_each_time: *password_each_time,
            },
            Self::Group { group } => StoredSpec::Group {
                group: group.to_string(),
            },
            Self::Gate => StoredSpec::Gate,
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// Reads back what [`to_json`](Self::to_json) wrote; every name and command is parsed
    /// again, so a tampered row cannot smuggle a wildcard into sudoers.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let stored: StoredSpec = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(match stored {
            StoredSpec::Sudo {
                run_as_uid,
                commands,
                password_each_time,
            } => Self::Sudo {
                run_as_uid,
                commands: commands
                    .iter()
                    .map(|c| SudoCommand::parse(c).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?,
                password_each_time,
            },
            StoredSpec::Group { group } => Self::Group {
                group: GroupName::parse(&group).map_err(|e| e.to_string())?,
            },
            StoredSpec::Gate => Self::Gate,
        })
    }
}

/// A grant as stored. `drop_in` is the exact text put in `/etc/sudoers.d` for a sudo grant
/// ("" otherwise), so removal and tamper checks never depend on the current policy or on how
/// a later version would render it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: GrantId,
    pub uid: u32,
    pub user: String,
    pub privilege: String,
    pub spec: GrantSpec,
    /// Shared with the sudo record's entry of the grant (the longest text a grant has).
    pub drop_in: Arc<str>,
    pub rule: String,
    /// What the grant gives, in words (for listings).
    pub grants: String,
    pub reason: String,
    pub ticket: String,
    pub state: GrantState,
    pub requested_ms: i64,
    pub starts_ms: i64,
    pub expires_ms: i64,
    pub boot_id: Arc<str>,
    pub expires_boot_ms: i64,
    pub ended_ms: i64,
    pub end_reason: String,
    pub end_terms: EndTerms,
}

impl GrantRecord {
    pub fn kind(&self) -> GrantKind {
        self.spec.kind()
    }

    /// When the grant ends: its wall-clock and boot-time deadlines.
    pub fn deadline(&self) -> Deadline {
        Deadline {
            wall_ms: self.expires_ms,
            boot_id: self.boot_id.clone(),
            boot_ms: self.expires_boot_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_survives_the_store_and_a_tampered_one_is_refused() {
        let spec = GrantSpec::Sudo {
            run_as_uid: 0,
            commands: vec![SudoCommand::parse("/usr/bin/systemctl restart nginx").unwrap()],
            password_each_time: true,
        };
        assert_eq!(GrantSpec::from_json(&spec.to_json()), Ok(spec));
        let group = GrantSpec::Group {
            group: GroupName::parse("docker").unwrap(),
        };
        assert_eq!(GrantSpec::from_json(&group.to_json()), Ok(group));
        assert_eq!(
            GrantSpec::from_json(&GrantSpec::Gate.to_json()),
            Ok(GrantSpec::Gate)
        );
        let forged =
            r#"{"sudo":{"run_as_uid":0,"commands":["/bin/sh *"],"password_each_time":false}}"#;
        assert!(GrantSpec::from_json(forged).is_err());
    }
}
