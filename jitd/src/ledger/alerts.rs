//! The alert rules: what, under a grant, an auditor should look at now. Pure: each rule reads
//! one attributed sudo event (or a count of refusals) and says whether it fires and why; the
//! core records each as an `alert.raised` audit record. Each rule is switched on by its name
//! in `alerts` in jitd.toml.

#![forbid(unsafe_code)]

use super::parse::{SudoEvent, SudoKind};

pub const OUT_OF_SCOPE: &str = "out-of-scope";
pub const SENSITIVE_TOUCH: &str = "sensitive-touch";
pub const LOG_TAMPER: &str = "log-tamper";
pub const USE_AFTER_EXPIRY: &str = "use-after-expiry";
pub const BREAKGLASS: &str = "breakglass";
pub const DENIAL_BURST: &str = "denial-burst";
pub const SHELL_ESCAPE: &str = "shell-escape";

/// Every rule, all on by default.
pub const RULES: &[&str] = &[
    OUT_OF_SCOPE,
    SENSITIVE_TOUCH,
    LOG_TAMPER,
    USE_AFTER_EXPIRY,
    BREAKGLASS,
    DENIAL_BURST,
    SHELL_ESCAPE,
];

/// Programs that run whatever they are told: a shell or an interpreter started under a grant
/// for something else is a way out of the grant's commands. Names with a version
/// (`python3.11`) count as their family.
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "ash", "zsh", "ksh", "ksh93", "mksh", "pdksh", "csh", "tcsh", "fish",
    "busybox", "python", "python2", "python3", "perl", "ruby", "irb", "lua", "luajit", "node",
    "nodejs", "php", "tclsh", "wish", "expect", "gawk", "awk", "mawk", "nawk", "rlwrap", "socat",
    "script", "sqlite3", "gdb", "vi", "vim", "nvim", "emacs", "less", "more", "man",
];

/// Whether `prog` (a path or a name) is a shell or an interpreter.
pub fn is_shell(prog: &str) -> bool {
    let base = prog.rsplit('/').next().unwrap_or(prog);
    let family = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    SHELLS.contains(&base) || (family.len() >= 4 && SHELLS.contains(&family))
}

/// Files whose change changes who may do what on the host.
const SENSITIVE: &[&str] = &[
    "/etc/sudoers",
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/pam.d",
    "/etc/security",
    "authorized_keys",
    "/etc/ssh/sshd_config",
    "/etc/cron",
    "/etc/crontab",
    "/var/spool/cron",
    "/etc/systemd",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/etc/ld.so.preload",
];

/// The services that keep the record of what happened.
const LOGGERS: &[&str] = &[
    "systemd-journald",
    "journald",
    "rsyslog",
    "syslog",
    "auditd",
];

/// What the event is, against the grant it was attributed to.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// A grant was live for the user when sudo was asked.
    pub live: bool,
    /// The attempt came after the grant's end (within the window).
    pub after_expiry: bool,
    /// The grant is a break-glass grant (hook for break-glass; always false until it exists).
    pub breakglass: bool,
    /// jitd's own state directory: changing it is tampering with the record.
    pub state_dir: &'a str,
    /// The commands of the grant the event belongs to, when they are not themselves a shell
    /// or an interpreter (`None`: they are, or there is no live grant): a shell under them is
    /// a `shell-escape`.
    pub not_shell: Option<&'a str>,
}

fn mentions(argv: &[String], what: &str) -> bool {
    argv.iter().any(|a| a.contains(what))
}

/// The rules `e` sets off, with what to tell about each.
pub fn check(e: &SudoEvent, cx: &Context<'_>, on: &[String]) -> Vec<(&'static str, String)> {
    let enabled = |rule: &str| on.iter().any(|r| r == rule);
    let cmd = e.argv.join(" ");
    let mut out = Vec::new();
    if !matches!(e.kind, SudoKind::Accept | SudoKind::Reject) {
        return out;
    }
    if enabled(OUT_OF_SCOPE) && e.kind == SudoKind::Reject && cx.live && !cx.after_expiry {
        out.push((OUT_OF_SCOPE, format!("refused ({}): {cmd}", e.reason)));
    }
    if enabled(USE_AFTER_EXPIRY) && cx.after_expiry {
        out.push((
            USE_AFTER_EXPIRY,
            format!("sudo after the grant ended: {cmd}"),
        ));
    }
    if enabled(SENSITIVE_TOUCH)
        && let Some(what) = SENSITIVE.iter().find(|s| mentions(&e.argv, s))
    {
        out.push((SENSITIVE_TOUCH, format!("touches {what}: {cmd}")));
    }
    if enabled(LOG_TAMPER) && tampers(&e.argv, cx.state_dir) {
        out.push((LOG_TAMPER, cmd.clone()));
    }
    if enabled(SHELL_ESCAPE)
        && e.kind == SudoKind::Accept
        && cx.live
        && let Some(granted) = cx.not_shell
        && e.argv.first().is_some_and(|p| is_shell(p))
    {
        out.push((
            SHELL_ESCAPE,
            format!("a shell or interpreter ({cmd}) under a grant of {granted}"),
        ));
    }
    if enabled(BREAKGLASS) && cx.breakglass {
        out.push((BREAKGLASS, cmd));
    }
    out
}

