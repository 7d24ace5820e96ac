//! Request blobs and approval tokens: what an approver on another machine signs with their SSH
//! key, and what they send back. Shared by jitd (which builds the blob and checks a token
//! byte for byte against its own rebuild) and jitctl (which decodes a blob, shows it, and asks
//! `ssh-keygen -Y sign` to sign it).
//!
//! The signed bytes are a fixed line-oriented text (`key: value`, one per line, in a fixed
//! order, LF endings, no trailing spaces). jitd never re-serialises what it receives: it
//! rebuilds the bytes from the pending request and compares them to the bytes that were
//! signed, so a token over any other spelling of the same fields is refused.
//!
//! A blob is armored base64 with a readable summary line, so chat clients that rewrap or trim
//! text cannot change what is signed; a token is the signed bytes armored the same way,
//! followed by the `SSH SIGNATURE` armor `ssh-keygen` printed.

#![forbid(unsafe_code)]

/// The first line of every payload; a new layout gets a new version.
pub const MAGIC: &str = "jitd-approval v1";
/// The signature namespace for approve and deny tokens (the kind is inside the signed bytes).
pub fn approve_namespace(site: &str) -> String {
    format!("jitd-approve-v1@{site}")
}

const BLOB_BEGIN: &str = "-----BEGIN JITD REQUEST-----";
const BLOB_END: &str = "-----END JITD REQUEST-----";
const TOKEN_BEGIN: &str = "-----BEGIN JITD TOKEN-----";
const TOKEN_END: &str = "-----END JITD TOKEN-----";
const SIG_BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const SIG_END: &str = "-----END SSH SIGNATURE-----";

/// Largest token jitd reads; anything longer is refused before it is looked at.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Largest payload a blob may carry (the blob itself stays under 1 KB for a normal request).
pub const MAX_PAYLOAD_BYTES: usize = 2 * 1024;

/// The fields bound into a signature, in their signed order.
pub const FIELDS: &[&str] = &[
    "kind",
    "site",
    "request",
    "machine-id",
    "hostname",
    "uid",
    "user",
    "privilege",
    "grants",
    "duration",
    "max-duration",
    "request-expires",
    "policy",
    "nonce",
    "reason",
];

/// Approve or deny: what the signer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Approve,
    Deny,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Approve => "approve",
            Kind::Deny => "deny",
        }
    }
}

/// The canonical bytes for `values` (one per [`FIELDS`] entry after `kind`), with `kind`.
/// Line breaks inside a value become spaces: one field, one line.
pub fn payload(kind: Kind, values: &[String]) -> Vec<u8> {
    let mut out = String::from(MAGIC);
    out.push('\n');
    let all = std::iter::once(kind.as_str().to_string()).chain(values.iter().cloned());
    for (key, value) in FIELDS.iter().zip(all) {
        let value: String = value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.push_str(key);
        out.push_str(": ");
        out.push_str(value.trim_end());
        out.push('\n');
    }
    out.into_bytes()
}

/// The fields of a payload, in order; refuses anything not laid out as [`payload`] writes it.
pub fn fields(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "the signed text is not UTF-8".to_string())?;
    let mut lines = text.split_terminator('\n');
    if lines.next() != Some(MAGIC) {
        return Err(format!(
            "not a jitd request (it does not start with \"{MAGIC}\")"
        ));
    }
    let mut out = Vec::new();
    for (want, line) in FIELDS.iter().zip(lines.by_ref()) {
        let Some((key, value)) = line.split_once(": ") else {
            return Err(format!("line \"{line}\" is not `key: value`"));
        };
        if key != *want {
            return Err(format!("expected the field {want}, found {key}"));
        }
        out.push((key.to_string(), value.to_string()));
    }
    if out.len() != FIELDS.len() || lines.next().is_some() {
        return Err("the request does not have exactly the fields of version 1".into());
    }
    Ok(out)
}

/// The value of `key` among `fields`.
pub fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// The payload with its kind replaced (what an approver signs to deny a blob it was given).
pub fn with_kind(bytes: &[u8], kind: Kind) -> Result<Vec<u8>, String> {
    let f = fields(bytes)?;
    let values: Vec<String> = f.into_iter().skip(1).map(|(_, v)| v).collect();
    Ok(payload(kind, &values))
}

