//! Notice at once when someone sets the wall clock.
//!
//! A `CLOCK_REALTIME` timerfd armed far in the future with `TFD_TIMER_CANCEL_ON_SET` becomes
//! readable, with `ECANCELED`, the moment the clock is set (`date -s`, NTP stepping, settimeofday).
//! The expiry loop waits on it next to its own timer, so a grant whose wall deadline was jumped
//! over ends immediately instead of at the next periodic check.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

pub struct ClockWatch {
    fd: AsyncFd<OwnedFd>,
}

/// Far enough ahead never to fire: 2100-01-01.
const FAR_FUTURE_SECS: libc::time_t = 4_102_444_800;

fn arm(fd: &OwnedFd) -> io::Result<()> {
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: FAR_FUTURE_SECS,
            tv_nsec: 0,
        },
    };
    // SAFETY: a valid timerfd, a fully initialised itimerspec, and a null old-value pointer,
    // which timerfd_settime accepts.
    let rc = unsafe {
        libc::timerfd_settime(
            fd.as_raw_fd(),
            libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
            &spec,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl ClockWatch {
    /// Must be called inside a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<Self> {
        // SAFETY: timerfd_create takes a clock id and flags only; it returns a new fd or -1.
        let raw = unsafe {
            libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        arm(&fd)?;
        // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it until dropped; an
        // OwnedFd always reports the same open descriptor from as_raw_fd.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }?;
        Ok(Self { fd })
    }

    /// Resolves when the wall clock has been set since the last call.
    pub async fn changed(&mut self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            // SAFETY: reading at most 8 bytes into an 8-byte buffer from a valid fd.
            let n =
                unsafe { libc::read(guard.get_inner().as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
            if n >= 0 {
                // Expired (in 2100): re-arm and keep waiting.
                arm(guard.get_inner())?;
                continue;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ECANCELED) => {
                    arm(guard.get_inner())?;
                    return Ok(());
                }
                Some(libc::EAGAIN) => guard.clear_ready(),
                _ => return Err(err),
            }
        }
    }
}