/// Stopping or masking a logger, turning auditing off, or touching jitd's own files.
fn tampers(argv: &[String], state_dir: &str) -> bool {
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let prog = argv.first().map(|p| base(p)).unwrap_or_default();
    let stops = ["stop", "mask", "disable", "kill", "kill-all"];
    let names_logger = || {
        argv.iter()
            .skip(1)
            .any(|a| LOGGERS.iter().any(|l| a.trim_end_matches(".service") == *l))
    };
    let logger_stopped = match prog.as_str() {
        "systemctl" => argv.iter().any(|a| stops.contains(&a.as_str())) && names_logger(),
        "service" => argv.iter().any(|a| a == "stop") && names_logger(),
        "kill" | "pkill" | "killall" => names_logger(),
        _ => false,
    };
    let audit_off = prog == "auditctl" && argv.windows(2).any(|w| w[0] == "-e" && w[1] == "0");
    let own_files = !state_dir.is_empty() && mentions(argv, state_dir);
    logger_stopped || audit_off || own_files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: SudoKind, argv: &[&str]) -> SudoEvent {
        SudoEvent {
            kind,
            uuid: "u".into(),
            submituser: "alice".into(),
            runuser: "root".into(),
            argv: argv.iter().map(|s| (*s).to_string()).collect(),
            cwd: "/".into(),
            tty: String::new(),
            at_ms: 0,
            reason: "command not allowed".into(),
            exit_value: None,
            signal: String::new(),
            run_ms: 0,
            iolog: String::new(),
        }
    }

    fn all() -> Vec<String> {
        RULES.iter().map(|r| (*r).to_string()).collect()
    }

    fn rules(e: &SudoEvent, cx: Context<'_>, on: &[String]) -> Vec<&'static str> {
        check(e, &cx, on).into_iter().map(|(r, _)| r).collect()
    }

    const LIVE: Context<'static> = Context {
        live: true,
        after_expiry: false,
        breakglass: false,
        state_dir: "/var/lib/jitd",
        not_shell: None,
    };

    #[test]
    fn a_shell_under_a_grant_of_something_else_is_an_escape() {
        let on = all();
        let env = Context {
            not_shell: Some("/usr/bin/env sh -c id"),
            ..LIVE
        };
        for shell in [
            "/bin/sh",
            "sh",
            "/usr/bin/python3.11",
            "/usr/bin/perl",
            "bash",
        ] {
            assert_eq!(
                rules(&ev(SudoKind::Accept, &[shell, "-c", "id"]), env, &on),
                [SHELL_ESCAPE],
                "{shell}"
            );
        }
        for not in [
            "/usr/bin/id",
            "/usr/bin/shred",
            "/usr/bin/shasum",
            "/usr/bin/lsblk",
        ] {
            assert!(
                rules(&ev(SudoKind::Accept, &[not]), env, &on).is_empty(),
                "{not}"
            );
        }
        // The grant is a shell: what it runs is its business.
        assert!(rules(&ev(SudoKind::Accept, &["/bin/sh"]), LIVE, &on).is_empty());
        // A refused shell is out of scope, not an escape.
        assert_eq!(
            rules(&ev(SudoKind::Reject, &["/bin/sh"]), env, &on),
            [OUT_OF_SCOPE]
        );
    }

    #[test]
    fn each_rule_fires_on_its_case_only() {
        let on = all();
        assert!(rules(&ev(SudoKind::Accept, &["/usr/bin/id"]), LIVE, &on).is_empty());
        assert_eq!(
            rules(&ev(SudoKind::Reject, &["/usr/bin/id"]), LIVE, &on),
            [OUT_OF_SCOPE]
        );
        assert_eq!(
            rules(
                &ev(SudoKind::Accept, &["/usr/bin/vi", "/etc/sudoers.d/x"]),
                LIVE,
                &on
            ),
            [SENSITIVE_TOUCH]
        );
        for tamper in [
            &["/usr/bin/systemctl", "stop", "rsyslog"][..],
            &["/usr/bin/systemctl", "mask", "systemd-journald.service"],
            &["/sbin/auditctl", "-e", "0"],
            &["/usr/bin/truncate", "-s0", "/var/lib/jitd/ledger/1001.json"],
        ] {
            assert_eq!(
                rules(&ev(SudoKind::Accept, tamper), LIVE, &on),
                [LOG_TAMPER],
                "{tamper:?}"
            );
        }
        assert!(
            rules(
                &ev(
                    SudoKind::Accept,
                    &["/usr/bin/systemctl", "status", "rsyslog"]
                ),
                LIVE,
                &on
            )
            .is_empty()
        );
        let after = Context {
            live: false,
            after_expiry: true,
            ..LIVE
        };
        assert_eq!(
            rules(&ev(SudoKind::Reject, &["/usr/bin/id"]), after, &on),
            [USE_AFTER_EXPIRY]
        );
        let bg = Context {
            breakglass: true,
            ..LIVE
        };
        assert_eq!(
            rules(&ev(SudoKind::Accept, &["/usr/bin/id"]), bg, &on),
            [BREAKGLASS]
        );
        // Switched off.
        let none: Vec<String> = vec![];
        assert!(rules(&ev(SudoKind::Reject, &["/etc/shadow"]), LIVE, &none).is_empty());
        // Exits are never alerts.
        assert!(rules(&ev(SudoKind::Exit, &["/etc/shadow"]), LIVE, &on).is_empty());
    }
}
