//! The two bus interfaces the daemon serves at `/org/jitd/Jitd1`.
//!
//! Every method starts by asking the bus who the caller is (`GetConnectionCredentials` on the
//! message's sender). Arguments never say who the caller is. If the bus cannot say — the caller
//! already disconnected (polkit CVE-2021-3560), or the reply lacks a uid — the call is refused.
//! The Gate interface is also restricted to uid 0 by the bus policy file; it is checked here
//! again so a mistaken bus policy cannot open it.

#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::clock::Clock;
use crate::daemon::{Core, GateIndex};

mod caller;
mod gate;
mod limits;
mod manager;
mod notifier;
mod reauth;

pub use limits::Limits;

pub use gate::Gate;
pub use manager::Manager;
pub use notifier::Notifier;

/// State shared by both interfaces.
#[derive(Clone)]
pub struct Shared {
    pub engine: Arc<Mutex<Core>>,
    pub gate: Arc<RwLock<GateIndex>>,
    pub clock: Arc<dyn Clock>,
    /// Wakes the expiry loop when a grant is added, so its next deadline is known at once.
    pub wake: Arc<tokio::sync::Notify>,
    /// Per-uid limits on the Manager interface.
    pub limits: Limits,
}

/// The longest the expiry loop sleeps between looks (it notices clock jumps by then too).
pub const LONGEST_SLEEP_MS: i64 = 1000;

impl Shared {
    /// Wakes the expiry loop for a new deadline (`expires_ms`, wall clock) when it comes
    /// sooner than the loop's next look anyway: each look walks every live grant, and one after
    /// every request made the next request wait on a walk of ten thousand.
    pub fn deadline_added(&self, expires_ms: i64) {
        if expires_ms.saturating_sub(self.clock.now().wall_ms) <= LONGEST_SLEEP_MS {
            self.wake.notify_one();
        }
    }

    pub fn engine(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock must not wedge revocation: take the state as it is.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the readers of history and the export need from the core: the database's path
    /// and the accounts, taken under the lock for a moment.
    pub fn readers(
        &self,
    ) -> (
        std::path::PathBuf,
        std::sync::Arc<dyn crate::policy::Accounts + Send + Sync>,
    ) {
        let core = self.engine();
        (core.config().db_path(), core.accounts())
    }
}
