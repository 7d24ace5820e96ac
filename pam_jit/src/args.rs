//! Module arguments, from the root-owned PAM file. They are the only configuration pam_jit has:
//! it reads no environment and no file of its own.
//!
//! An unknown or malformed argument is an error, and the entry point then denies: a typo in
//! `fail=open` must not silently change how the module fails.

use std::time::Duration;

use std::path::PathBuf;

use jitd::gate_proto::DEFAULT_SOCKET;
use jitd::names::PrivilegeName;

/// Longest wait for jitd, whatever the PAM file says: sudo must never hang on the gate.
const MAX_TIMEOUT_MS: u64 = 30_000;

/// What to do when jitd cannot answer (unreachable, timed out, unintelligible reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Deny. The default: a gate that opens when its guard is away is no gate.
    Closed,
    /// Allow, logged at `LOG_ALERT` every time. Only for hosts where losing sudo is worse.
    Open,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// jitd's gate socket.
    pub socket: PathBuf,
    /// Hard limit on one exchange with jitd, connection included.
    pub timeout: Duration,
    pub fail: FailMode,
    /// In the account phase, ask for a grant in place when there is none (the auth phase always
    /// does).
    pub interactive: bool,
    /// The privilege an in-place request asks for; without it the user is prompted.
    pub privilege: Option<PrivilegeName>,
    /// Log every decision, not only refusals and faults.
    pub debug: bool,
    /// Say nothing to the user, not even why access was refused.
    pub silent: bool,
    /// Gate only these PAM services and ignore the rest (`PAM_IGNORE`); `None` gates every
    /// service whose stack names the module. For shared stacks such as Debian's
    /// `common-account`, where the module would otherwise stand in front of every login.
    pub services: Option<Vec<String>>,
    /// Test builds only: panic inside the entry point, to prove the FFI layer contains it.
    #[cfg(debug_assertions)]
    pub test_panic: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_SOCKET),
            timeout: Duration::from_millis(2000),
            fail: FailMode::Closed,
            interactive: false,
            privilege: None,
            debug: false,
            silent: false,
            services: None,
            #[cfg(debug_assertions)]
            test_panic: false,
        }
    }
}

/// Parses the arguments of one PAM line.
pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Options, String> {
    let mut o = Options::default();
    for arg in args {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg, None),
        };
        match (key, value) {
            ("socket", Some(v)) => o.socket = socket_path(v)?,
            // Before the gate socket pam_jit spoke to jitd over the system bus; old PAM lines
            // may still name it. Checked, then unused: a typo must not pass silently either.
            ("bus", Some(v)) => {
                bus_address(v)?;
            }
            ("timeout_ms", Some(v)) => {
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("timeout_ms={v:?} is not a number of milliseconds"))?;
                if ms == 0 || ms > MAX_TIMEOUT_MS {
                    return Err(format!(
                        "timeout_ms={ms} is outside 1..={MAX_TIMEOUT_MS} milliseconds"
                    ));
                }
                o.timeout = Duration::from_millis(ms);
            }
            ("fail", Some("closed")) => o.fail = FailMode::Closed,
            ("fail", Some("open")) => o.fail = FailMode::Open,
            ("fail", Some(v)) => {
                return Err(format!("fail={v:?}: expected fail=closed or fail=open"));
            }
            ("interactive", None) => o.interactive = true,
            ("privilege", Some(v)) => {
                o.privilege =
                    Some(PrivilegeName::parse(v).map_err(|e| format!("privilege={v:?}: {e}"))?);
            }
            ("debug", None) => o.debug = true,
            ("silent", None) => o.silent = true,
            ("services", Some(v)) => {
                let list: Vec<String> = v.split(',').map(str::to_string).collect();
                if list.iter().any(|s| {
                    s.is_empty()
                        || !s
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                }) {
                    return Err(format!(
                        "services={v:?}: expected service names separated by commas"
                    ));
                }
                o.services = Some(list);
            }
            #[cfg(debug_assertions)]
            ("test_panic", None) => o.test_panic = true,
            _ => return Err(format!("unknown module argument {arg:?}")),
        }
    }
    Ok(o)
}

/// `socket=` takes an absolute path: the gate is a local, root-owned socket.
fn socket_path(v: &str) -> Result<PathBuf, String> {
    if !v.starts_with('/') || v.len() > 107 || v.split('/').any(|c| c == "..") {
        return Err(format!(
            "socket={v:?}: expected an absolute path to jitd's gate socket"
        ));
    }
    Ok(PathBuf::from(v))
}

/// `bus=` takes a socket path or a `unix:path=` address; nothing else (no TCP, no launchers):
/// the gate must talk to a root-owned local socket.
fn bus_address(v: &str) -> Result<String, String> {
    let path = v.strip_prefix("unix:path=").unwrap_or(v);
    if !path.starts_with('/') || path.contains([',', ';', '=', '%']) || path.len() > 107 {
        return Err(format!(
            "bus={v:?}: expected an absolute socket path or unix:path=/absolute/path"
        ));
    }
    Ok(format!("unix:path={path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_mean_the_gate_socket_two_seconds_fail_closed() {
        let o = parse([]).unwrap();
        assert_eq!(o.socket, PathBuf::from("/run/jitd/gate"));
        assert_eq!(o.timeout, Duration::from_secs(2));
        assert_eq!(o.fail, FailMode::Closed);
        assert!(!o.interactive && o.privilege.is_none() && !o.debug);
    }

    #[test]
    fn every_argument_is_understood() {
        let o = parse([
            "socket=/tmp/x/gate",
            "timeout_ms=250",
            "fail=open",
            "interactive",
            "privilege=nginx-admin",
            "debug",
        ])
        .unwrap();
        assert_eq!(o.socket, PathBuf::from("/tmp/x/gate"));
        assert_eq!(o.timeout, Duration::from_millis(250));
        assert_eq!(o.fail, FailMode::Open);
        assert!(o.interactive && o.debug);
        assert_eq!(o.privilege.unwrap().as_str(), "nginx-admin");
        assert_eq!(
            parse(["services=sudo,su-l"]).unwrap().services.unwrap(),
            ["sudo", "su-l"]
        );
        assert!(
            parse(["bus=unix:path=/run/b"]).is_ok(),
            "old lines still load"
        );
    }

    #[test]
    fn mistakes_are_errors_not_defaults() {
        for bad in [
            "fail=opne",
            "fail",
            "timeout_ms=0",
            "timeout_ms=-1",
            "timeout_ms=99999999",
            "bus=relative",
            "bus=tcp:host=evil,port=1",
            "bus=/a,guid=1",
            "socket=relative",
            "socket=/run/../tmp/gate",
            "privilege=../x",
            "interactive=yes",
            "services=",
            "services=sudo,,su",
            "services=sudo su",
            "nonsense",
        ] {
            assert!(parse([bad]).is_err(), "{bad} accepted");
        }
    }
}
