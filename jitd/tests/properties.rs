//! Property tests standing in for fuzzing where a fuzzer is impractical in CI: the parsers that
//! take text from users and admins, and the decoding of bus arguments, fed arbitrary and
//! mutated input. Properties: never a panic; what is accepted is safe; errors point inside the
//! input. (The sudoers emitter's property test, with real `visudo`, lives in grant::sudoers.)

use std::path::Path;

use jitd::client::{GateDecision, SessionInfo};
use jitd::duration;
use jitd::names::{GrantId, GroupName, PrivilegeName, SudoCommand, UserName};
use jitd::policy::{Accounts, Policy};
use proptest::prelude::*;

/// Every user, group and path exists: the parser's own checks are what is under test.
struct Everything;

impl Accounts for Everything {
    fn user_name(&self, _uid: u32) -> Option<String> {
        None
    }
    fn user_uid(&self, _: &str) -> Option<u32> {
        Some(1000)
    }
    fn group_gid(&self, _: &str) -> Option<u32> {
        Some(1000)
    }
    fn user_groups(&self, _: &str) -> Vec<String> {
        vec![]
    }
    fn path_exists(&self, _: &Path) -> bool {
        true
    }
}

const VALID: &str = r#"
[privilege.nginx-admin]
kind = "sudo"
run_as = "root"
commands = ["/usr/bin/systemctl restart nginx"]

[privilege.docker]
kind = "group"
group = "docker"
allow_sensitive_group = true

[[rule]]
name = "on-call"
users = ["alice"]
groups = ["oncall"]
privileges = ["nginx-admin", "docker"]
max_duration = "1h"
default_duration = "15m"
ticket_pattern = "INC-[0-9]+"
"#;

/// Characters sudoers or a shell would read as syntax.
const SUDOERS_SPECIALS: &[char] = &[
    ',', ':', '=', '\\', '"', '\'', '#', '%', '+', '!', '(', ')', ' ', '\n', '\0', '*', '?', '[',
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn durations_never_panic_and_accepted_ones_are_bounded(text in ".{0,40}") {
        if let Ok(secs) = duration::parse(&text) {
            prop_assert!((1..=duration::MAX_SECS).contains(&secs));
        }
    }

    #[test]
    fn durations_round_trip(secs in 1u64..=duration::MAX_SECS) {
        prop_assert_eq!(duration::parse(&duration::format(secs)).unwrap(), secs);
    }

    #[test]
    fn accepted_names_carry_nothing_sudoers_could_misread(text in "\\PC{0,40}") {
        for accepted in [
            UserName::parse(&text).ok().map(|n| n.to_string()),
            GroupName::parse(&text).ok().map(|n| n.to_string()),
            PrivilegeName::parse(&text).ok().map(|n| n.to_string()),
            GrantId::parse(&text).ok().map(|n| n.to_string()),
        ].into_iter().flatten() {
            prop_assert!(!accepted.contains(SUDOERS_SPECIALS), "{:?}", accepted);
            prop_assert!(!accepted.is_empty() && accepted != "ALL" && !accepted.starts_with(['-', '.']));
        }
    }

    #[test]
    fn accepted_commands_are_absolute_and_free_of_wildcards(text in "\\PC{0,60}") {
        if let Ok(cmd) = SudoCommand::parse(&text) {
            prop_assert!(cmd.path().starts_with('/'));
            prop_assert!(!cmd.to_string().contains(['*', '?', '[', '\n', '\0']));
        }
    }

    #[test]
    fn the_policy_parser_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
        check_policy(&text);
    }

    #[test]
    fn the_policy_parser_never_panics_on_mutated_policies(
        at in 0usize..VALID.len(),
        cut in 0usize..40,
        insert in "\\PC{0,12}",
    ) {
        let mut text = VALID.to_string();
        let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (at + cut).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(at..end, &insert);
        check_policy(&text);
    }

    #[test]
    fn bus_arguments_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        use zbus::wire::{serialized::{Context, Data}, LE};
        let ctxt = Context::new(LE, 0);
        let data = Data::new(&bytes[..], ctxt);
        let _ = data.deserialize::<(String, u64, String, String)>();
        let _ = data.deserialize::<SessionInfo>();
        let _ = data.deserialize::<GateDecision>();
        let _ = data.deserialize::<(u32, String, String, String)>();
    }
}

/// Loads `text`; an error must point at a line and column inside it.
fn check_policy(text: &str) {
    match Policy::parse_str(Path::new("fuzz.toml"), text, &Everything) {
        Ok(_) => {}
        Err(diags) => {
            assert!(!diags.is_empty());
            let lines = text.lines().count().max(1) + 1;
            for d in diags {
                assert!(d.line >= 1 && d.line <= lines, "{d} outside {lines} lines");
                assert!(d.column >= 1, "{d}");
            }
        }
    }
}
