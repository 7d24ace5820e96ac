//! Where pam_jit is in the PAM stacks, and where it must not be. A gate privilege opens the
//! admin's own sudoers rule only through pam_jit: a service it names whose stack does not
//! consult pam_jit lets that rule work with no grant at all. And pam_jit answers "is there a
//! live grant", never "is this the user": as `auth … sufficient` it would let a grant stand in
//! for the password.

use std::path::{Path, PathBuf};

use super::Finding;

const CHECK: &str = "pam";

/// One line of a stack that names pam_jit.
struct Use {
    file: PathBuf,
    line: usize,
    kind: String,
    control: String,
    /// `services=` of the line: the services pam_jit acts for (all when absent).
    services: Option<Vec<String>>,
}

pub fn stacks(gates: &[(String, Vec<String>)]) -> Finding {
    stacks_in(Path::new("/etc/pam.d"), gates)
}

fn stacks_in(dir: &Path, gates: &[(String, Vec<String>)]) -> Finding {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in &files {
        for u in uses(file) {
            if u.kind == "auth" && u.control == "sufficient" {
                return Finding::fail(
                    CHECK,
                    format!(
                        "{}:{}: pam_jit is `auth sufficient`: a live grant would stand in for \
                         the password",
                        u.file.display(),
                        u.line
                    ),
                    format!(
                        "in {}, use `account requisite pam_jit.so` instead",
                        u.file.display()
                    ),
                );
            }
        }
    }
    for (privilege, services) in gates {
        for service in services {
            if !consults(dir, service, service, 0) {
                return Finding::fail(
                    CHECK,
                    format!(
                        "gate privilege {privilege} opens {service}, but {} does not consult \
                         pam_jit for it: the admin's sudoers rule works without any grant",
                        dir.join(service).display()
                    ),
                    format!(
                        "pam-auth-update --enable jit (or add `account requisite pam_jit.so \
                         services={service}` to {})",
                        dir.join(service).display()
                    ),
                );
            }
        }
    }
    if gates.is_empty() {
        Finding::ok(
            CHECK,
            "no gate privilege needs pam_jit, and no stack misuses it",
        )
    } else {
        let names: Vec<&str> = gates.iter().map(|(n, _)| n.as_str()).collect();
        Finding::ok(
            CHECK,
            format!(
                "pam_jit guards every service of the gate privileges ({})",
                names.join(", ")
            ),
        )
    }
}

/// Whether the stack of `file` (for PAM service `service`), with what it includes, has a
/// pam_jit line that acts for `service`.
pub(super) fn consults(dir: &Path, file: &str, service: &str, depth: u32) -> bool {
    if depth > 8 {
        return false;
    }
    let path = dir.join(file);
    // pam_jit gates the services jitd routes commands to (`jitd-*`) whatever `services=` says.
    let routed = service.starts_with("jitd-");
    if uses(&path).iter().any(|u| {
        u.kind != "auth"
            && (routed
                || u.services
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|x| x == service)))
    }) {
        return true;
    }
    includes(&path)
        .iter()
        .any(|inc| consults(dir, inc, service, depth + 1))
}

/// The meaningful words of each line of `file`: comments and continuations dropped.
fn lines(file: &Path) -> Vec<(usize, Vec<String>)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("")))
        .map(|(n, l)| (n, l.split_whitespace().map(str::to_string).collect()))
        .filter(|(_, w): &(usize, Vec<String>)| !w.is_empty())
        .collect()
}

fn uses(file: &Path) -> Vec<Use> {
    let mut out = Vec::new();
    for (line, words) in lines(file) {
        let Some(module) = words.get(2) else {
            continue;
        };
        if !module.ends_with("pam_jit.so") {
            continue;
        }
        let services = words[3..]
            .iter()
            .find_map(|a| a.strip_prefix("services="))
            .map(|s| s.split(',').map(str::to_string).collect());
        out.push(Use {
            file: file.to_path_buf(),
            line,
            kind: words[0].trim_start_matches('-').to_string(),
            control: words[1].clone(),
            services,
        });
    }
    out
}

/// The files `file` pulls in: `@include X`, and `include`/`substack` controls.
fn includes(file: &Path) -> Vec<String> {
    lines(file)
        .into_iter()
        .filter_map(|(_, w)| match w.as_slice() {
            [at, name, ..] if at == "@include" => Some(name.clone()),
            [_, control, name, ..] if control == "include" || control == "substack" => {
                Some(name.clone())
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_followed_through_includes_and_misuse_is_named() {
        let dir = std::env::temp_dir().join(format!("jitctl-pam-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("sudo"),
            "auth required pam_unix.so\n@include common-account\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("common-account"),
            "account requisite pam_jit.so services=sudo,sudo-i # jitd\n",
        )
        .unwrap();
        std::fs::write(dir.join("su"), "@include common-account\n").unwrap();
        let gate = |s: &str| vec![("db".to_string(), vec![s.to_string()])];
        assert_eq!(
            stacks_in(&dir, &gate("sudo")).status,
            super::super::Status::Ok
        );
        let f = stacks_in(&dir, &gate("su"));
        assert_eq!(f.status, super::super::Status::Fail, "{}", f.message);
        std::fs::write(dir.join("login"), "auth sufficient pam_jit.so\n").unwrap();
        let f = stacks_in(&dir, &[]);
        assert!(
            f.message.contains("login:1: pam_jit is `auth sufficient`"),
            "{}",
            f.message
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