/// The armored blob: a readable summary line, then the payload in base64.
pub fn blob(summary: &str, payload: &[u8]) -> String {
    let summary: String = summary.chars().filter(|c| !c.is_control()).collect();
    format!(
        "{BLOB_BEGIN}\n{summary}\n\n{}{BLOB_END}\n",
        wrap(&encode(payload))
    )
}

/// The payload of a pasted blob (or of the first part of a token).
pub fn unblob(text: &str) -> Result<Vec<u8>, String> {
    let body = between(text, BLOB_BEGIN, BLOB_END)
        .ok_or("no request blob here: it starts with \"-----BEGIN JITD REQUEST-----\"")?;
    // The first line is the summary for people; only the base64 after it counts. A chat
    // client may have turned line ends into CRLF or dropped the blank line.
    let body = body.replace('\r', "");
    let b64 = body.split_once('\n').map_or("", |(_, b)| b);
    let bytes = decode(b64)?;
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err("the request blob is too long".into());
    }
    Ok(bytes)
}

/// A token: the signed payload, then the signature as `ssh-keygen -Y sign` printed it.
pub fn token(payload: &[u8], signature: &str) -> String {
    format!(
        "{TOKEN_BEGIN}\n{}{TOKEN_END}\n{}\n",
        wrap(&encode(payload)),
        signature.trim()
    )
}

/// The signed payload and the signature armor of a token.
pub fn untoken(text: &[u8]) -> Result<(Vec<u8>, String), String> {
    if text.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "a token is at most {MAX_TOKEN_BYTES} bytes; this is {}: not a jitd token",
            text.len()
        ));
    }
    let text = std::str::from_utf8(text).map_err(|_| "not a jitd token (not text)".to_string())?;
    let body = between(text, TOKEN_BEGIN, TOKEN_END)
        .ok_or("not a jitd token: it starts with \"-----BEGIN JITD TOKEN-----\"")?;
    let payload = decode(body)?;
    let sig = between(text, SIG_BEGIN, SIG_END)
        .ok_or("the token holds no SSH signature (\"-----BEGIN SSH SIGNATURE-----\")")?;
    let sig = format!("{SIG_BEGIN}\n{}\n{SIG_END}\n", sig.trim());
    Ok((payload, sig))
}

fn between<'a>(text: &'a str, begin: &str, end: &str) -> Option<&'a str> {
    let start = text.find(begin)? + begin.len();
    let len = text[start..].find(end)?;
    Some(text[start..start + len].trim_matches(['\n', '\r', ' ']))
}

fn wrap(b64: &str) -> String {
    let mut out = String::new();
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64; whitespace (line breaks a chat client added) is skipped.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut padded = false;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            padded = true;
            continue;
        }
        if padded {
            return Err("the base64 goes on after its padding".into());
        }
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .ok_or_else(|| format!("'{}' is not base64", c.escape_ascii()))?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Vec<String> {
        FIELDS[1..].iter().map(|f| format!("v-{f}")).collect()
    }

    #[test]
    fn base64_round_trips_every_length() {
        for n in 0..20 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37 + 5) as u8).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(encode(b"hello"), "aGVsbG8=");
        assert!(decode("a*b").is_err());
    }

    #[test]
    fn a_blob_survives_rewrapping_and_a_token_splits_back() {
        let p = payload(Kind::Approve, &values());
        let b = blob("alice asks", &p);
        let rewrapped = b.replace('\n', "\r\n");
        assert_eq!(unblob(&rewrapped).unwrap(), p);
        assert_eq!(unblob(&b.replacen("\n\n", "\n", 1)).unwrap(), p);
        let f = fields(&p).unwrap();
        assert_eq!(field(&f, "kind"), "approve");
        assert_eq!(field(&f, "nonce"), "v-nonce");
        let d = with_kind(&p, Kind::Deny).unwrap();
        assert_eq!(field(&fields(&d).unwrap(), "kind"), "deny");
        let t = token(
            &p,
            "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----",
        );
        let (back, sig) = untoken(t.as_bytes()).unwrap();
        assert_eq!(back, p);
        assert!(sig.contains("AAAA"));
    }

    #[test]
    fn garbage_is_refused_with_words() {
        assert!(
            untoken(&vec![b'A'; 1 << 20])
                .unwrap_err()
                .contains("at most")
        );
        assert!(
            untoken(&[0xff, 0x00, 0x13])
                .unwrap_err()
                .contains("not text")
        );
        let reordered = "jitd-approval v1\nsite: x\nkind: approve\n";
        assert!(fields(reordered.as_bytes()).is_err());
    }
}
