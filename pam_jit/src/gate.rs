//! The real [`GateClient`]: one short D-Bus exchange with jitd per call, on the calling thread.
//!
//! Each call connects, asks, and drops the connection inside a single `zbus::block_on` under a
//! hard deadline. Nothing of the connection outlives the call, so the host process (sudo, su,
//! sshd) is left without a helper thread or an open socket, and a frozen bus or daemon costs at
//! most the timeout. The address comes from [`Options`] only, never from the environment.

use std::future::Future;
use std::time::Duration;

use jitd::client::{Error, GateDecision, GateProxy, RequestOutcome, SessionInfo};

use crate::args::Options;
use crate::core::{GateClient, GateError};

pub struct BusGate {
    address: String,
    timeout: Duration,
}

impl BusGate {
    pub fn new(o: &Options) -> Self {
        Self {
            address: o.bus.clone(),
            timeout: o.timeout,
        }
    }

    /// Runs `call` against a fresh proxy, under the deadline, connection setup included.
    fn exchange<T, F, Fut>(&self, call: F) -> Result<T, GateError>
    where
        F: FnOnce(GateProxy<'static>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let address = self.address.clone();
        let timeout = self.timeout;
        zbus::block_on(async move {
            let runtime = zruntime::SharedRuntime::current()
                .map_err(|e| GateError::Unreachable(format!("no timer: {e}")))?;
            let work = async move {
                let conn = zbus::connection::Builder::address(address.as_str())
                    .method_timeout(timeout)
                    .build()
                    .await
                    .map_err(|e| GateError::Unreachable(format!("cannot connect: {e}")))?;
                jitd::client::verify_owner(&conn)
                    .await
                    .map_err(GateError::Unreachable)?;
                let proxy = GateProxy::new(&conn)
                    .await
                    .map_err(|e| GateError::Unreachable(format!("no proxy: {e}")))?;
                let result = call(proxy).await.map_err(classify);
                // Closed here, inside block_on, so its tasks end before the thread leaves.
                drop(conn);
                result
            };
            match runtime.timeout(timeout, work).await {
                Ok(result) => result,
                Err(_) => Err(GateError::Unreachable(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                ))),
            }
        })
    }
}

/// jitd's own errors carry a message for the user; anything else means no usable answer.
fn classify(e: Error) -> GateError {
    if e.is_refusal() {
        GateError::Refused {
            name: format!("{}.{}", jitd::client::ERROR_PREFIX, e.short_name()),
            message: e.message(),
        }
    } else {
        GateError::Unreachable(e.message())
    }
}

impl GateClient for BusGate {
    fn check(
        &mut self,
        uid: u32,
        service: &str,
        tty: &str,
        rhost: &str,
    ) -> Result<GateDecision, GateError> {
        let (service, tty, rhost) = (service.to_string(), tty.to_string(), rhost.to_string());
        self.exchange(move |p| async move { p.check_access(uid, &service, &tty, &rhost).await })
    }

    fn request(
        &mut self,
        uid: u32,
        privilege: &str,
        duration_secs: u64,
        reason: &str,
    ) -> Result<RequestOutcome, GateError> {
        let (privilege, reason) = (privilege.to_string(), reason.to_string());
        self.exchange(move |p| async move {
            p.request_for(uid, &privilege, duration_secs, &reason, "")
                .await
        })
    }

    fn session_opened(&mut self, s: &SessionInfo) -> Result<String, GateError> {
        let s = s.clone();
        self.exchange(move |p| async move { p.session_opened(s).await })
    }

    fn session_closed(&mut self, id: &str) -> Result<(), GateError> {
        let id = id.to_string();
        self.exchange(move |p| async move { p.session_closed(&id).await })
    }
}
