//! Approvals signed with SSH keys, for approvers who are not on this host: jitd hands out a
//! request blob (the exact bytes to sign, bound to this request, this host, this policy and a
//! nonce of jitd's), and takes back a token: those bytes signed with `ssh-keygen -Y sign -n
//! jitd-approve-v1@SITE`. A token is checked byte for byte against jitd's own rebuild of the
//! request, verified by `ssh-keygen -Y verify` against `approvers.allowed_signers` at jitd's
//! own time, consumed once in the state database, and then cast as the vote of the account
//! its principal names — so the quorum's rules (one person once, never the requester or
//! `same_person`, approvers counted at decision time) apply to it as to a vote on the bus.

#![forbid(unsafe_code)]

use sha2::{Digest, Sha256};

use super::{Caller, Core};
use crate::audit::AuditEvent;
use crate::client::{Error, RequestInfo};
use crate::clock::{sudoers_stamp, utc};
use crate::effects::ssh_keygen;
use crate::names::RequestId;
use crate::signed_request::{self as sr, Kind};
use crate::store::{Binding, RequestRecord};

/// Largest approvers.allowed_signers jitd reads.
const MAX_SIGNERS_BYTES: u64 = 256 * 1024;

impl Core {
    /// Binds a new pending request for signing: a nonce and the digest of its rule and
    /// privilege now. A failure leaves the request usable on the bus, without signed approvals.
    pub(super) fn bind_for_signing(&self, q: &RequestRecord) {
        let nonce = match (crate::sys::random_bits(), crate::sys::random_bits()) {
            (Ok(a), Ok(b)) => format!("{a:016x}{b:016x}"),
            _ => return,
        };
        let b = Binding {
            nonce,
            policy: self.policy_digest(&q.rule, &q.privilege),
        };
        let _ = self
            .store
            .insert_binding(&q.id, &b, self.clock.now().wall_ms);
    }

    /// `sha256:` over the rule and the privilege as the loaded policy defines them.
    fn policy_digest(&self, rule: &str, privilege: &str) -> String {
        let mut h = Sha256::new();
        h.update(format!("{:?}", self.policy.rule(rule)).as_bytes());
        h.update(b"\n");
        h.update(format!("{:?}", self.policy.privilege(privilege)).as_bytes());
        format!("sha256:{:x}", h.finalize())
    }

    fn signed_payload(&self, q: &RequestRecord, b: &Binding, kind: Kind) -> Vec<u8> {
        let max = self.policy.rule(&q.rule).map_or(0, |r| r.max_secs);
        let values = [
            self.cfg.site.clone(),
            q.id.to_string(),
            machine_id(),
            self.hostname.clone(),
            q.uid.to_string(),
            q.user.clone(),
            q.privilege.clone(),
            q.grants.clone(),
            q.duration_secs.to_string(),
            max.to_string(),
            utc(q.expires_ms),
            b.policy.clone(),
            b.nonce.clone(),
            q.reason.clone(),
        ];
        sr::payload(kind, &values)
    }

    pub(super) fn signing_on(&self) -> Result<(), Error> {
        if self.cfg.site.is_empty() {
            return Err(Error::NotAllowed(
                "signed approvals are off on this host: set `site` in jitd.toml".into(),
            ));
        }
        Ok(())
    }

