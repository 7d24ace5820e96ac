//! Which PAM service sudo runs each privilege's commands under, so pam_jit can tell which
//! privilege is in use.
//!
//! sudo asks PAM only for a service name, never for the command. jitd therefore routes the
//! commands a privilege names to a service of that privilege's own (sudoers `Defaults!CMNDS
//! pam_service=jitd-NAME`, written by [`crate::effects::routes`]), and a grant opens only the
//! services of its privilege. Commands that several `kind = "sudo"` privileges share go to one
//! service that any of them opens (each grant's drop-in still says what it may run); a command
//! of a `kind = "gate"` privilege belongs to that privilege alone (the loader refuses a policy
//! where it does not), because there the static sudoers rule is all that limits what runs.
//!
//! Pure: computed from a loaded policy; the effects layer writes it to the system.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use crate::names::{PrivilegeName, SudoCommand};

/// Prefix of every PAM service jitd routes commands to. pam_jit gates these services whatever
/// its `services=` argument says: they exist only to be gated.
pub const SERVICE_PREFIX: &str = "jitd-";

/// One routed command set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The PAM service sudo runs these commands under: `jitd-<privilege>`, or
    /// `jitd-shared-<8 hex>` for commands several sudo privileges share.
    pub service: String,
    /// The sudoers `Cmnd_Alias` name for the commands (upper case, unique in the file).
    pub alias: String,
    pub commands: Vec<SudoCommand>,
    /// The privileges whose grants open this service, sorted.
    pub privileges: Vec<PrivilegeName>,
}

/// Groups every command named by a privilege by the set of privileges naming it; one route per
/// set. `owners` lists each privilege with its commands.
pub fn compute<'a>(
    owners: impl IntoIterator<Item = (&'a PrivilegeName, &'a [SudoCommand])>,
) -> Vec<Route> {
    // Keyed by the command's sudoers text: two spellings of one command are one command.
    let mut by_command: BTreeMap<String, (SudoCommand, Vec<PrivilegeName>)> = BTreeMap::new();
    for (name, commands) in owners {
        for c in commands {
            let entry = by_command
                .entry(c.to_sudoers())
                .or_insert_with(|| (c.clone(), Vec::new()));
            if !entry.1.contains(name) {
                entry.1.push(name.clone());
            }
        }
    }
    let mut by_set: BTreeMap<Vec<PrivilegeName>, Vec<SudoCommand>> = BTreeMap::new();
    for (_, (command, mut names)) in by_command {
        names.sort();
        by_set.entry(names).or_default().push(command);
    }
    let mut routes: Vec<Route> = Vec::new();
    for (i, (privileges, commands)) in by_set.into_iter().enumerate() {
        let mut service = service_for(&privileges);
        // Two sets hashing alike (or a privilege named like a shared set) must still get two
        // services.
        let base = service.clone();
        let mut n = i + 1;
        while routes.iter().any(|r| r.service == service) {
            service = format!("{base}-{n}");
            n += 1;
        }
        routes.push(Route {
            service,
            alias: format!("JITD_ROUTE_{}", i + 1),
            commands,
            privileges,
        });
    }
    routes
}

/// The service of a set of privileges. Named by content, not position, so the service of a
/// privilege stays the same when other privileges come and go.
fn service_for(privileges: &[PrivilegeName]) -> String {
    match privileges {
        [one] => format!("{SERVICE_PREFIX}{one}"),
        many => {
            let joined: Vec<&str> = many.iter().map(PrivilegeName::as_str).collect();
            format!(
                "{SERVICE_PREFIX}shared-{:08x}",
                fnv1a(&joined.join(" ")) as u32
            )
        }
    }
}

/// FNV-1a: a stable, dependency-free hash for a name; not a security boundary (a collision
/// gets a suffix in [`compute`]).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The services a grant of `privilege` opens among `routes`.
pub fn services_of(routes: &[Route], privilege: &PrivilegeName) -> Vec<String> {
    routes
        .iter()
        .filter(|r| r.privileges.contains(privilege))
        .map(|r| r.service.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PrivilegeName {
        PrivilegeName::parse(s).unwrap()
    }
    fn c(s: &str) -> SudoCommand {
        SudoCommand::parse(s).unwrap()
    }

    #[test]
    fn each_privilege_gets_its_own_service_and_shared_commands_one_of_their_own() {
        let (a, b) = (p("nginx-restart"), p("nginx-ops"));
        let a_cmds = [c("/usr/bin/systemctl restart nginx")];
        let b_cmds = [
            c("/usr/bin/systemctl restart nginx"),
            c("/usr/bin/journalctl -u nginx"),
        ];
        let routes = compute([(&a, &a_cmds[..]), (&b, &b_cmds[..])]);
        assert_eq!(routes.len(), 2);
        let ops = routes
            .iter()
            .find(|r| r.service == "jitd-nginx-ops")
            .unwrap();
        assert_eq!(ops.commands, vec![c("/usr/bin/journalctl -u nginx")]);
        let shared = routes
            .iter()
            .find(|r| r.service.starts_with("jitd-shared-"))
            .unwrap();
        assert_eq!(shared.commands, a_cmds.to_vec());
        assert_eq!(shared.privileges, vec![b.clone(), a.clone()]);
        assert_eq!(services_of(&routes, &a), vec![shared.service.clone()]);
        assert_eq!(services_of(&routes, &b).len(), 2);
        // Aliases are unique; services of a privilege do not depend on the others' order.
        assert_ne!(routes[0].alias, routes[1].alias);
        let again = compute([(&b, &b_cmds[..]), (&a, &a_cmds[..])]);
        assert_eq!(again, routes);
    }

    #[test]
    fn a_privilege_without_commands_has_no_route() {
        let routes = compute([(&p("x"), &[][..])]);
        assert!(routes.is_empty());
        assert!(services_of(&routes, &p("x")).is_empty());
    }
}
