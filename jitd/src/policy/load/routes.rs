//! The gate must be able to tell privileges apart: a command of a `kind = "gate"` privilege
//! belongs to it alone, and so does each PAM service a gate privilege names. Otherwise a grant
//! of one privilege would open the door of another (a cheap grant opening a guarded static
//! rule), and a session would be recorded under the wrong grant.

use std::collections::BTreeMap;
use std::path::Path;

use super::diagnostics::Reporter;
use super::privilege::{Claim, RawPrivilege};
use crate::policy::{Policy, PrivilegeKind, routes};

/// The first privilege seen claiming a command or service, and whether it is a gate.
struct Owner {
    privilege: String,
    gate: bool,
    file: String,
    line: usize,
}

/// Records claims file by file and reports every conflict where it is written.
#[derive(Default)]
pub(super) struct Claims {
    commands: BTreeMap<String, Owner>,
    services: BTreeMap<String, Owner>,
}

impl Claims {
    pub(super) fn add(&mut self, r: &mut Reporter<'_>, privilege: &str, raw: &RawPrivilege) {
        let gate = raw.is_gate();
        for (span, claim) in raw.claims() {
            let (line, _) = crate::position::line_col(r.text, span.start);
            let (table, key, what) = match &claim {
                Claim::Command(c) => (&mut self.commands, c, "command"),
                // Only gate privileges name services; two of them on one service could not be
                // told apart.
                Claim::Service(s) if gate => (&mut self.services, s, "PAM service"),
                Claim::Service(_) => continue,
            };
            match table.get(key) {
                Some(first) if first.privilege != privilege && (gate || first.gate) => {
                    let shown = key.strip_suffix(" \"\"").unwrap_or(key);
                    r.at(
                        span,
                        format!(
                            "{what} {shown} is already named by privilege {} ({}:{}): pam_jit \
                             could not tell a grant of {privilege} from one of {}; {}",
                            first.privilege,
                            first.file,
                            first.line,
                            first.privilege,
                            if what == "command" {
                                "give each command of a gate privilege to that privilege alone"
                            } else {
                                "give each gate privilege its own service, or list its \
                                 commands with commands = [...] instead"
                            }
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    table.insert(
                        key.clone(),
                        Owner {
                            privilege: privilege.to_string(),
                            gate,
                            file: display(r.file),
                            line,
                        },
                    );
                }
            }
        }
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// Computes the routes of a loaded policy and gives each privilege the services it opens.
pub(super) fn route(policy: &mut Policy) {
    let owners: Vec<_> = policy
        .privileges
        .iter()
        .filter_map(|p| match &p.kind {
            PrivilegeKind::Sudo { commands, .. } | PrivilegeKind::Gate { commands } => {
                Some((p.name.clone(), commands.clone()))
            }
            PrivilegeKind::Group { .. } => None,
        })
        .collect();
    let routes = routes::compute(owners.iter().map(|(n, c)| (n, c.as_slice())));
    for p in &mut policy.privileges {
        let mut services = routes::services_of(&routes, &p.name);
        services.append(&mut p.pam_services);
        p.pam_services = services;
    }
    policy.routes = routes;
}
