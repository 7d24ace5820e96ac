//! Verifying approvers' SSH signatures with `ssh-keygen -Y`, run as a tool like visudo and
//! gpasswd (empty environment, a deadline, killed when late).
//!
//! Why the tool and not SSHSIG in Rust: `ssh-keygen` is what every approver already uses to
//! sign, what anyone re-verifying a token from the audit trail will run, and it already
//! implements the parts that are easy to get subtly wrong — the `allowed_signers` grammar with
//! its `namespaces=`, `valid-after=`/`valid-before=` and `cert-authority` options, KRLs (`-r`),
//! certificates and the FIDO (`sk-`) key types — in code that OpenSSH maintains and audits.
//! Its cost is one or two short processes per token (a few milliseconds, see the benchmark
//! in the README); tokens are rare.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use super::run_tool_fed;

/// How long one `ssh-keygen -Y` may take: it reads two small files and checks one signature.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The principals of `allowed_signers` whose key made `sig` and is valid at `verify_time`
/// (`YYYYMMDDHHMMSSZ`, jitd's own clock).
pub fn find_principals(
    tool: &Path,
    allowed: &Path,
    sig: &Path,
    verify_time: &str,
) -> Result<Vec<String>, String> {
    let time = format!("verify-time={verify_time}");
    let args: Vec<&OsStr> = vec![
        OsStr::new("-Y"),
        OsStr::new("find-principals"),
        OsStr::new("-f"),
        allowed.as_os_str(),
        OsStr::new("-s"),
        sig.as_os_str(),
        OsStr::new("-O"),
        OsStr::new(&time),
    ];
    let out = run_tool_fed(tool, &args, None, TIMEOUT).map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(last_line(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Checks that `principal`'s key signed `message` under `namespace`, valid at `verify_time`
/// and not in `revoked`; returns ssh-keygen's "Good ... signature" line (it names the key).
#[allow(clippy::too_many_arguments)] // each is one of ssh-keygen's own options
pub fn verify(
    tool: &Path,
    allowed: &Path,
    principal: &str,
    namespace: &str,
    sig: &Path,
    verify_time: &str,
    revoked: Option<&Path>,
    message: &[u8],
) -> Result<String, String> {
    let time = format!("verify-time={verify_time}");
    let mut args: Vec<&OsStr> = vec![
        OsStr::new("-Y"),
        OsStr::new("verify"),
        OsStr::new("-f"),
        allowed.as_os_str(),
        OsStr::new("-I"),
        OsStr::new(principal),
        OsStr::new("-n"),
        OsStr::new(namespace),
        OsStr::new("-s"),
        sig.as_os_str(),
        OsStr::new("-O"),
        OsStr::new(&time),
    ];
    if let Some(r) = revoked {
        args.push(OsStr::new("-r"));
        args.push(r.as_os_str());
    }
    let out = run_tool_fed(tool, &args, Some(message), TIMEOUT).map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(last_line(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("; ")
}

/// Checks an `allowed_signers` file as policy: every line names one plain principal (an
/// account name, no patterns or lists) and pins its key with `namespaces=` to jitd's
/// namespaces only. One bad line refuses the whole file: a key whose signature could also be
/// a git commit's or a file's must never count as an approval. Returns the principals.
pub fn check_allowed_signers(text: &str, site: &str) -> Result<Vec<String>, String> {
    let mut principals = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |why: String| format!("line {}: {why}", n + 1);
        let (principal, rest) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| at("a line is `PRINCIPAL namespaces=\"...\" KEYTYPE KEY`".into()))?;
        if principal.is_empty()
            || principal
                .chars()
                .any(|c| matches!(c, ',' | '*' | '?' | '!' | '"'))
        {
            return Err(at(format!(
                "principal \"{principal}\" must be one account name (no lists or patterns)"
            )));
        }
        let options = options_of(rest.trim_start());
        let Some(ns) = option_value(options, "namespaces") else {
            return Err(at(format!(
                "the key of {principal} has no namespaces=\"...\": without it a signature \
                 this key makes for git or a file would count as an approval"
            )));
        };
        for one in ns.split(',') {
            let one = one.trim();
            if one.contains(['*', '?'])
                || !one.starts_with("jitd-")
                || !one.ends_with(&format!("@{site}"))
            {
                return Err(at(format!(
                    "namespace \"{one}\" of {principal}: only jitd's namespaces of this site \
                     (jitd-approve-v1@{site}, jitd-mfa-v1@{site})"
                )));
            }
        }
        principals.push(principal.to_string());
    }
    Ok(principals)
}

/// The options field of a line after its principal ("" when the key type comes first).
fn options_of(rest: &str) -> &str {
    let first_word = rest.split(char::is_whitespace).next().unwrap_or("");
    let keytype = first_word.starts_with("ssh-")
        || first_word.starts_with("ecdsa-")
        || first_word.starts_with("sk-");
    if keytype {
        return "";
    }
    // Options end at the first space outside double quotes.
    let mut quoted = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return &rest[..i],
            _ => {}
        }
    }
    rest
}

fn option_value<'a>(options: &'a str, name: &str) -> Option<&'a str> {
    let mut quoted = false;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in options.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&options[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&options[start..]);
    parts.into_iter().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_must_pin_one_principal_to_jitd_namespaces() {
        let good = "# approvers\nbob namespaces=\"jitd-approve-v1@ex.org\",valid-before=\"20991231\" ssh-ed25519 AAAA bob@laptop\n";
        assert_eq!(check_allowed_signers(good, "ex.org").unwrap(), vec!["bob"]);
        let bare = "bob ssh-ed25519 AAAA\n";
        assert!(
            check_allowed_signers(bare, "ex.org")
                .unwrap_err()
                .contains("no namespaces")
        );
        let git = "bob namespaces=\"git\" ssh-ed25519 AAAA\n";
        assert!(
            check_allowed_signers(git, "ex.org")
                .unwrap_err()
                .contains("\"git\"")
        );
        let list = "bob,carol namespaces=\"jitd-approve-v1@ex.org\" ssh-ed25519 AAAA\n";
        assert!(
            check_allowed_signers(list, "ex.org")
                .unwrap_err()
                .contains("one account")
        );
        let other_site = "bob namespaces=\"jitd-approve-v1@other\" ssh-ed25519 AAAA\n";
        assert!(check_allowed_signers(other_site, "ex.org").is_err());
    }
}
