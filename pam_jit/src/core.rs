//! Every decision pam_jit makes, written against two seams so it runs without PAM or a bus:
//! [`Pam`] (the handle: items, conversation, module data, log, account lookups) and
//! [`GateClient`] (jitd's `Gate` interface).
//!
//! Whose grant is checked (the *subject*):
//! 1. the real uid of the process, when it is not 0. `su` runs with the invoker's real uid, so
//!    this is the kernel's word for who typed `su`, and nothing the user controls can change it;
//! 2. otherwise `PAM_RUSER`, when set. `sudo` switches its real uid to 0 before PAM runs and
//!    sets `PAM_RUSER` to the invoking user it resolved from its own real uid at start-up;
//!    `PAM_USER` would be wrong there in the session phase (the target user) and under
//!    `rootpw`/`targetpw`;
//! 3. otherwise `PAM_USER`: services started by root for someone else, such as `sshd` and
//!    `login`, where the user being let in is the subject.
//!
//! The subject uid 0 is never gated: root needs no elevation, and a break-glass root login must
//! not depend on jitd.

use jitd::wire::{GateDecision, PrivilegeInfo, RequestOutcome, SessionInfo};

use crate::args::{FailMode, Options};

/// PAM return codes pam_jit uses (values of Linux-PAM's `_pam_types.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success = 0,
    ServiceErr = 3,
    SystemErr = 4,
    PermDenied = 6,
    AuthErr = 7,
    AuthinfoUnavail = 9,
    UserUnknown = 10,
    SessionErr = 14,
    Ignore = 25,
}

/// The PAM items pam_jit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Service,
    User,
    Ruser,
    Tty,
    Rhost,
}

/// Conversation message styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    PromptEchoOn,
    ErrorMsg,
    TextInfo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Notice,
    Warning,
    Err,
    Alert,
}

/// What the core needs from the PAM handle and the host.
pub trait Pam {
    /// An item as text. `Ok(None)` when unset; `Err` when PAM fails or the text is not UTF-8.
    fn item(&self, item: Item) -> Result<Option<String>, String>;
    /// One message through the application's conversation; the reply for prompts.
    fn converse(&self, style: Style, text: &str) -> Result<Option<String>, String>;
    /// The process's real uid, from the kernel.
    fn real_uid(&self) -> u32;
    fn pid(&self) -> u32;
    /// The uid of an account name, from NSS.
    fn uid_of(&self, name: &str) -> Option<u32>;
    /// Keeps the session id between open_session and close_session (PAM module data).
    fn set_session_id(&mut self, id: &str) -> Result<(), String>;
    fn session_id(&self) -> Option<String>;
    fn log(&self, level: Level, msg: &str);
    /// Whether the application asked for silence (`PAM_SILENT`).
    fn silent(&self) -> bool;
}

/// Why an exchange with jitd did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateError {
    /// No answer: bus or daemon down, timeout, malformed reply. The fail mode applies.
    Unreachable(String),
    /// jitd answered with an error (`org.jitd.Jitd1.Error.*`): its message is for the user.
    Refused { name: String, message: String },
}

/// jitd's `Gate` interface, as the core uses it.
pub trait GateClient {
    fn check(
        &mut self,
        uid: u32,
        service: &str,
        tty: &str,
        rhost: &str,
    ) -> Result<GateDecision, GateError>;
    fn request(
        &mut self,
        uid: u32,
        privilege: &str,
        duration_secs: u64,
        reason: &str,
        ticket: &str,
    ) -> Result<RequestOutcome, GateError>;
    /// What `uid` may request in place for `service`; `None` when jitd cannot say (a jitd
    /// from before the call), and the prompt then asks without choices.
    fn choices(
        &mut self,
        _uid: u32,
        _service: &str,
    ) -> Result<Option<Vec<PrivilegeInfo>>, GateError> {
        Ok(None)
    }
    fn session_opened(&mut self, s: &SessionInfo) -> Result<String, GateError>;
    fn session_closed(&mut self, id: &str) -> Result<(), GateError>;
}

/// Who the grant is checked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub uid: u32,
    /// How the uid was found, for the log.
    pub source: &'static str,
}

impl Subject {
    /// Whether the kernel (the real uid) or sudo (PAM_RUSER, from sudo's own real uid) says who
    /// is asking, as opposed to a name typed at a login prompt (PAM_USER). Only such an invoker
    /// may request a grant in place or be told what they could request.
    pub fn invoker_known(&self) -> bool {
        self.source != "PAM_USER"
    }
}

