//! A quorum rule's `auto_approve`: inside its window and under its daily cap, a request
//! (or an extension) is granted at once, recorded as a request approved by `auto_approve` so
//! the cap can count it and the requester's history shows it; otherwise the request waits for
//! people, told why it was not granted at once.

#![forbid(unsafe_code)]

use super::{Core, info};
use crate::client::{Error, RequestOutcome};
use crate::clock::utc;
use crate::policy::Quorum;
use crate::store::RequestRecord;
use crate::terms::{ApprovalMode, RequestState, RequestStatus};

/// Who decided a request granted by the window, as the record and the cap name it.
pub(super) const AUTO: &str = "auto_approve";

impl Core {
    /// Grants `q` at once when the rule's window is open and the cap allows; `Ok(Err(why))`
    /// when it must wait for people (`why` is empty when the rule has no window).
    pub(super) fn auto_approve(
        &mut self,
        q: &RequestRecord,
        quorum: &Quorum,
    ) -> Result<Result<RequestOutcome, String>, Error> {
        let Some(auto) = &quorum.auto else {
            return Ok(Err(String::new()));
        };
        let now = self.clock.now().wall_ms;
        if !auto.contains(now) {
            return Ok(Err(format!(
                "outside the rule's auto-approve window ({})",
                auto.describe()
            )));
        }
        if let Some(cap) = auto.per_user_per_day {
            let used = self
                .store
                .auto_approved_since(q.uid, &q.rule, auto.day_start_ms(now))
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            if used >= cap {
                return Ok(Err(format!(
                    "the rule grants at most {cap} request(s) a day at once, and you had {used} today"
                )));
            }
        }
        let applied = if q.extends.is_empty() {
            self.grant_for(q, q.duration_secs, ApprovalMode::Auto)
                .map(|(g, _)| g)
        } else {
            self.extend_approved(q, q.duration_secs)
        };
        let g = match applied {
            Ok(g) => g,
            Err(e) => {
                let why = format!("granted by the auto-approve window, but: {}", e.message());
                self.decide(q, RequestState::Failed, AUTO, &why, "", now);
                return Err(e);
            }
        };
        let why = format!("inside the auto-approve window ({})", auto.describe());
        self.decide(q, RequestState::Approved, AUTO, &why, g.id.as_str(), now);
        Ok(Ok(RequestOutcome {
            status: RequestStatus::Active,
            message: if q.extends.is_empty() {
                format!(
                    "granted at once {why}: {} until {} (grant {})",
                    g.privilege,
                    utc(g.expires_ms),
                    g.id
                )
            } else {
                format!(
                    "grant {} extended at once {why}: it now ends at {}",
                    g.id,
                    utc(g.expires_ms)
                )
            },
            grant: info(&g),
            clamped: false,
            request_id: q.id.to_string(),
            request_expires_ms: 0,
        }))
    }
}
