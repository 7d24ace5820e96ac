//! Where notes go: a webhook signed the Standard Webhooks way (over http or https), an
//! admin's program, chat webhooks; e-mail is in `mail`. Each delivery is bounded by the sink's timeout; errors say what went wrong without
//! the secret or the body.

#![allow(clippy::disallowed_methods)] // the notifier is an edge: it runs the admin's programs

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{Kind, Sink};
use crate::note::Note;
use crate::tls::Conn;

/// Delivers `note` to `sink` once.
pub fn deliver(sink: &Sink, note: &Note) -> Result<(), String> {
    let timeout = Duration::from_millis(sink.timeout_ms.max(1));
    match sink.kind {
        Kind::Webhook => webhook(sink, note, timeout),
        Kind::Exec => exec(&sink.command, note, timeout),
        Kind::Smtp => crate::mail::send(sink, note, timeout),
        Kind::Tty => crate::tty::deliver(note),
        Kind::Slack => post(
            &sink.url,
            &[],
            &crate::chat::slack(note).to_string(),
            timeout,
            sink.ca_file.as_deref(),
        ),
        Kind::Teams => post(
            &sink.url,
            &[],
            &crate::chat::teams(note).to_string(),
            timeout,
            sink.ca_file.as_deref(),
        ),
    }
}

/// Reads a `whsec_<base64>` secret; refused when others may read the file.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{}: readable by others (mode {:o}): refused; make it 0600 or 0400",
            path.display(),
            meta.mode() & 0o777
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let b64 = text.trim().strip_prefix("whsec_").unwrap_or(text.trim());
    B64.decode(b64)
        .map_err(|_| format!("{}: not a whsec_<base64> secret", path.display()))
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub fn sign(secret: &[u8], id: &str, ts: u64, body: &str) -> Result<String, String> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "unusable secret".to_string())?;
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

pub fn connect(hostport: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("{hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hostport}: no address"))?;
    let s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{hostport}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    Ok(s)
}

fn webhook(sink: &Sink, note: &Note, timeout: Duration) -> Result<(), String> {
    let secret = read_secret(sink.secret_file.as_deref().unwrap_or(Path::new("")))?;
    // Wall-clock seconds for the receiver's replay window: the notifier's own edge clock.
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let sig = sign(&secret, &note.id, ts, &note.body)?;
    let headers = [
        ("webhook-id", note.id.clone()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", sig),
    ];
    post(
        &sink.url,
        &headers,
        &note.body,
        timeout,
        sink.ca_file.as_deref(),
    )
}

/// Splits `host[:port]` (or `[v6]:port`) into the host that TLS checks the certificate
/// against and the address to dial.
pub fn host_and_addr(hostport: &str, default_port: u16) -> (String, String) {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        let port = after.strip_prefix(':').unwrap_or("");
        let port = if port.is_empty() {
            default_port.to_string()
        } else {
            port.to_string()
        };
        return (host.to_string(), format!("[{host}]:{port}"));
    }
    match hostport.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host.to_string(), hostport.to_string()),
        _ => (hostport.to_string(), format!("{hostport}:{default_port}")),
    }
}

/// POSTs `body` as JSON to an `http://` or `https://` `url`; a 2xx answer is success,
/// anything else (a redirect included: a moved endpoint is a configuration error, and
/// following it would send the note where nobody configured it) is a failure.
pub fn post(
    url: &str,
    headers: &[(&str, String)],
    body: &str,
    timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<(), String> {
    let (tls, rest) = match url.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("http://").unwrap_or(url)),
    };
    let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let (host, addr) = host_and_addr(hostport, if tls { 443 } else { 80 });
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let tcp = connect(&addr, timeout)?;
    let mut s = if tls {
        crate::tls::wrap(tcp, &host, ca_file).map_err(|e| format!("{url}: {e}"))?
    } else {
        Conn::Plain(tcp)
    };
    s.write_all(req.as_bytes())
        .and_then(|()| s.flush())
        .map_err(|e| format!("{url}: {e}"))?;
    let mut status = String::new();
    BufReader::new(&mut s)
        .take(1024)
        .read_line(&mut status)
        .map_err(|e| format!("{url}: {e}"))?;
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{url}: no HTTP status in the answer"))?;
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(format!("{url}: HTTP {code}"))
    }
}

fn exec(command: &[String], note: &Note, timeout: Duration) -> Result<(), String> {
    let (prog, args) = command.split_first().ok_or("no command")?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env("JITD_NOTE_ID", &note.id)
        .env("JITD_NOTE_KIND", &note.kind);
    run_with_input(cmd, prog, note.body.as_bytes(), timeout)
}

/// Runs `cmd` with `input` on its stdin; success is exit status 0 within `timeout`, after
/// which the program is killed.
pub fn run_with_input(
    mut cmd: Command,
    prog: &str,
    input: &[u8],
    timeout: Duration,
) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{prog}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A program that does not read its stdin is its own business: the exit status counts.
        let _ = stdin.write_all(input);
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => return Err(format!("{prog}: {st}")),
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{prog}: timed out after {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{prog}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    /// A one-shot HTTP server on 127.0.0.1 answering `answer` (or nothing, holding the
    /// connection, when it is empty); returns its URL.
    fn server(answer: &'static str) -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        #[allow(clippy::disallowed_methods)] // a test's stand-in server
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            if answer.is_empty() {
                #[allow(clippy::disallowed_methods)] // holding the connection open
                std::thread::sleep(Duration::from_secs(3));
            } else {
                let _ = s.write_all(answer.as_bytes());
            }
        });
        url
    }

    #[test]
    fn redirects_errors_and_silence_are_failures_within_the_timeout() {
        let t = Duration::from_millis(500);
        let ok = server("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(post(&ok, &[], "{}", t, None), Ok(()));
        let moved = server("HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\n\r\n");
        assert!(
            post(&moved, &[], "{}", t, None)
                .unwrap_err()
                .ends_with("HTTP 302")
        );
        let broken = server("HTTP/1.1 500 Internal Server Error\r\n\r\n");
        assert!(
            post(&broken, &[], "{}", t, None)
                .unwrap_err()
                .ends_with("HTTP 500")
        );
        let silent = server("");
        let started = Instant::now();
        assert!(post(&silent, &[], "{}", t, None).is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "bounded by the timeout"
        );
    }

    #[test]
    fn a_secret_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("jitd-notify-secret-{}", std::process::id()));
        std::fs::write(&path, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_secret(&path).unwrap_err();
        assert!(e.contains("readable by others"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret(&path).unwrap().len(), 24);
        std::fs::remove_file(&path).unwrap();
    }
}