/// Resolves the subject as the module documentation says. `Err` carries the code to return.
pub fn subject(pam: &dyn Pam) -> Result<Subject, Code> {
    let ruid = pam.real_uid();
    if ruid != 0 {
        return Ok(Subject {
            uid: ruid,
            source: "real uid",
        });
    }
    for (item, source) in [(Item::Ruser, "PAM_RUSER"), (Item::User, "PAM_USER")] {
        match pam.item(item) {
            Err(e) => {
                pam.log(Level::Err, &format!("cannot read {source}: {e}"));
                return Err(Code::ServiceErr);
            }
            Ok(Some(name)) if !name.is_empty() => {
                return match pam.uid_of(&name) {
                    Some(uid) => Ok(Subject { uid, source }),
                    None => {
                        pam.log(
                            Level::Notice,
                            &format!("{source} {:?} has no account", name.escape_debug()),
                        );
                        Err(Code::UserUnknown)
                    }
                };
            }
            Ok(_) => {}
        }
    }
    pam.log(Level::Err, "no user to check: PAM_RUSER and PAM_USER unset");
    Err(Code::UserUnknown)
}

/// The facts of this PAM call that jitd is told.
pub(crate) struct Context {
    service: String,
    tty: String,
    rhost: String,
}

/// What a phase does before asking jitd.
enum Prepared {
    /// Ask jitd about this subject in this context.
    Check(Subject, Context),
    /// The subject is root, never gated.
    Root,
    /// The PAM line's `services=` leaves this service alone.
    NotGated,
    /// Deny with this code.
    Fail(Code),
}

fn prepare(pam: &dyn Pam, o: &Options) -> Prepared {
    // The service first: a service this line leaves alone costs no account lookup.
    let cx = match context(pam) {
        Ok(cx) => cx,
        Err(code) => return Prepared::Fail(code),
    };
    if !gated(o, &cx.service) {
        return Prepared::NotGated;
    }
    let who = match subject(pam) {
        Ok(who) => who,
        Err(code) => return Prepared::Fail(code),
    };
    if who.uid == 0 {
        if o.debug {
            pam.log(Level::Debug, "subject is root: not gated");
        }
        return Prepared::Root;
    }
    Prepared::Check(who, cx)
}

/// Whether this service is one the PAM line asks pam_jit to gate. The services jitd routes a
/// privilege's commands to (`jitd-*`, sudo's stack included under another name) exist only to
/// be gated: always, whatever `services=` lists.
fn gated(o: &Options, service: &str) -> bool {
    service.starts_with(JITD_SERVICE_PREFIX)
        || o.services
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == service))
}

/// Prefix of the services jitd routes commands to (`jitd::policy::routes::SERVICE_PREFIX`,
/// which pam_jit does not link).
const JITD_SERVICE_PREFIX: &str = "jitd-";

fn context(pam: &dyn Pam) -> Result<Context, Code> {
    let get = |item: Item| match pam.item(item) {
        Ok(v) => Ok(v.unwrap_or_default()),
        Err(e) => {
            pam.log(Level::Err, &format!("cannot read {item:?}: {e}"));
            Err(Code::ServiceErr)
        }
    };
    let service = get(Item::Service)?;
    if service.is_empty() {
        pam.log(Level::Err, "PAM_SERVICE is unset");
        return Err(Code::ServiceErr);
    }
    Ok(Context {
        service,
        tty: get(Item::Tty)?,
        rhost: get(Item::Rhost)?,
    })
}

/// Says something to the user. `PAM_SILENT` is not enough to keep quiet: sudo sets it on every
/// account check, and a refused user must learn what to run. Only the `silent` argument of the
/// PAM line silences pam_jit; `PAM_SILENT` still drops informational lines.
pub(crate) fn tell(pam: &dyn Pam, o: &Options, style: Style, text: &str) {
    if o.silent || text.is_empty() || (style == Style::TextInfo && pam.silent()) {
        return;
    }
    // A failed message changes no decision; the log has the reason anyway.
    if let Err(e) = pam.converse(style, text) {
        pam.log(Level::Debug, &format!("conversation failed: {e}"));
    }
}

/// The outcome when jitd cannot answer, by fail mode.
pub(crate) fn unreachable(pam: &dyn Pam, o: &Options, uid: u32, why: &str, deny: Code) -> Code {
    match o.fail {
        FailMode::Closed => {
            pam.log(
                Level::Err,
                &format!("uid {uid}: denied, jitd did not answer ({why}); fail=closed"),
            );
            tell(
                pam,
                o,
                Style::ErrorMsg,
                "jitd is not answering, so elevation cannot be confirmed: access denied. \
                 Ask an administrator (break-glass: the root account, which jitd never gates).",
            );
            deny
        }
        FailMode::Open => {
            pam.log(
                Level::Alert,
                &format!("uid {uid}: ALLOWED WITHOUT A GRANT because jitd did not answer ({why}) and this PAM line says fail=open"),
            );
            Code::Success
        }
    }
}

/// `account`: success only while jitd confirms a live grant covering this service.
pub fn account(pam: &mut dyn Pam, gate: &mut dyn GateClient, o: &Options) -> Code {
    gatekeep(pam, gate, o, o.interactive, Code::PermDenied)
}

