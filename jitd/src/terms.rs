//! The closed sets every part of jitd speaks: grant states and kinds, request statuses,
//! verdicts, approval modes and the door a request came through. Each is an enum in the
//! domain, the store and the wire; its lower-case name appears only when serialised (a bus
//! string, a database column, an audit field), so a misspelt state cannot compile.
//!
//! Compiled for the policy as well as the client: the policy decides in these terms. Only the
//! client speaks D-Bus, so the bus type derive comes with the `client` feature alone.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// Defines a closed set: the enum, its wire form (a D-Bus string), `as_str`, `parse`, Display.
macro_rules! closed_set {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "client", derive(zbus::Type), zbus(signature = "s"))]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_set! {
    /// Where a grant is in its life.
    GrantState {
        /// Committed intent; the system may or may not have it yet.
        Applying = "applying",
        Active = "active",
        /// Committed intent to remove; the system may still have it.
        Removing = "removing",
        Expired = "expired",
        Revoked = "revoked",
        Dropped = "dropped",
        /// Never took effect (apply failed or was interrupted); nothing of it is on the system.
        Failed = "failed",
    }
}

impl GrantState {
    /// Whether something of the grant may be on the system (it is in the daemon's live set).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Applying | Self::Active | Self::Removing)
    }

    /// Whether the grant is over for good.
    pub fn is_final(self) -> bool {
        !self.is_live()
    }

    /// The moves the grant state machine makes; anything else is a bug or a tampered record.
    /// `applying → failed` and `removing → <final>` are the only ways out of the live states,
    /// and nothing leaves a final state.
    pub fn may_become(self, to: Self) -> bool {
        use GrantState::*;
        match (self, to) {
            (Applying, Active | Removing | Failed) => true,
            (Active, Removing) => true,
            (Removing, Removing) => true,
            (Removing, to) => to.is_final(),
            _ => false,
        }
    }
}

closed_set! {
    /// What a grant puts on the system.
    GrantKind {
        /// A sudoers drop-in with exact commands.
        Sudo = "sudo",
        /// Membership of a Unix group.
        Group = "group",
        /// Nothing on the system: pam_jit's gate opens for the privilege's PAM services.
        Gate = "gate",
    }
}

closed_set! {
    /// What became of a request.
    RequestStatus {
        /// Allowed, and the grant is in force on return.
        Active = "active",
        /// Waiting for a human decision (a `quorum` rule): nothing is granted yet; the
        /// outcome carries the request's id.
        Pending = "pending",
    }
}

closed_set! {
    /// Where a request waiting for approval is in its life. `pending` is the only state
    /// that is left; every other one is final.
    RequestState {
        Pending = "pending",
        /// The quorum was reached and the grant applied (or the extension made).
        Approved = "approved",
        Denied = "denied",
        /// Nobody decided within the rule's `request_ttl`.
        Expired = "expired",
        /// Its owner withdrew it.
        Cancelled = "cancelled",
        /// The policy no longer allows it (a reload removed the rule, the privilege or the
        /// requester's eligibility), or the grant it would extend ended.
        Withdrawn = "withdrawn",
        /// Approved, but the grant could not be applied; nothing was granted.
        Failed = "failed",
    }
}

closed_set! {
    /// An approver's vote on a request.
    Vote {
        Approve = "approve",
        Deny = "deny",
    }
}

closed_set! {
    /// What an approver found a break-glass grant to have been.
    ReviewOutcome {
        /// An exercise.
        Drill = "drill",
        /// A real emergency that needed it.
        Emergency = "emergency",
        /// Not what break-glass is for.
        Misuse = "misuse",
    }
}

closed_set! {
    /// Which requests a listing shows.
    RequestScope {
        /// The caller's own.
        Mine = "mine",
        /// Pending requests the caller may decide.
        Pending = "pending",
        /// Every request (admins).
        All = "all",
    }
}

closed_set! {
    /// What the policy would decide.
    Verdict {
        Allow = "allow",
        Deny = "deny",
    }
}

closed_set! {
    /// How a rule approves requests.
    ApprovalMode {
        /// Granted at once when every condition holds.
        Auto = "auto",
        /// Granted when `approvals` approvers said yes, before `denials` said no and before
        /// the request's TTL ran out.
        Quorum = "quorum",
    }
}

closed_set! {
    /// The door a request came through.
    Via {
        /// `Manager.Request` on the bus (jitctl).
        Bus = "bus",
        /// pam_jit's in-place request at the sudo/su prompt (`Gate.RequestFor`).
        Pam = "pam",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_round_trips_through_its_name() {
        for s in GrantState::ALL {
            assert_eq!(GrantState::parse(s.as_str()), Some(*s));
        }
        for k in GrantKind::ALL {
            assert_eq!(GrantKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(GrantState::parse("Active"), None, "names are exact");
    }

    #[test]
    fn final_states_are_never_left() {
        for from in GrantState::ALL.iter().filter(|s| s.is_final()) {
            for to in GrantState::ALL {
                assert!(!from.may_become(*to), "{from} -> {to}");
            }
        }
        assert!(GrantState::Applying.may_become(GrantState::Active));
        assert!(
            !GrantState::Active.may_become(GrantState::Expired),
            "removing first"
        );
    }
}
