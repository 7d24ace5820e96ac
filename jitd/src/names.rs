//! Values that can only hold what is safe to act on. Everything that reaches a sudoers file, a
//! `gpasswd` argument or a file name passes through one of these types first; the emitters take
//! only these types, so an unchecked string cannot reach them.
//!
//! The rules are deliberately narrower than what sudo or shadow-utils accept: a name that sudoers
//! could read as an alias (`ALL`, upper case), a uid (`#0`), a group (`%x`), a netgroup (`+x`),
//! a list (`a,b`) or a path (`../x`) never validates.

#![forbid(unsafe_code)]

use std::fmt;

/// Why a value was refused; the message names the value's role and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: {}", self.what, self.value, self.why)
    }
}

impl std::error::Error for NameError {}

fn refuse<T>(what: &'static str, value: &str, why: &'static str) -> Result<T, NameError> {
    // Keep hostile input short in messages and logs.
    let value: String = value.chars().take(64).collect();
    Err(NameError { what, value, why })
}

/// Portable account name: `[a-z_][a-z0-9_-]*`, at most 32 bytes (POSIX portable set, lower case,
/// as `useradd` accepts by default). Used for users and groups named in policy and for the user
/// name passed to `gpasswd`.
fn check_account_name(what: &'static str, s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return refuse(what, s, "empty");
    }
    if s.len() > 32 {
        return refuse(what, s, "longer than 32 bytes");
    }
    let mut chars = s.chars();
    let first = chars.next().unwrap_or('0');
    if !(first.is_ascii_lowercase() || first == '_') {
        return refuse(what, s, "must start with a lower-case letter or '_'");
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return refuse(what, s, "only a-z, 0-9, '_' and '-' are allowed");
    }
    Ok(())
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_newtype!(
    /// A user name as it may appear in policy or be handed to `gpasswd`.
    UserName
);
string_newtype!(
    /// A Unix group name as it may appear in policy or be handed to `gpasswd`.
    GroupName
);
string_newtype!(
    /// The name of an admin-defined privilege: `[a-z0-9][a-z0-9-]*`, at most 63 bytes.
    PrivilegeName
);
/// An id jitd makes ([`random_id`]), kept inline: 13 ASCII bytes, no allocation. The daemon
/// keeps several copies of each live grant's id (its table, the gate's index, the sudo
/// records), ten thousand grants on a busy host.
macro_rules! inline_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 13]);

        impl $name {
            pub fn as_str(&self) -> &str {
                // Only ever built from checked ASCII ([`random_id`]), so never empty.
                std::str::from_utf8(&self.0).unwrap_or_default()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

inline_id!(
    /// A grant id: `g` and 12 lower-case hex digits.
    GrantId
);
inline_id!(
    /// An elevated session's id: `s` and 12 lower-case hex digits.
    SessionId
);
inline_id!(
    /// A request waiting for approval: `r` and 12 lower-case hex digits.
    RequestId
);

impl UserName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_account_name("user name", s)?;
        Ok(Self(s.to_string()))
    }
}

impl GroupName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_account_name("group name", s)?;
        Ok(Self(s.to_string()))
    }
}

impl PrivilegeName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        const WHAT: &str = "privilege name";
        if s.is_empty() {
            return refuse(WHAT, s, "empty");
        }
        if s.len() > 63 {
            return refuse(WHAT, s, "longer than 63 bytes");
        }
        if s.starts_with('-') {
            return refuse(WHAT, s, "must not start with '-'");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return refuse(WHAT, s, "only a-z, 0-9 and '-' are allowed");
        }
        Ok(Self(s.to_string()))
    }
}

/// The ids jitd makes: a one-letter prefix saying what it names and 12 lower-case hex digits
/// from the kernel's random source. Safe as a file-name component (no `.`, no `~`, so sudo does
/// not skip the drop-in) and as a sudoers comment.
macro_rules! random_id {
    ($name:ident, $prefix:literal, $what:literal) => {
        impl $name {
            /// Length of the hex part.
            pub const HEX_LEN: usize = 12;

            pub fn parse(s: &str) -> Result<Self, NameError> {
                const WHAT: &str = $what;
                let Some(hex) = s.strip_prefix($prefix) else {
                    return refuse(WHAT, s, concat!("must start with '", $prefix, "'"));
                };
                if hex.len() != Self::HEX_LEN
                    || !hex
                        .chars()
                        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                {
                    return refuse(
                        WHAT,
                        s,
                        concat!("must be '", $prefix, "' and 12 lower-case hex digits"),
                    );
                }
                // One ASCII prefix and 12 digits: exactly the 13 bytes held.
                s.as_bytes()
                    .try_into()
                    .map(Self)
                    .or_else(|_| refuse(WHAT, s, "must be 13 bytes"))
            }

            /// Builds an id from 48 random bits.
            pub fn from_random(bits: u64) -> Self {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut out = [$prefix.as_bytes()[0]; 13];
                // The low 48 bits, most significant digit first.
                for (i, digit) in out[1..].iter_mut().enumerate() {
                    *digit = HEX[((bits >> (4 * (11 - i))) & 0xf) as usize];
                }
                Self(out)
            }
        }
    };
}

random_id!(GrantId, "g", "grant id");
random_id!(SessionId, "s", "session id");
random_id!(RequestId, "r", "request id");

