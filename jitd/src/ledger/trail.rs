//! The after-expiry trail: a grant's drop-in, and with it sudo's event log for its user, goes
//! at the grant's end, so a sudo attempt just after the end would leave no trace but sudo's
//! syslog line. For [`AFTER_EXPIRY_MS`] after the last end of a user's sudo grant (that
//! recorded commands), `/etc/sudoers.d/jitd_ledger` keeps the logging line for that user (and
//! nothing else: no rule), so the attempt lands in the ledger, attributed to the grant that
//! ended, with `after_expiry` and the `use-after-expiry` alert.
//!
//! Written by the ledger's thread, never by the core: ending a grant never waits for it.

#![forbid(unsafe_code)]

use std::collections::BTreeSet;

use crate::config::Config;
use crate::daemon::AFTER_EXPIRY_MS;
use crate::effects::sudoers::SudoersDir;

/// In the drop-in directory; not `jitd-*`, which names grants.
pub const NAME: &str = "jitd_ledger";
const MARKER: &str = "# jitd ledger trail: managed by jitd, do not edit";

/// The file's text for `uids`; `None` when there is nobody to follow.
pub fn render(cfg: &Config, uids: &BTreeSet<u32>) -> Option<String> {
    let lines: Vec<String> = uids
        .iter()
        .filter_map(|uid| super::defaults_line(cfg, *uid))
        .collect();
    let lines = crate::effects::sudoers::consolidate::grouped_defaults(
        lines.iter().map(|l| l.trim_end()),
        "JITD_TRAIL",
    );
    (!lines.is_empty()).then(|| {
        format!(
            "{MARKER}\n# sudo's event log for users whose grant ended within the last {} \
             minutes (no rule: logging only)\n{lines}",
            AFTER_EXPIRY_MS / 60_000
        )
    })
}

/// Writes (or removes) the trail for `uids`.
pub fn write(cfg: &Config, uids: &BTreeSet<u32>) -> Result<(), String> {
    let dir = SudoersDir::new(cfg.sudoers_dir.clone(), cfg.visudo.clone());
    match render(cfg, uids) {
        Some(text) => dir
            .install_named(NAME, MARKER, &text)
            .map_err(|e| e.to_string()),
        None => dir
            .remove_named(NAME, MARKER)
            .map(|_| ())
            .map_err(|e| e.to_string()),
    }
}

/// Package removal: the trail goes with everything else of jitd's.
pub fn remove(cfg: &Config) {
    let _ = write(cfg, &BTreeSet::new());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_logs_and_grants_nothing() {
        let cfg = Config::default();
        assert_eq!(render(&cfg, &BTreeSet::new()), None);
        let text = render(&cfg, &[1001, 1002].into_iter().collect()).unwrap();
        assert!(text.starts_with(MARKER));
        assert!(
            text.contains("User_Alias JITD_TRAIL_1 = #1001, #1002\n"),
            "{text}"
        );
        assert!(text.contains("Defaults:JITD_TRAIL_1 log_format=json, logfile=/var/lib/jitd/ledger/sudo.json, log_exit_status, log_subcmds\n"));
        assert!(!text.contains("ALL="), "{text}");
    }
}
