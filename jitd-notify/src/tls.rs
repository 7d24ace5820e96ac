//! TLS for the sinks that leave the host: `https://` webhooks, Slack and Teams, and SMTP after
//! STARTTLS. The server is checked against the system's trust store (`/etc/ssl/certs`, so a
//! private CA an admin installed there works) plus the sink's own `ca_file`, and its name
//! against the host of the URL or relay. Any failure is an error for this attempt: the caller
//! retries and, in the end, puts `notify.failed` on record.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A connection to a sink, in clear or under TLS; both bounded by the socket's timeouts.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// The system's roots, read once: the store does not change under a running service often
/// enough to be worth re-reading (restart the notifier after `update-ca-certificates`).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            eprintln!("jitd-notify: system trust store: {e}");
        }
        found.certs
    })
}

/// The client configuration for a sink: system roots, plus the certificates in `ca_file`.
pub fn config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    // A system root rustls cannot use (an odd legacy certificate) is skipped, not fatal.
    let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "ca_file {}: no PEM certificate in it",
                path.display()
            ));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Runs the TLS handshake with `host` over `tcp` now, so a bad certificate is reported as
/// such (and not as a failed write later).
pub fn wrap(tcp: TcpStream, host: &str, ca_file: Option<&Path>) -> Result<Conn, String> {
    let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
        .map_err(|e| format!("{host}: not a server name for TLS: {e}"))?
        .to_owned();
    let conn = ClientConnection::new(config(ca_file)?, name).map_err(|e| format!("{host}: {e}"))?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| format!("{host}: TLS: {e}"))?;
    }
    Ok(Conn::Tls(Box::new(s)))
}