    /// The blob an approver elsewhere signs, for the requester, an approver or an admin.
    pub fn request_blob(&mut self, by: Caller, id: &str) -> Result<String, Error> {
        self.usable()?;
        self.signing_on()?;
        let rid = RequestId::parse(id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let q = self
            .store
            .get_request(&rid)
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let allowed = |q: &RequestRecord| {
            q.uid == by.uid
                || by.admin
                || self
                    .requester(by.uid)
                    .is_some_and(|me| self.may_decide(&me, q).is_ok())
        };
        let Some(q) = q.filter(allowed) else {
            return Err(Error::NotFound(format!("no request {rid} you may see")));
        };
        let q = self.pending_request(q.id.as_str(), by.uid, "blob")?;
        let b = self
            .store
            .binding(&q.id)
            .map_err(|e| Error::Unavailable(e.to_string()))?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "request {} was made before signed approvals were on: ask again",
                    q.id
                ))
            })?;
        Ok(self.blob_of(&q, &b))
    }

    /// The blob of pending request `id` for the approvers' notification, when signed
    /// approvals are on (`None` otherwise: the note then carries only the host's command).
    pub(super) fn signable_blob(&self, id: &str) -> Option<String> {
        if self.cfg.site.is_empty() {
            return None;
        }
        let rid = RequestId::parse(id).ok()?;
        let q = self.store.get_request(&rid).ok()??;
        let b = self.store.binding(&q.id).ok()??;
        Some(self.blob_of(&q, &b))
    }

    fn blob_of(&self, q: &RequestRecord, b: &Binding) -> String {
        let summary = format!(
            "{}@{} asks for {} for {} (request {}, until {})",
            q.user,
            self.hostname,
            q.privilege,
            crate::duration::format(q.duration_secs),
            q.id,
            utc(q.expires_ms)
        );
        sr::blob(&summary, &self.signed_payload(q, b, Kind::Approve))
    }

    /// Verifies a token and casts it as its signer's vote. Every refusal says why and is
    /// audited; nothing is counted unless every check passed.
    pub fn submit_token(&mut self, by: u32, token: &[u8]) -> Result<RequestInfo, Error> {
        self.usable()?;
        self.signing_on()?;
        let bad = |why: String| Error::InvalidArgument(why);
        let (payload, sig) = sr::untoken(token).map_err(bad)?;
        let fields = sr::fields(&payload)
            .map_err(|e| bad(format!("the signed text is not a jitd request: {e}")))?;
        let kind = match sr::field(&fields, "kind") {
            "approve" => Kind::Approve,
            "deny" => Kind::Deny,
            other => return Err(bad(format!("kind \"{other}\" is neither approve nor deny"))),
        };
        let sig_digest = signature_digest(&sig).map_err(bad)?;
        let id = sr::field(&fields, "request").to_string();
        let refuse = |core: &Self, why: String| {
            if let Ok(rid) = RequestId::parse(&id) {
                core.refused(&rid, by, "submit", &why);
            }
            Error::InvalidArgument(why)
        };
        if let Some((was_for, at)) = self
            .store
            .token_used(&sig_digest)
            .map_err(|e| Error::Unavailable(e.to_string()))?
        {
            return Err(refuse(
                self,
                format!(
                    "this token was already used (request {was_for}, at {}): a signature counts once",
                    utc(at)
                ),
            ));
        }
        let q = self.pending_request(&id, by, "submit")?;
        let b = self
            .store
            .binding(&q.id)
            .map_err(|e| Error::Unavailable(e.to_string()))?
            .ok_or_else(|| {
                refuse(
                    self,
                    format!("request {id} cannot be approved by a token: ask again"),
                )
            })?;
        if b.policy != self.policy_digest(&q.rule, &q.privilege) {
            return Err(refuse(
                self,
                format!(
                    "the policy of rule \"{}\" or privilege {} changed since request {id} was made: \
                     the token approves the old one. Request again",
                    q.rule, q.privilege
                ),
            ));
        }
        let expected = self.signed_payload(&q, &b, kind);
        if payload != expected {
            return Err(refuse(self, mismatch(&fields, &expected)));
        }
        let (principal, key) = self
            .verify_signature(&sig, &payload)
            .map_err(|why| refuse(self, why))?;
        let Some(uid) = self.accounts.user_uid(&principal) else {
            return Err(refuse(
                self,
                format!("{principal}, whose key signed, has no account on this host"),
            ));
        };
        let same_person = self.policy.same_person().same(&principal, &q.user);
        if uid == q.uid || same_person {
            let how = if uid == q.uid {
                ""
            } else {
                " under another name (same_person)"
            };
            return Err(refuse(
                self,
                format!(
                    "the key is {principal}'s, and {principal} is the requester{how}: \
                     someone else must approve"
                ),
            ));
        }
        let now = self.clock.now().wall_ms;
        match self
            .store
            .use_token(&sig_digest, &q.id, &principal, kind.as_str(), now)
        {
            Ok(true) => {}
            Ok(false) => return Err(refuse(self, "this token was already used".into())),
            Err(e) => return Err(Error::Unavailable(format!("cannot record the token: {e}"))),
        }
        self.record(AuditEvent::RequestSigned {
            request: q.id.to_string(),
            kind: kind.as_str().to_string(),
            principal: principal.clone(),
            by: principal.clone(),
            key: key.clone(),
            token: String::from_utf8_lossy(token).into_owned(),
        });
        let comment = format!("signed with {}", fingerprint(&key));
        match kind {
            Kind::Approve => self.approve(uid, q.id.as_str(), &comment, 0),
            Kind::Deny => self.deny(uid, q.id.as_str(), &comment),
        }
    }

    /// The principal whose key made `sig` over `payload`, and ssh-keygen's line naming the key.
    fn verify_signature(&self, sig: &str, payload: &[u8]) -> Result<(String, String), String> {
        let namespace = sr::approve_namespace(&self.cfg.site);
        self.verify_ssh(
            &self.cfg.approvers_allowed_signers,
            &namespace,
            sig,
            payload,
        )
    }

    /// `ssh-keygen -Y find-principals` then `-Y verify` of `sig` over `payload` against the
    /// keys file `path` (checked as policy first), at jitd's time, with the revoked keys; a
    /// FIDO key's signature must also carry the user-presence flag.
    pub(super) fn verify_ssh(
        &self,
        path: &std::path::Path,
        namespace: &str,
        sig: &str,
        payload: &[u8],
    ) -> Result<(String, String), String> {
        let unusable = |why: String| {
            format!(
                "the keys in {} are not usable, so no signature counts: {why}",
                path.display()
            )
        };
        let text = match crate::policy::trust::read(path, MAX_SIGNERS_BYTES) {
            Ok((text, None)) => text,
            Ok((_, Some(why))) | Err(why) => return Err(unusable(why)),
        };
        ssh_keygen::check_allowed_signers(&text, &self.cfg.site).map_err(unusable)?;
        if crate::sshsig::sk_user_present(sig)? == Some(false) {
            return Err(
                "the FIDO key was not touched: its signature lacks the user-presence flag".into(),
            );
        }
        let dir = self.cfg.state_dir.join("signatures");
        let file =
            SigFile::write(&dir, sig).map_err(|e| format!("cannot check the signature: {e}"))?;
        let time = sudoers_stamp(self.clock.now().wall_ms.div_euclid(1000));
        let tool = &self.cfg.ssh_keygen;
        let principals = ssh_keygen::find_principals(tool, path, &file.0, &time).map_err(|e| {
            format!(
                "no key in {} made this signature, or it is not valid now ({e})",
                path.display()
            )
        })?;
        let revoked = self
            .cfg
            .approvers_revoked
            .exists()
            .then_some(self.cfg.approvers_revoked.as_path());
        let mut last = String::new();
        for p in principals {
            match ssh_keygen::verify(tool, path, &p, namespace, &file.0, &time, revoked, payload) {
                Ok(line) => return Ok((p, line)),
                Err(e) => last = e,
            }
        }
        Err(format!(
            "the signature does not verify for namespace {namespace} (revoked key, wrong \
             namespace or another text): {last}"
        ))
    }
}

