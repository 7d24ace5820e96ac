//! The C side: the five `pam_sm_*` entry points and the [`Pam`] implementation over a real
//! `pam_handle_t`. Everything here converts; nothing decides.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use pam_sys::{PamConversation, PamHandle, PamItemType, PamMessage, PamResponse};

use crate::args::{self, Options};
use crate::core::{self, Code, GateClient, Item, Level, Pam, Style};
use crate::gate::SocketGate;

/// `PAM_SILENT` from `_pam_types.h`.
const PAM_SILENT: c_int = 0x8000;
/// Name of the module data that carries the session id from open to close.
const SESSION_DATA: &CStr = c"pam_jit_session";

unsafe extern "C" {
    /// Linux-PAM's logger (`pam_ext.h`): `LOG_AUTHPRIV`, prefixed with module, service and
    /// phase, without touching the host's `openlog` settings.
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

type Phase = fn(&mut dyn Pam, &mut dyn GateClient, &Options) -> Code;

/// The real handle, borrowed for one call.
struct Handle {
    pamh: *mut PamHandle,
    flags: c_int,
}

impl Pam for Handle {
    fn item(&self, item: Item) -> Result<Option<String>, String> {
        let ty = match item {
            Item::Service => PamItemType::SERVICE,
            Item::User => PamItemType::USER,
            Item::Ruser => PamItemType::RUSER,
            Item::Tty => PamItemType::TTY,
            Item::Rhost => PamItemType::RHOST,
        };
        let mut value: *const c_void = ptr::null();
        // SAFETY: `pamh` is the live handle PAM passed to this entry point; `value` is a valid
        // out-pointer. For the string items asked here PAM stores a NUL-terminated string it
        // owns, valid until the item is changed, which nothing does during this call.
        let rc = unsafe { pam_sys::raw::pam_get_item(self.pamh, ty as c_int, &mut value) };
        if rc != 0 {
            return Err(format!("pam_get_item returned {rc}"));
        }
        if value.is_null() {
            return Ok(None);
        }
        // SAFETY: non-null string item, NUL-terminated and owned by PAM (see above).
        let text = unsafe { CStr::from_ptr(value.cast::<c_char>()) };
        text.to_str()
            .map(|s| Some(s.to_string()))
            .map_err(|_| "not UTF-8".to_string())
    }

    fn converse(&self, style: Style, text: &str) -> Result<Option<String>, String> {
        let mut conv: *const c_void = ptr::null();
        // SAFETY: as in `item`; PAM_CONV is a `struct pam_conv *` owned by the application.
        let rc =
            unsafe { pam_sys::raw::pam_get_item(self.pamh, PamItemType::CONV as c_int, &mut conv) };
        if rc != 0 || conv.is_null() {
            return Err("the application has no conversation".into());
        }
        // SAFETY: PAM_CONV points at the application's `struct pam_conv`, which outlives the
        // PAM transaction, so reading it during this call is sound.
        let conv = unsafe { &*conv.cast::<PamConversation>() };
        let Some(function) = conv.conv else {
            return Err("the conversation has no function".into());
        };
        let text = CString::new(text.replace('\0', " ")).map_err(|e| e.to_string())?;
        let style = match style {
            Style::PromptEchoOn => 2,
            Style::ErrorMsg => 3,
            Style::TextInfo => 4,
        };
        let mut message = PamMessage {
            msg_style: style,
            msg: text.as_ptr(),
        };
        // Linux-PAM passes an array of pointers to messages; with one message, one pointer.
        let mut messages: *mut PamMessage = &mut message;
        let mut responses: *mut PamResponse = ptr::null_mut();
        // The application is C and may misbehave; the call itself is the only way to converse.
        let rc = function(1, &mut messages, &mut responses, conv.data_ptr);
        if responses.is_null() {
            return if rc == 0 {
                Ok(None)
            } else {
                Err(format!("conversation returned {rc}"))
            };
        }
        // SAFETY: on return the application hands over a malloc'ed array of one response
        // (num_msg = 1) whose `resp` is NULL or a malloc'ed NUL-terminated string; we own both
        // and must free them with free(3).
        let answer = unsafe {
            let reply = (*responses).resp;
            let answer = if reply.is_null() {
                None
            } else {
                let s = CStr::from_ptr(reply).to_string_lossy().into_owned();
                let len = libc::strlen(reply);
                ptr::write_bytes(reply, 0, len);
                libc::free(reply.cast());
                Some(s)
            };
            libc::free(responses.cast());
            answer
        };
        if rc != 0 {
            return Err(format!("conversation returned {rc}"));
        }
        Ok(answer)
    }

    fn real_uid(&self) -> u32 {
        // SAFETY: getuid cannot fail and has no preconditions.
        unsafe { libc::getuid() }
    }

    fn pid(&self) -> u32 {
        std::process::id()
    }

    fn uid_of(&self, name: &str) -> Option<u32> {
        match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => Some(user.uid.as_raw()),
            _ => None,
        }
    }

    fn set_session_id(&mut self, id: &str) -> Result<(), String> {
        let id = CString::new(id).map_err(|e| e.to_string())?;
        let data = Box::into_raw(Box::new(id));
        // SAFETY: `data` is a leaked Box<CString> that PAM keeps and later hands to
        // `free_session_id` exactly once (on replacement or pam_end); the name is a static C
        // string.
        let rc = unsafe {
            pam_sys::raw::pam_set_data(
                self.pamh,
                SESSION_DATA.as_ptr(),
                data.cast(),
                Some(free_session_id),
            )
        };
        if rc != 0 {
            // SAFETY: PAM did not take ownership, so the box is still ours to free.
            drop(unsafe { Box::from_raw(data) });
            return Err(format!("pam_set_data returned {rc}"));
        }
        Ok(())
    }

    fn session_id(&self) -> Option<String> {
        let mut data: *const c_void = ptr::null();
        // SAFETY: valid handle and out-pointer; the name is a static C string.
        let rc = unsafe { pam_sys::raw::pam_get_data(self.pamh, SESSION_DATA.as_ptr(), &mut data) };
        if rc != 0 || data.is_null() {
            return None;
        }
        // SAFETY: only `set_session_id` stores data under this name, always a Box<CString>
        // that lives until pam_end.
        let id = unsafe { &*data.cast::<CString>() };
        id.to_str().ok().map(str::to_string)
    }

    fn log(&self, level: Level, msg: &str) {
        log(self.pamh, level, msg);
    }

    fn silent(&self) -> bool {
        self.flags & PAM_SILENT != 0
    }
}

