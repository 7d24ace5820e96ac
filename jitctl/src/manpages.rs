//! Manual pages built from the CLI's own definition: jitctl(1) and one page per subcommand
//! (jitctl-elevate(1), jitctl-policy-check(1), ...), each with its options, EXAMPLES, EXIT
//! STATUS and SEE ALSO. A subcommand added later gets its page without a line here; its
//! examples are one entry of [`EXAMPLES`].

use std::io::Write;
use std::path::Path;

/// Examples by page name: (what it does, the command).
const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
    (
        "jitctl",
        &[
            ("What may I ask for here?", "jitctl privileges"),
            (
                "Ask for a privilege for 15 minutes",
                "jitctl elevate nginx-admin --for 15m --reason \"restart after config change\"",
            ),
            ("Check the host's setup (as root)", "sudo jitctl doctor"),
        ],
    ),
    (
        "jitctl-elevate",
        &[
            (
                "Ask for nginx-admin for the rule's default time, with a reason",
                "jitctl elevate nginx-admin --reason \"restart after config change\"",
            ),
            (
                "Ask for 1h30m, with the ticket the rule wants",
                "jitctl elevate db-maint --for 1h30m --reason \"vacuum the big table\" --ticket INC-4711",
            ),
            (
                "The grant's id in a script",
                "jitctl --json elevate web --for 5m --reason \"deploy\" | jq -r .grant.id",
            ),
        ],
    ),
    (
        "jitctl-status",
        &[("Your live grants and the time left", "jitctl status")],
    ),
    (
        "jitctl-list",
        &[
            ("Your grants, ended ones too", "jitctl list --ended"),
            ("Everyone's live grants (admins)", "jitctl list --all"),
        ],
    ),
    (
        "jitctl-revoke",
        &[(
            "End someone's grant now, and the processes still holding it (admins)",
            "jitctl revoke g3f9a0c12d4e5 --reason \"incident over\" --terminate",
        )],
    ),
    (
        "jitctl-drop",
        &[(
            "Give back your grant early",
            "jitctl drop g3f9a0c12d4e5 --reason \"done\"",
        )],
    ),
    (
        "jitctl-privileges",
        &[
            ("What you may ask for, on what terms", "jitctl privileges"),
            (
                "Just the names",
                "jitctl --json privileges | jq -r '.privileges[].name'",
            ),
        ],
    ),
    (
        "jitctl-explain",
        &[
            (
                "Why you may or may not ask for db-maint",
                "jitctl explain db-maint",
            ),
            (
                "In a script: exit 0 when you may",
                "jitctl explain db-maint >/dev/null && echo allowed",
            ),
        ],
    ),
    (
        "jitctl-reload",
        &[(
            "Check, then load the edited policy (as root)",
            "jitctl policy check && jitctl reload",
        )],
    ),
    (
        "jitctl-suggest",
        &[
            (
                "Suggestions from this host's last 90 days (as root)",
                "jitctl suggest",
            ),
            (
                "From a fleet's exports, as policy text to review",
                "jitctl suggest --hosts exports/*.jsonl --policy policy.d/ --format toml",
            ),
            (
                "Apply one, then load it (as root)",
                "jitctl suggest --apply s-352471acff --to /etc/jitd/policy.toml && jitctl reload",
            ),
        ],
    ),
    (
        "jitctl-report",
        &[
            (
                "The quarter's access report (as root)",
                "jitctl report --period 2026Q4",
            ),
            (
                "One HTML page for the auditor, over a fleet's exports",
                "jitctl report --period 2026Q4 --format html --hosts exports/*.jsonl > q4.html",
            ),
        ],
    ),
    (
        "jitctl-doctor",
        &[
            ("Check this host (as root)", "jitctl doctor"),
            (
                "Only what fails, in a script",
                "jitctl --json doctor | jq '.checks[] | select(.status == \"fail\")'",
            ),
        ],
    ),
    (
        "jitctl-policy-check",
        &[
            ("Check the installed policy", "jitctl policy check"),
            (
                "Check a draft in CI, warnings counting as errors",
                "jitctl policy check --strict policy.d/",
            ),
        ],
    ),
    (
        "jitctl-audit-verify",
        &[(
            "Check the audit trail's hash chain (admins)",
            "jitctl audit verify",
        )],
    ),
];

const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "success (explain: you may request it; drop/revoke of a grant that had ended: nothing to do)",
    ),
    (
        "1",
        "other failure (explain: you may not request it; doctor: a check failed)",
    ),
    ("2", "usage error (bad flag, bad duration)"),
    ("3", "the policy refuses the request"),
    ("4", "not allowed for this caller"),
    ("5", "jitd is not reachable on the bus"),
    ("6", "invalid argument"),
    ("7", "no such grant or privilege"),
    (
        "8",
        "jitd cannot grant right now (state not writable, database locked)",
    ),
    ("9", "audit verify found a broken link in the audit trail"),
    (
        "10",
        "the policy has errors (policy check; reload: jitd kept its policy)",
    ),
];

/// Writes jitctl.1 and a page per visible subcommand into `dir`.
pub fn write_all(cli: clap::Command, dir: &Path) -> std::io::Result<Vec<String>> {
    let mut cli = cli.disable_help_subcommand(true);
    cli.build();
    let mut written = Vec::new();
    write_page(&cli, dir, &mut written)?;
    Ok(written)
}

fn write_page(cmd: &clap::Command, dir: &Path, written: &mut Vec<String>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page(sub, dir, written)?;
    }
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let file = format!("{name}.1");
    let mut out = std::fs::File::create(dir.join(&file))?;
    render(cmd, &name, &mut out)?;
    written.push(file);
    Ok(())
}

/// One page: clap's sections, then ours (EXIT STATUS instead of clap's "EXTRA").
pub fn render(cmd: &clap::Command, name: &str, w: &mut dyn Write) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    let mut roff = String::new();
    if let Some((_, examples)) = EXAMPLES.iter().find(|(page, _)| *page == name) {
        roff.push_str(".SH EXAMPLES\n");
        for (what, command) in *examples {
            roff.push_str(&format!(
                ".PP\n{}\n.PP\n.RS 4\n.nf\n{}\n.fi\n.RE\n",
                escape(what),
                escape(command)
            ));
        }
    }
    roff.push_str(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in EXIT_STATUS {
        roff.push_str(&format!(".TP\n{code}\n{}\n", escape(meaning)));
    }
    roff.push_str(
        ".SH \"SEE ALSO\"\n\\fBjitctl\\fR(1), \\fBjitd\\fR(8), \\fBjitd-policy\\fR(5), \
         \\fBjitd.toml\\fR(5), \\fBpam_jit\\fR(8)\n",
    );
    w.write_all(roff.as_bytes())
}

/// Text safe in roff: backslashes doubled, a leading '.' or '\'' kept from being a request.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_has_a_page_with_examples_and_exit_status() {
        let dir = std::env::temp_dir().join(format!("jitctl-man-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pages = write_all(crate::Cli::command(), &dir).unwrap();
        for name in [
            "jitctl.1",
            "jitctl-elevate.1",
            "jitctl-privileges.1",
            "jitctl-doctor.1",
            "jitctl-policy-check.1",
            "jitctl-drop.1",
        ] {
            assert!(pages.contains(&name.to_string()), "{name}: {pages:?}");
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            assert!(text.contains(".SH EXAMPLES"), "{name}");
            assert!(text.contains(".SH \"EXIT STATUS\""), "{name}");
            assert!(!text.contains("EXTRA"), "{name}");
        }
        assert!(
            !pages
                .iter()
                .any(|p| p.contains("completions") || p.contains("help"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
