//! The shards' side of the users file ([`super::users`]): its counts kept with the records,
//! under the same lock.

use super::*;

impl Shards {
    /// The same, with users' settings lines going with their last grant (or lingering `ms`).
    #[cfg(test)]
    pub fn lingering(mut self, ms: i64) -> Self {
        self.linger_ms = ms;
        self
    }

    pub(super) fn users(&self) -> Users<'_> {
        Users {
            sudoers: &self.sudoers,
            records: &self.records,
            files: &self.files,
            known: &self.users_known,
            linger_ms: self.linger_ms,
            now_ms: self.clock.now().wall_ms,
        }
    }

    /// Lets go of users' settings lines whose linger is over (the integrity check).
    pub fn tidy_users(&self) -> Result<(), GrantError> {
        self.locked(|| self.users().tidy())
    }

    pub(super) fn users_status(&self) -> Result<DropInStatus, GrantError> {
        let stamps = (
            stamp(&self.records.join("users.json")),
            stamp(&self.sudoers.dir().join(USERS_FILE)),
        );
        if let Ok(seen) = self.users_seen.lock()
            && let Some((at, status)) = seen.as_ref()
            && *at == stamps
        {
            return Ok(status.clone());
        }
        let status = self.users().status()?;
        if let Ok(mut seen) = self.users_seen.lock() {
            *seen = Some((stamps, status.clone()));
        }
        Ok(status)
    }

    /// Counts every grant's per-user settings again from the records and rewrites the users
    /// file to match (at start-up, and when a grant finds the file altered).
    pub fn recount_users(&self) -> Result<(), GrantError> {
        self.locked(|| self.recount_locked())
    }

    pub(super) fn recount_locked(&self) -> Result<(), GrantError> {
        let mut counts = Counts::new();
        for p in self.privileges()? {
            for e in self.read_locked(&p)?.values() {
                for line in defaults(&e.text) {
                    *counts.entry(line.to_string()).or_default() += 1;
                }
            }
        }
        self.users().recount(&counts)
    }
}
