//! The one thing jitd reads inside an SSH signature itself: whether a FIDO (`sk-`) key's
//! signature says the user touched the key. `ssh-keygen -Y verify` checks the signature, but
//! whether it insists on the user-presence flag is not documented for `-Y` (sshd does, unless
//! `no-touch-required`), so jitd checks the flag itself.
//!
//! Layout (OpenSSH PROTOCOL.sshsig and PROTOCOL.u2f): the armored blob is `"SSHSIG"`, uint32
//! version, string public key, string namespace, string reserved, string hash algorithm,
//! string signature; for an `sk-` key the signature is string type, string signature bytes,
//! byte flags, uint32 counter. Flag 0x01 is user presence.

#![forbid(unsafe_code)]

/// What the signature says about presence: `None` for a key that is not a FIDO key.
pub fn sk_user_present(armored: &str) -> Result<Option<bool>, String> {
    let body: String = armored
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let blob = crate::signed_request::decode(&body).map_err(|e| format!("signature: {e}"))?;
    let mut r = Reader(&blob);
    if r.take(6)? != b"SSHSIG" {
        return Err("not an SSH signature (no SSHSIG magic)".into());
    }
    r.u32()?;
    let key = r.string()?;
    let key_type = Reader(key).string()?;
    for _ in 0..3 {
        r.string()?; // namespace, reserved, hash algorithm
    }
    let mut sig = Reader(r.string()?);
    let sig_type = sig.string()?;
    if !key_type.starts_with(b"sk-") {
        return Ok(None);
    }
    if !sig_type.starts_with(b"sk-") {
        return Err("a FIDO key's signature is not a FIDO signature".into());
    }
    sig.string()?;
    let flags = sig.take(1)?[0];
    sig.u32()?;
    Ok(Some(flags & 0x01 != 0))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the SSH signature is cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    }

    /// An SSHSIG blob laid out as OpenSSH writes one for a key of `key_type`. The fixture is
    /// built here, not recorded from a device: no FIDO key is attached to this machine. The
    /// signature bytes are not a valid signature (ssh-keygen checks those); only the layout
    /// and the flags byte matter to this check.
    fn fixture(key_type: &str, flags: Option<u8>) -> String {
        let mut key = Vec::new();
        string(&mut key, key_type.as_bytes());
        string(&mut key, &[7u8; 32]);
        if key_type.starts_with("sk-") {
            string(&mut key, b"ssh:");
        }
        let mut sig = Vec::new();
        string(
            &mut sig,
            key_type
                .trim_end_matches("-cert-v01@openssh.com")
                .as_bytes(),
        );
        string(&mut sig, &[9u8; 64]);
        if let Some(f) = flags {
            sig.push(f);
            sig.extend_from_slice(&42u32.to_be_bytes());
        }
        let mut blob = b"SSHSIG".to_vec();
        blob.extend_from_slice(&1u32.to_be_bytes());
        string(&mut blob, &key);
        string(&mut blob, b"jitd-mfa-v1@example.org");
        string(&mut blob, b"");
        string(&mut blob, b"sha512");
        string(&mut blob, &sig);
        format!(
            "-----BEGIN SSH SIGNATURE-----\n{}\n-----END SSH SIGNATURE-----\n",
            crate::signed_request::encode(&blob)
        )
    }

    #[test]
    fn the_presence_flag_of_a_fido_signature_is_read_and_other_keys_have_none() {
        let touched = fixture("sk-ssh-ed25519@openssh.com", Some(0x01));
        assert_eq!(sk_user_present(&touched).unwrap(), Some(true));
        let untouched = fixture("sk-ssh-ed25519@openssh.com", Some(0x00));
        assert_eq!(sk_user_present(&untouched).unwrap(), Some(false));
        let verified_only = fixture("sk-ssh-ed25519@openssh.com", Some(0x04));
        assert_eq!(sk_user_present(&verified_only).unwrap(), Some(false));
        let plain = fixture("ssh-ed25519", None);
        assert_eq!(sk_user_present(&plain).unwrap(), None);
        let cut = fixture("sk-ssh-ed25519@openssh.com", None);
        assert!(sk_user_present(&cut).is_err());
        assert!(sk_user_present("-----BEGIN SSH SIGNATURE-----\nAAAA\n").is_err());
    }
}
