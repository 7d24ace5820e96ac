//! Warnings about a policy that loads but likely does not do what its author meant: a rule
//! that is never reached, a command that is as good as a root shell. Each says why.

use crate::names::SudoCommand;
use crate::policy::Rule;

/// Why rule `later` is never used for some of its privileges: an earlier rule covers the same
/// privilege for everyone `later` names, and the first matching rule wins.
pub(super) fn shadowed(rules: &[Rule], later: usize) -> Vec<String> {
    let Some(rule) = rules.get(later) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for privilege in &rule.privileges {
        let earlier = rules[..later].iter().find(|e| {
            e.privileges.contains(privilege)
                && rule.users.iter().all(|u| e.users.contains(u))
                && rule.groups.iter().all(|g| e.groups.contains(g))
        });
        if let Some(e) = earlier {
            out.push(format!(
                "rule \"{}\" is never used for {privilege}: rule \"{}\" comes first and matches \
                 everyone it names (the first matching rule wins); merge them or narrow the first",
                rule.name, e.name
            ));
        }
    }
    out
}

/// Programs that run any command, or write any file, for whoever runs them as root.
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox",
];
const EDITORS: &[&str] = &[
    "vi",
    "vim",
    "nvim",
    "view",
    "vim.basic",
    "vim.tiny",
    "nano",
    "emacs",
    "ed",
    "ex",
    "joe",
    "mcedit",
    "pico",
];
const PAGERS: &[&str] = &["less", "more", "most", "pg", "man"];
const INTERPRETERS: &[&str] = &[
    "python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "lua", "tclsh", "awk",
    "gawk", "mawk", "nawk", "irb", "gdb", "expect",
];
/// Programs that become someone else, with any arguments.
const SWITCHERS: &[&str] = &[
    "su",
    "sudo",
    "sudoedit",
    "doas",
    "runuser",
    "pkexec",
    "machinectl",
];
/// Programs that run the command their arguments name: as risky as that command.
const RUNNERS: &[&str] = &[
    "env", "xargs", "nsenter", "chroot", "script", "strace", "unshare", "setsid", "nohup", "nice",
    "ionice", "timeout", "stdbuf", "watch", "flock", "taskset", "chrt",
];

/// Why `cmd` is as good as a root shell, or `None` when it is not known to be.
pub(super) fn command_risk(cmd: &SudoCommand) -> Option<String> {
    let program = cmd.path().rsplit('/').next().unwrap_or("");
    let base = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let args = cmd.args();
    let path = cmd.path();
    let is = |list: &[&str]| list.contains(&program) || list.contains(&base);
    let why = if is(SHELLS) {
        "is a shell: it runs any command"
    } else if is(EDITORS) {
        "is an editor: it writes any file and runs shell commands (:!sh)"
    } else if is(PAGERS) {
        "is a pager: it runs shell commands (!sh)"
    } else if is(INTERPRETERS)
        && args
            .first()
            .is_none_or(|a| a == "-" || a == "-i" || a == "-e")
    {
        "is an interpreter: without a script it reads any code to run"
    } else if is(SWITCHERS) {
        "switches user: it gives a shell as anyone"
    } else if is(RUNNERS) {
        // `env`, `nice`… with fixed arguments run the fixed command they name.
        let inner = args.iter().position(|a| a.starts_with('/'))?;
        let rest = args[inner..].join(" ");
        return SudoCommand::parse(&rest)
            .ok()
            .and_then(|c| command_risk(&c));
    } else if program == "find"
        && args.iter().any(|a| {
            matches!(
                a.as_str(),
                "-exec" | "-execdir" | "-ok" | "-okdir" | "-fprint" | "-fprintf" | "-fprint0"
            )
        })
    {
        "with -exec or -fprint runs commands or writes files"
    } else if program == "tar"
        && args.iter().any(|a| {
            a.starts_with("--to-command")
                || a.starts_with("--checkpoint-action")
                || a.starts_with("--use-compress-program")
                || a.starts_with("--info-script")
                || a.starts_with("--new-volume-script")
                || a == "-I"
                || a == "-F"
        })
    {
        "with that option runs a command of the caller's choice"
    } else if program == "systemctl" && args.first().is_some_and(|a| a == "edit") {
        "edit opens an editor as root, which runs shell commands"
    } else {
        return None;
    };
    Some(format!(
        "{path} {why}: whoever holds this privilege can run anything as its run_as user \
         (write the exact commands needed instead)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn risk(text: &str) -> Option<String> {
        command_risk(&SudoCommand::parse(text).unwrap())
    }

    #[test]
    fn root_shells_in_disguise_are_named_and_plain_commands_are_not() {
        for bad in [
            "/bin/bash",
            "/usr/bin/vim /etc/hosts",
            "/usr/bin/less /var/log/syslog",
            "/usr/bin/python3",
            "/usr/bin/python3.11 -i",
            "/usr/bin/nice -n 5 /bin/sh",
            "/bin/su -",
            "/usr/bin/find /srv -exec",
            "/usr/bin/tar -cf /dev/null /etc --checkpoint-action=exec=sh",
            "/usr/bin/systemctl edit nginx",
        ] {
            assert!(risk(bad).is_some(), "{bad}");
        }
        for fine in [
            "/usr/bin/systemctl restart nginx",
            "/usr/bin/find /srv -name core",
            "/usr/bin/tar -czf /backup/etc.tgz /etc",
            "/usr/bin/id -un",
            "/usr/sbin/shutdown -r now",
            "/usr/bin/python3 /usr/local/sbin/rotate.py",
            "/usr/bin/nice -n 5 /usr/local/bin/backup",
            "/usr/bin/env",
        ] {
            assert!(risk(fine).is_none(), "{fine}");
        }
    }
}
