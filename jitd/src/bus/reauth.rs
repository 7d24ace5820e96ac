//! The polkit step of a `reauth = true` rule, on the bus side: asked without the core's lock
//! (the requester may take a minute to type), for the caller's own bus name.

use zbus::message::Header;

use super::Shared;
use crate::client::Error;

impl Shared {
    /// Has the caller prove presence for `privilege` when its rule wants it; `Ok(true)` when
    /// it did, `Ok(false)` when the rule does not ask.
    pub(super) async fn reauth_if_needed(
        &self,
        header: &Header<'_>,
        uid: u32,
        privilege: &str,
    ) -> Result<bool, Error> {
        if privilege.is_empty() || !self.engine().needs_reauth(uid, privilege) {
            return Ok(false);
        }
        let Some(sender) = header.sender() else {
            return Err(Error::NotAllowed("the call carries no sender".into()));
        };
        let address = self.engine().config().bus_address.clone();
        let answer =
            crate::polkit::reauthenticated(address.as_deref(), sender.as_str(), privilege).await;
        self.engine().audit_reauth(uid, privilege, &answer);
        match answer {
            Ok(true) => Ok(true),
            Ok(false) => Err(Error::NotAllowed(format!(
                "{privilege} needs you to re-authenticate, and polkit did not confirm it (wrong \
                 password, or no agent asked you: run jitctl on a terminal); nothing was asked"
            ))),
            Err(e) => Err(Error::Unavailable(format!(
                "{privilege} needs you to re-authenticate, and polkit could not be asked ({e}); \
                 nothing was asked"
            ))),
        }
    }
}
