//! `mfa = "ssh-sk"`: a request under such a rule needs a fresh proof of its requester, a
//! signature by their own key (from `users.allowed_signers`, principal = their account) over a
//! nonce jitd handed out to them, under the namespace `jitd-mfa-v1@SITE`. Each nonce is
//! proven once and each proof serves one request, within [`PROOF_SECS`]; a FIDO key's proof
//! must carry the user-presence flag (checked by jitd itself, see `sshsig`).

#![forbid(unsafe_code)]

use super::Core;
use crate::audit::AuditEvent;
use crate::client::Error;
use crate::signed_request as sr;

/// How long a challenge may wait for its proof, and a proof for its request.
const PROOF_SECS: i64 = 120;

impl Core {
    fn mfa_payload(&self, uid: u32, user: &str, nonce: &str) -> Vec<u8> {
        format!(
            "jitd-mfa v1\nsite: {}\nmachine-id: {}\nhostname: {}\nuid: {uid}\nuser: {user}\nnonce: {nonce}\n",
            self.cfg.site,
            super::signed::machine_id(),
            self.hostname
        )
        .into_bytes()
    }

    /// A fresh challenge for the caller to sign with their own key.
    pub fn mfa_challenge(&mut self, uid: u32) -> Result<String, Error> {
        self.usable()?;
        self.signing_on()?;
        let who = self
            .requester(uid)
            .ok_or_else(|| Error::NotAllowed(format!("uid {uid} has no account on this host")))?;
        let nonce = match (crate::sys::random_bits(), crate::sys::random_bits()) {
            (Ok(a), Ok(b)) => format!("{a:016x}{b:016x}"),
            (Err(e), _) | (_, Err(e)) => return Err(Error::Unavailable(format!("no nonce: {e}"))),
        };
        self.store
            .insert_mfa_challenge(&nonce, uid, self.clock.now().wall_ms)
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        String::from_utf8(self.mfa_payload(uid, &who.name, &nonce))
            .map_err(|e| Error::Unavailable(e.to_string()))
    }

    /// Checks the caller's signed challenge; on success the next request (within
    /// [`PROOF_SECS`]) under an `mfa` rule may use it, once.
    pub fn prove_mfa(&mut self, uid: u32, proof: &[u8]) -> Result<(), Error> {
        self.usable()?;
        self.signing_on()?;
        let bad = Error::InvalidArgument;
        let who = self
            .requester(uid)
            .ok_or_else(|| Error::NotAllowed(format!("uid {uid} has no account on this host")))?;
        let (payload, sig) =
            sr::untoken(proof).map_err(|e| bad(format!("not an MFA proof: {e}")))?;
        let text = String::from_utf8_lossy(&payload).into_owned();
        let nonce = text
            .lines()
            .find_map(|l| l.strip_prefix("nonce: "))
            .ok_or_else(|| bad("not an MFA proof: it names no nonce".into()))?
            .to_string();
        let ch = self
            .store
            .mfa_challenge(&nonce)
            .map_err(|e| Error::Unavailable(e.to_string()))?
            .filter(|c| c.uid == uid)
            .ok_or_else(|| bad("this proof answers no challenge jitd gave you".into()))?;
        if ch.proven_ms != 0 {
            return Err(bad(
                "this proof was already used: a proof counts once (`jitctl elevate --mfa-key` makes a new one)".into(),
            ));
        }
        let now = self.clock.now().wall_ms;
        if now - ch.created_ms > PROOF_SECS * 1000 {
            return Err(bad(format!(
                "the challenge is older than {PROOF_SECS} s: ask for a new one"
            )));
        }
        if payload != self.mfa_payload(uid, &who.name, &nonce) {
            return Err(bad(
                "the signed text is not the challenge jitd gave you".into()
            ));
        }
        let namespace = format!("jitd-mfa-v1@{}", self.cfg.site);
        let (principal, key) = self
            .verify_ssh(&self.cfg.users_allowed_signers, &namespace, &sig, &payload)
            .map_err(bad)?;
        if principal != who.name {
            return Err(bad(format!(
                "the key is {principal}'s in {}, not yours",
                self.cfg.users_allowed_signers.display()
            )));
        }
        match self.store.prove_mfa_challenge(&nonce, now) {
            Ok(true) => {}
            Ok(false) => return Err(bad("this proof was already used".into())),
            Err(e) => return Err(Error::Unavailable(e.to_string())),
        }
        self.record(AuditEvent::MfaProven {
            uid,
            user: who.name,
            key,
        });
        Ok(())
    }

    /// Uses the caller's fresh proof for one request; false when there is none.
    pub(super) fn take_mfa(&self, uid: u32) -> bool {
        let now = self.clock.now().wall_ms;
        self.store
            .use_mfa_proof(uid, now - PROOF_SECS * 1000, now)
            .unwrap_or(false)
    }
}

/// The refusal of an `mfa` rule's request without a fresh proof.
pub(super) fn needed(rule: &str) -> String {
    format!(
        "rule \"{rule}\" needs a fresh proof with your SSH key (mfa = \"ssh-sk\"): run `jitctl \
         elevate ... --mfa-key ~/.ssh/id_ed25519_sk` (the key listed for you in \
         users.allowed_signers); each proof serves one request"
    )
}
