//! A minimal PAM application for the end-to-end suite: runs one PAM phase for a user on a
//! service, in this process, on the main thread, and reports what a host process would notice:
//! the return code and how many threads the process has afterwards.
//!
//! Usage: pam-driver SERVICE USER account|auth|session [RUSER]
//! Prints `rc=<n> threads_after=<n>`; prompts are answered from stdin, one line each.

#![allow(clippy::disallowed_methods)] // an end-to-end harness runs real processes and waits for them

use std::ffi::{CStr, CString, c_int, c_void};
use std::io::BufRead;
use std::ptr;

use pam_sys::{PamConversation, PamHandle, PamMessage, PamResponse};

extern "C" fn converse(
    num: c_int,
    msgs: *mut *mut PamMessage,
    resp: *mut *mut PamResponse,
    _data: *mut c_void,
) -> c_int {
    let Ok(n) = usize::try_from(num) else {
        return 19;
    };
    // SAFETY: calloc of n responses, freed by the module as the PAM contract says.
    let out = unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    for i in 0..n {
        // SAFETY: Linux-PAM passes `num` valid message pointers.
        let m = unsafe { &**msgs.add(i) };
        // SAFETY: each message text is a NUL-terminated string.
        let text = unsafe { CStr::from_ptr(m.msg) }.to_string_lossy();
        eprintln!("conv[{}]: {text}", m.msg_style);
        if m.msg_style == 1 || m.msg_style == 2 {
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            let c = CString::new(line.trim_end()).unwrap_or_default();
            // SAFETY: strdup gives a malloc'ed copy the module frees; `out` has n entries.
            unsafe { (*out.add(i)).resp = libc::strdup(c.as_ptr()) };
        }
    }
    // SAFETY: `resp` is the module's out-pointer.
    unsafe { *resp = out };
    0
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: pam-driver SERVICE USER account|auth|session [RUSER]");
        std::process::exit(2);
    }
    let service = CString::new(args[1].as_str()).unwrap();
    let user = CString::new(args[2].as_str()).unwrap();
    let conv = PamConversation {
        conv: Some(converse),
        data_ptr: ptr::null_mut(),
    };
    let mut start: *const PamHandle = ptr::null();
    // SAFETY: valid C strings and conversation; `pamh` is an out-pointer.
    let rc = unsafe { pam_sys::raw::pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut start) };
    assert_eq!(rc, 0, "pam_start");
    let pamh = start.cast_mut();
    if let Some(ruser) = args.get(4) {
        let ruser = CString::new(ruser.as_str()).unwrap();
        // SAFETY: PAM copies the string.
        unsafe { pam_sys::raw::pam_set_item(pamh, 8, ruser.as_ptr().cast()) };
    }
    // SAFETY: `pamh` is the live handle from pam_start.
    let rc = unsafe {
        match args[3].as_str() {
            "account" => pam_sys::raw::pam_acct_mgmt(pamh, 0),
            "auth" => pam_sys::raw::pam_authenticate(pamh, 0),
            "session" => {
                let rc = pam_sys::raw::pam_open_session(pamh, 0);
                if rc == 0 {
                    pam_sys::raw::pam_close_session(pamh, 0)
                } else {
                    rc
                }
            }
            _ => 2,
        }
    };
    // The module has returned: whatever it started would still be running now.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let after = threads();
    // SAFETY: ends the transaction started above.
    unsafe { pam_sys::raw::pam_end(pamh, rc) };
    println!("rc={rc} threads_after={after}");
}
