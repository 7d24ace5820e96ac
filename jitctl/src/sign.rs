//! Signing a request blob on the approver's own machine, with no jitd there: `jitctl approve
//! --sign BLOB|-` decodes the blob, shows every field that will be signed, asks, and prints a
//! token made by `ssh-keygen -Y sign` with the approver's key (a file, or through the agent
//! with the key's `.pub`). `--deny` signs the same request as a denial.

use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::process::Stdio;

use jitd::signed_request::{self as sr, Kind};

use crate::Failure;

/// Largest blob read from stdin or a file.
const MAX_BLOB: u64 = 64 * 1024;

pub struct SignArgs {
    pub blob: String,
    pub key: Option<PathBuf>,
    pub deny: bool,
    pub yes: bool,
}

pub fn run(a: &SignArgs) -> Result<(), Failure> {
    let text = read_blob(&a.blob)?;
    let payload = sr::unblob(&text).map_err(Failure::Usage)?;
    let kind = if a.deny { Kind::Deny } else { Kind::Approve };
    let payload = sr::with_kind(&payload, kind)
        .map_err(|e| Failure::Usage(format!("this blob is not a jitd request: {e}")))?;
    let fields = sr::fields(&payload).map_err(Failure::Usage)?;
    show(&fields, kind);
    if !a.yes && !confirm(kind)? {
        return Err(Failure::Other("nothing signed".into()));
    }
    let site = sr::field(&fields, "site");
    let key = match &a.key {
        Some(k) => k.clone(),
        None => default_key()?,
    };
    let sig = ssh_sign(&key, &sr::approve_namespace(site), &payload)?;
    print!("{}", sr::token(&payload, &sig));
    Ok(())
}

fn read_blob(arg: &str) -> Result<String, Failure> {
    let mut text = String::new();
    let read = |r: &mut dyn Read, text: &mut String| {
        r.take(MAX_BLOB)
            .read_to_string(text)
            .map_err(|e| Failure::Usage(format!("cannot read the blob: {e}")))
    };
    if arg == "-" {
        read(&mut std::io::stdin(), &mut text)?;
    } else if arg.contains("-----BEGIN") {
        text = arg.to_string();
    } else {
        let mut f = std::fs::File::open(arg)
            .map_err(|e| Failure::Usage(format!("{arg}: {e} (give the blob, a file, or -)")))?;
        read(&mut f, &mut text)?;
    }
    Ok(text)
}

/// Everything the approver is about to sign, in words, on stderr (stdout is the token).
fn show(fields: &[(String, String)], kind: Kind) {
    let f = |k: &str| sr::field(fields, k);
    let secs = |k: &str| {
        f(k).parse::<u64>()
            .map_or_else(|_| f(k).to_string(), jitd::duration::format)
    };
    let verb = match kind {
        Kind::Approve => "APPROVE",
        Kind::Deny => "DENY",
    };
    let mut e = std::io::stderr();
    let _ = writeln!(e, "You are about to {verb} this request with your SSH key:");
    let rows = [
        ("request", f("request").to_string()),
        ("user", format!("{} (uid {})", f("user"), f("uid"))),
        (
            "host",
            format!("{} (machine-id {})", f("hostname"), f("machine-id")),
        ),
        ("privilege", f("privilege").to_string()),
        ("grants", f("grants").to_string()),
        (
            "for",
            format!(
                "{} (the rule allows at most {})",
                secs("duration"),
                secs("max-duration")
            ),
        ),
        ("reason", f("reason").to_string()),
        ("valid until", f("request-expires").to_string()),
        ("site", f("site").to_string()),
        ("policy", f("policy").to_string()),
        ("nonce", f("nonce").to_string()),
    ];
    for (label, value) in rows {
        // A blob from a chat is anyone's text: nothing in it may move the cursor or reorder
        // what the approver reads.
        let value: String = value
            .chars()
            .map(|c| {
                if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
                {
                    '?'
                } else {
                    c
                }
            })
            .collect();
        let _ = writeln!(e, "  {label:<12} {value}");
    }
}