/// A command a sudo privilege allows, exactly: an absolute path and fixed arguments.
///
/// Path: absolute, normalised (no `.`/`..`/empty components), characters `A-Za-z0-9_.+-/@`.
/// Arguments: characters `A-Za-z0-9_.+-/@=:,%`, no wildcards, no quotes, no backslashes.
/// A command with no arguments allows none (`""` in sudoers), never "any arguments".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SudoCommand {
    path: String,
    args: Vec<String>,
}

impl SudoCommand {
    /// Parses `"/usr/bin/systemctl restart nginx"` (split on ASCII spaces).
    pub fn parse(s: &str) -> Result<Self, NameError> {
        const WHAT: &str = "command";
        if s.len() > 1024 {
            return refuse(WHAT, s, "longer than 1024 bytes");
        }
        let mut words = s.split(' ').filter(|w| !w.is_empty());
        let Some(path) = words.next() else {
            return refuse(WHAT, s, "empty");
        };
        if path.rsplit('/').next() == Some("sudoedit") {
            return refuse(
                WHAT,
                s,
                "sudoedit is not supported: grant the exact commands that are needed",
            );
        }
        if !path.starts_with('/') {
            return refuse(WHAT, s, "must start with an absolute path");
        }
        if path.ends_with('/') {
            return refuse(WHAT, s, "a directory is not a command");
        }
        let path_ok = |c: char| c.is_ascii_alphanumeric() || "_.+-/@".contains(c);
        if !path.chars().all(path_ok) {
            return refuse(
                WHAT,
                s,
                "path may only contain A-Z a-z 0-9 _ . + - / @ (no wildcards)",
            );
        }
        if path[1..]
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return refuse(WHAT, s, "path must be normalised (no //, . or ..)");
        }
        let arg_ok = |c: char| c.is_ascii_alphanumeric() || "_.+-/@=:,%".contains(c);
        let args: Vec<String> = words.map(str::to_string).collect();
        if args.iter().any(|a| !a.chars().all(arg_ok)) {
            return refuse(
                WHAT,
                s,
                "arguments may only contain A-Z a-z 0-9 _ . + - / @ = : , % (no wildcards, quotes or escapes)",
            );
        }
        Ok(Self {
            path: path.to_string(),
            args,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The command as sudoers reads it: `,` `:` `=` escaped, `""` for "no arguments".
    pub fn to_sudoers(&self) -> String {
        let mut out = self.path.clone();
        if self.args.is_empty() {
            out.push_str(" \"\"");
            return out;
        }
        for arg in &self.args {
            out.push(' ');
            for c in arg.chars() {
                if matches!(c, ',' | ':' | '=') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
        out
    }
}

impl fmt::Display for SudoCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        for arg in &self.args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_that_sudoers_would_misread_are_refused() {
        for bad in [
            "ALL", "Alice", "%x", "+x", "#0", "a,b", "a:b", "a\"b", "../x", ".x", "x~", "a\nb",
            "a\0b", "", "-x", "0day", "é", "a b", "a.b", "a/b",
        ] {
            assert!(UserName::parse(bad).is_err(), "{bad:?} must be refused");
            assert!(GroupName::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(UserName::parse(&"a".repeat(33)).is_err());
        for good in ["alice", "_svc", "web-ops", "a1", "x_y-z"] {
            assert_eq!(
                UserName::parse(good).map(|n| n.to_string()),
                Ok(good.to_string())
            );
        }
    }

    #[test]
    fn privilege_names_are_lower_case_words() {
        assert!(PrivilegeName::parse("nginx-admin").is_ok());
        assert!(PrivilegeName::parse("docker").is_ok());
        for bad in [
            "",
            "-x",
            "Nginx",
            "a_b",
            "a.b",
            "a b",
            "../x",
            "ALL",
            &"a".repeat(64),
        ] {
            assert!(PrivilegeName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn grant_ids_are_exactly_g_and_twelve_hex_digits() {
        let id = GrantId::from_random(u64::MAX);
        assert_eq!(id.as_str(), "gffffffffffff");
        assert_eq!(GrantId::parse(id.as_str()), Ok(id));
        assert_eq!(GrantId::from_random(0x1a).as_str(), "g00000000001a");
        for bad in [
            "",
            "g",
            "gABCDEF123456",
            "g12345678901",
            "g1234567890123",
            "x123456789012",
            "g12345678901.",
            "../g123456789",
            "g12345678901~",
        ] {
            assert!(GrantId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn commands_are_absolute_exact_and_escaped() {
        let c = SudoCommand::parse("/usr/bin/systemctl restart nginx").unwrap();
        assert_eq!(c.to_sudoers(), "/usr/bin/systemctl restart nginx");
        let c = SudoCommand::parse("/usr/bin/whoami").unwrap();
        assert_eq!(c.to_sudoers(), "/usr/bin/whoami \"\"");
        let c = SudoCommand::parse("/usr/bin/env A=b,c:d").unwrap();
        assert_eq!(c.to_sudoers(), "/usr/bin/env A\\=b\\,c\\:d");
        for bad in [
            "systemctl restart nginx",
            "ALL",
            "/usr/bin/*",
            "/usr/bin/foo *",
            "/usr/../bin/sh",
            "/usr//bin/sh",
            "/usr/bin/",
            "/usr/bin/sudoedit /etc/x",
            "/bin/sh -c \"x\"",
            "/bin/echo a\\b",
            "/bin/echo !x",
            "/bin/echo\nALL",
            "/bin/echo #1",
            "",
            "   ",
        ] {
            assert!(SudoCommand::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