/// Frees the session id when PAM drops the module data.
extern "C" fn free_session_id(_pamh: *mut PamHandle, data: *mut c_void, _status: c_int) {
    if !data.is_null() {
        // SAFETY: PAM calls this once with the pointer `set_session_id` stored, a Box<CString>.
        drop(unsafe { Box::from_raw(data.cast::<CString>()) });
    }
}

fn log(pamh: *const PamHandle, level: Level, msg: &str) {
    let priority = match level {
        Level::Debug => libc::LOG_DEBUG,
        Level::Info => libc::LOG_INFO,
        Level::Notice => libc::LOG_NOTICE,
        Level::Warning => libc::LOG_WARNING,
        Level::Err => libc::LOG_ERR,
        Level::Alert => libc::LOG_ALERT,
    };
    let Ok(text) = CString::new(msg.replace('\0', "\\0")) else {
        return;
    };
    // SAFETY: `pamh` is the live handle; the format is a static "%s" and its one argument a
    // NUL-terminated string, so no user text is ever read as a format.
    unsafe { pam_syslog(pamh, priority, c"%s".as_ptr(), text.as_ptr()) };
}

/// The module's arguments as text; `Err` when one is not UTF-8.
///
/// # Safety
/// `argv` must point at `argc` NUL-terminated strings, as PAM guarantees for a module's
/// arguments.
unsafe fn arguments<'a>(argc: c_int, argv: *const *const c_char) -> Result<Vec<&'a str>, String> {
    let count = usize::try_from(argc).map_err(|_| format!("argc {argc}"))?;
    if count > 0 && argv.is_null() {
        return Err("argv is NULL".into());
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: `i < argc` and the caller guarantees `argv` has `argc` valid entries.
        let arg = unsafe { *argv.add(i) };
        if arg.is_null() {
            return Err(format!("argument {i} is NULL"));
        }
        // SAFETY: each argument is a NUL-terminated string owned by PAM for the call.
        let text = unsafe { CStr::from_ptr(arg) };
        out.push(
            text.to_str()
                .map_err(|_| format!("argument {i} is not UTF-8"))?,
        );
    }
    Ok(out)
}

/// A panic inside the module must not print to the host's terminal; the message goes to
/// syslog from `entry`. In the cdylib this hook belongs to the module's own copy of std, so it
/// changes nothing for the host.
#[cfg(not(test))]
fn quiet_panics() {
    use std::sync::Once;
    static QUIET: Once = Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

/// Runs one phase: arguments, handle, gate, core; a panic becomes `PAM_SERVICE_ERR`.
///
/// # Safety
/// The arguments are those PAM passes to a `pam_sm_*` function.
unsafe fn entry(
    pamh: *mut PamHandle,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
    phase: Phase,
) -> c_int {
    if pamh.is_null() {
        return Code::SystemErr as c_int;
    }
    #[cfg(not(test))]
    quiet_panics();
    // SAFETY: forwarded from PAM (see this function's contract).
    let args = unsafe { arguments(argc, argv) };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let options = match args.and_then(|a| args::parse(a.iter().copied())) {
            Ok(o) => o,
            Err(e) => {
                log(
                    pamh,
                    Level::Err,
                    &format!("bad module arguments: {e}; denying"),
                );
                return Code::ServiceErr;
            }
        };
        #[cfg(debug_assertions)]
        if options.test_panic {
            #[allow(clippy::panic)] // the test of this very containment
            {
                panic!("test_panic requested by the PAM line");
            }
        }
        let mut handle = Handle { pamh, flags };
        let mut gate = SocketGate::new(&options);
        phase(&mut handle, &mut gate, &options)
    }));
    match outcome {
        Ok(code) => code as c_int,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log(
                pamh,
                Level::Alert,
                &format!("internal error (panic: {what}); denying"),
            );
            Code::ServiceErr as c_int
        }
    }
}

/// # Safety
/// Called by libpam with a live handle and the module's arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut PamHandle,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded unchanged from libpam.
    unsafe { entry(pamh, flags, argc, argv, core::authenticate) }
}

/// Credentials are not pam_jit's business; succeeding keeps `auth` stacks that call it whole.
///
/// # Safety
/// Called by libpam.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    Code::Success as c_int
}

/// # Safety
/// Called by libpam with a live handle and the module's arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_acct_mgmt(
    pamh: *mut PamHandle,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded unchanged from libpam.
    unsafe { entry(pamh, flags, argc, argv, core::account) }
}

/// # Safety
/// Called by libpam with a live handle and the module's arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_open_session(
    pamh: *mut PamHandle,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded unchanged from libpam.
    unsafe { entry(pamh, flags, argc, argv, core::open_session) }
}

/// # Safety
/// Called by libpam with a live handle and the module's arguments.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pam_sm_close_session(
    pamh: *mut PamHandle,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded unchanged from libpam.
    unsafe { entry(pamh, flags, argc, argv, core::close_session) }
}