/// `auth`: makes sure a grant exists, asking for one in place when there is none — but it
/// never authenticates anyone: with a grant the answer is `PAM_IGNORE`, so no control flag
/// (`sufficient`, `[success=done]`) can turn pam_jit into a password bypass; the stack's real
/// authenticators decide. Without a grant it refuses (`PAM_AUTH_ERR`).
pub fn authenticate(pam: &mut dyn Pam, gate: &mut dyn GateClient, o: &Options) -> Code {
    match gatekeep(pam, gate, o, true, Code::AuthErr) {
        Code::Success => Code::Ignore,
        other => other,
    }
}

fn gatekeep(
    pam: &mut dyn Pam,
    gate: &mut dyn GateClient,
    o: &Options,
    ask: bool,
    deny: Code,
) -> Code {
    let (who, cx) = match prepare(pam, o) {
        Prepared::Check(who, cx) => (who, cx),
        Prepared::Root => return Code::Success,
        Prepared::NotGated => return Code::Ignore,
        Prepared::Fail(code) => return code,
    };
    let decision = match gate.check(who.uid, &cx.service, &cx.tty, &cx.rhost) {
        Ok(d) => d,
        Err(GateError::Unreachable(why)) => return unreachable(pam, o, who.uid, &why, deny),
        Err(GateError::Refused { name, message }) => {
            pam.log(
                Level::Err,
                &format!("uid {}: jitd refused the check: {name}: {message}", who.uid),
            );
            return deny;
        }
    };
    if decision.allowed {
        if o.debug {
            pam.log(
                Level::Info,
                &format!(
                    "uid {} ({}): allowed for {} by grant {} ({})",
                    who.uid, who.source, cx.service, decision.grant_id, decision.privilege
                ),
            );
        }
        return Code::Success;
    }
    if ask && who.invoker_known() {
        return in_place::request(pam, gate, o, &who, &cx, &decision.message, deny);
    }
    if !who.invoker_known() {
        // The subject is only the name someone typed (PAM_USER: sshd, login, ...): no request
        // in their name, and no word on what they may request, to someone not yet known.
        pam.log(
            Level::Notice,
            &format!(
                "uid {} ({}): denied for {}: no live grant (no in-place request for a subject \
                 named by PAM_USER)",
                who.uid, who.source, cx.service
            ),
        );
        tell(
            pam,
            o,
            Style::ErrorMsg,
            "access needs a live jitd grant for this account",
        );
        return deny;
    }
    pam.log(
        Level::Notice,
        &format!(
            "uid {} ({}): denied for {}: no live grant",
            who.uid, who.source, cx.service
        ),
    );
    tell(pam, o, Style::ErrorMsg, &decision.message);
    deny
}

/// `session` open: records the elevated session with jitd under the grant that allows it.
pub fn open_session(pam: &mut dyn Pam, gate: &mut dyn GateClient, o: &Options) -> Code {
    let (who, cx) = match prepare(pam, o) {
        Prepared::Check(who, cx) => (who, cx),
        // Root's sessions are not elevated sessions: nothing to record.
        Prepared::Root | Prepared::NotGated => return Code::Ignore,
        Prepared::Fail(code) => return code,
    };
    let decision = match gate.check(who.uid, &cx.service, &cx.tty, &cx.rhost) {
        Ok(d) => d,
        Err(GateError::Unreachable(why)) => {
            return unreachable(pam, o, who.uid, &why, Code::SessionErr);
        }
        Err(GateError::Refused { name, message }) => {
            pam.log(
                Level::Err,
                &format!("session check refused: {name}: {message}"),
            );
            return Code::SessionErr;
        }
    };
    if !decision.allowed {
        // Not an elevated session (the account phase decides access): nothing to record.
        return Code::Ignore;
    }
    let info = SessionInfo {
        grant_id: decision.grant_id.clone(),
        uid: who.uid,
        pid: pam.pid(),
        service: cx.service,
        tty: cx.tty,
        rhost: cx.rhost,
    };
    match gate.session_opened(&info) {
        Ok(id) => {
            if let Err(e) = pam.set_session_id(&id) {
                pam.log(Level::Err, &format!("cannot keep session id {id}: {e}"));
            }
            if o.debug {
                pam.log(
                    Level::Info,
                    &format!("session {id} opened under grant {}", info.grant_id),
                );
            }
            Code::Success
        }
        Err(GateError::Unreachable(why)) => unreachable(pam, o, who.uid, &why, Code::SessionErr),
        Err(GateError::Refused { name, message }) => {
            pam.log(
                Level::Err,
                &format!("jitd refused the session record: {name}: {message}"),
            );
            Code::SessionErr
        }
    }
}

/// `session` close: tells jitd the recorded session ended. Never fails the close.
pub fn close_session(pam: &mut dyn Pam, gate: &mut dyn GateClient, o: &Options) -> Code {
    let Some(id) = pam.session_id() else {
        return Code::Ignore;
    };
    match gate.session_closed(&id) {
        Ok(()) => {
            if o.debug {
                pam.log(Level::Info, &format!("session {id} closed"));
            }
        }
        Err(e) => pam.log(
            Level::Warning,
            &format!("could not record the end of session {id}: {e:?}"),
        ),
    }
    Code::Success
}

mod in_place;

#[cfg(test)]
mod tests;