/// The host's machine id, as systemd keeps it ("" when there is none).
pub(super) fn machine_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The SHA-256 of the signature's bytes (not of its armor, which whitespace can vary).
fn signature_digest(sig: &str) -> Result<String, String> {
    let body: String = sig.lines().filter(|l| !l.starts_with("-----")).collect();
    let bytes = sr::decode(&body).map_err(|e| format!("the SSH signature is not base64: {e}"))?;
    if bytes.is_empty() {
        return Err("the SSH signature is empty".into());
    }
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

/// What differs between a token's signed fields and this request's.
fn mismatch(got: &[(String, String)], expected: &[u8]) -> String {
    let want = sr::fields(expected).unwrap_or_default();
    // Another request's nonce says the most: name it before the fields that follow from it.
    let mut pairs: Vec<_> = got.iter().zip(&want).collect();
    pairs.sort_by_key(|((key, _), _)| key != "nonce");
    for ((key, theirs), (_, ours)) in pairs {
        if theirs != ours {
            let hint = match key.as_str() {
                "machine-id" | "hostname" | "site" => "it is for another host",
                "nonce" | "request" => "it is for another request",
                "policy" => "the policy changed: request again",
                _ => "it was signed for something else",
            };
            return format!(
                "the token's {key} is \"{theirs}\" but this request's is \"{ours}\": {hint}"
            );
        }
    }
    "the signed text is not the one jitd issued for this request (re-serialised or altered)".into()
}

/// "SHA256:..." from ssh-keygen's "Good ... signature for P with ED25519 key SHA256:..." line.
fn fingerprint(line: &str) -> &str {
    line.split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or(line)
}

/// A signature written to jitd's private directory for ssh-keygen to read, removed on drop.
struct SigFile(std::path::PathBuf);

impl SigFile {
    fn write(dir: &std::path::Path, sig: &str) -> std::io::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let _ = std::fs::DirBuilder::new().mode(0o700).create(dir);
        let name = format!("{:016x}.sig", crate::sys::random_bits()?);
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        std::io::Write::write_all(&mut f, sig.as_bytes())?;
        Ok(Self(path))
    }
}

impl Drop for SigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
