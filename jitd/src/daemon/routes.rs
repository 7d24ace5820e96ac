//! Keeps the system's routes (the PAM service sudo runs each privilege's commands under, see
//! [`crate::policy::routes`]) equal to the policy in force: written before a policy takes
//! effect, checked and put back by the integrity check, removed by purge.

#![forbid(unsafe_code)]

use super::Core;
use crate::audit::AuditEvent;
use crate::effects::sudoers::SudoFlavor;
use crate::policy::Policy;

impl Core {
    /// Writes the routes of `policy`. sudo-rs has no per-command `pam_service`, so there the
    /// routes are not written: sudo grants then go through the `sudo` service, which pam_jit
    /// opens only for gate privileges naming it (README: sudo-rs).
    pub(super) fn route(&self, policy: &Policy) -> Result<(), String> {
        if matches!(self.flavor, SudoFlavor::SudoRs { .. }) && !policy.routes().is_empty() {
            return Err(
                "sudo-rs cannot run commands under a PAM service of their own \
                        (Defaults!CMND pam_service): per-privilege routes are not written"
                    .into(),
            );
        }
        match self.enforcer.route(policy.routes()) {
            Ok(()) => {
                let services: Vec<&str> =
                    policy.routes().iter().map(|r| r.service.as_str()).collect();
                self.record(AuditEvent::PolicyRouted {
                    services: services.join(", "),
                });
                Ok(())
            }
            Err(e) => {
                self.record(AuditEvent::PolicyRouteFailed {
                    error: e.to_string(),
                });
                Err(e.to_string())
            }
        }
    }

    /// Writes the routes of the policy in force (start-up).
    pub fn route_policy(&self) {
        // Failure is audited; the gate then refuses what it cannot place (deny on doubt).
        let _ = self.route(&self.policy.clone());
    }

    /// Puts back routes someone altered or removed.
    pub(super) fn check_routes(&self) {
        let damage = self.enforcer.route_damage(self.policy.routes());
        if damage.is_empty() {
            return;
        }
        self.record(AuditEvent::PolicyRouteRepaired {
            damage: damage.join("; "),
        });
        let _ = self.route(&self.policy.clone());
    }

    /// Takes the routes off the system (purge).
    pub(super) fn unroute(&self) {
        if let Err(e) = self.enforcer.unroute() {
            self.record(AuditEvent::PolicyRouteFailed {
                error: e.to_string(),
            });
        }
    }
}