fn confirm(kind: Kind) -> Result<bool, Failure> {
    // The blob may have come on stdin: ask on the terminal itself.
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty");
    let Ok(mut tty) = tty else {
        return Err(Failure::Usage(
            "no terminal to confirm on: read the request above and add --yes to sign it".into(),
        ));
    };
    let _ = write!(tty, "{} it? [y/N] ", kind.as_str());
    let _ = tty.flush();
    let mut answer = String::new();
    let _ = std::io::BufReader::new(&mut tty).read_line(&mut answer);
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub fn default_key() -> Result<PathBuf, Failure> {
    let home = std::env::var_os("HOME")
        .ok_or_else(|| Failure::Usage("no HOME: name the key with --key FILE".into()))?;
    let ssh = PathBuf::from(home).join(".ssh");
    [
        "id_ed25519_sk",
        "id_ed25519",
        "id_ecdsa_sk",
        "id_ecdsa",
        "id_rsa",
    ]
    .iter()
    .map(|k| ssh.join(k))
    .find(|p| p.exists())
    .ok_or_else(|| {
        Failure::Usage(format!(
            "no key in {}: name it with --key FILE",
            ssh.display()
        ))
    })
}

/// `ssh-keygen -Y sign` over `payload`; the key may be a private key file, or a `.pub` whose
/// private half is in the agent. A passphrase or a touch is asked for on the terminal.
#[allow(clippy::disallowed_methods)] // jitctl runs the approver's own ssh-keygen, on their machine
fn ssh_sign(key: &std::path::Path, namespace: &str, payload: &[u8]) -> Result<String, Failure> {
    let mut child = std::process::Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::Other(format!("cannot run ssh-keygen: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(payload);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Failure::Other(format!("ssh-keygen: {e}")))?;
    if !out.status.success() {
        return Err(Failure::Other(format!(
            "ssh-keygen could not sign with {}: {}",
            key.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A token from the command line: the text, a file holding it, or - (stdin). Bytes as they
/// are: jitd judges them, whatever they hold.
pub fn read_token(arg: &str) -> Result<Vec<u8>, Failure> {
    // One byte over jitd's limit is enough for jitd to say it is too long.
    let limit = sr::MAX_TOKEN_BYTES as u64 + 1;
    let mut bytes = Vec::new();
    let read = |r: &mut dyn Read, bytes: &mut Vec<u8>| {
        r.take(limit)
            .read_to_end(bytes)
            .map_err(|e| Failure::Usage(format!("cannot read the token: {e}")))
    };
    if arg == "-" {
        read(&mut std::io::stdin(), &mut bytes)?;
    } else if arg.contains("-----BEGIN") {
        bytes = arg.as_bytes().to_vec();
    } else {
        let mut f = std::fs::File::open(arg)
            .map_err(|e| Failure::Usage(format!("{arg}: {e} (give the token, a file, or -)")))?;
        read(&mut f, &mut bytes)?;
    }
    Ok(bytes)
}

/// Asks jitd for a challenge, signs it with `key` under `jitd-mfa-v1@SITE` and hands the proof
/// in; returns the proof.
pub async fn prove(
    jitd: &jitd::client::ManagerProxy<'_>,
    key: &std::path::Path,
) -> Result<String, Failure> {
    let challenge = jitd.mfa_challenge().await?;
    let site = challenge
        .lines()
        .find_map(|l| l.strip_prefix("site: "))
        .ok_or_else(|| Failure::Other("jitd's challenge names no site".into()))?;
    let sig = ssh_sign(key, &format!("jitd-mfa-v1@{site}"), challenge.as_bytes())?;
    let proof = sr::token(challenge.as_bytes(), &sig);
    jitd.prove_mfa(proof.as_bytes()).await?;
    Ok(proof)
}

/// A token pasted (or piped) into `elevate --wait` or `wait`: what has come on stdin so far,
/// read without ever blocking the wait. Complete once it reaches the end of its SSH signature.
#[derive(Default)]
pub struct Paste {
    buf: Vec<u8>,
    /// stdin is closed or unreadable: nothing more will come.
    closed: bool,
}

impl Paste {
    /// Reads what stdin has now; a whole token when one has arrived.
    pub fn poll(&mut self) -> Option<Vec<u8>> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        if self.closed {
            return None;
        }
        let stdin = std::io::stdin();
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            return None;
        }
        // Larger than std's stdin buffer, so the read goes straight to the descriptor and
        // nothing is left in a buffer that poll(2) cannot see.
        let mut chunk = vec![0u8; 64 * 1024];
        match stdin.lock().read(&mut chunk) {
            Ok(0) | Err(_) => {
                self.closed = true;
                return None;
            }
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
        }
        let end = b"-----END SSH SIGNATURE-----";
        let complete = self.buf.windows(end.len()).any(|w| w == end);
        // Past jitd's limit it can only be refused: hand it over for jitd to say so.
        if complete || self.buf.len() > sr::MAX_TOKEN_BYTES {
            return Some(std::mem::take(&mut self.buf));
        }
        None
    }
}
