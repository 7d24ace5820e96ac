//! `org.jitd.Jitd1.Notifier`: how `jitd-notify` reads the outbox. Only the notifier's own
//! account (`notifier_user`) may call it: the notes name who asked for what and why. The bus
//! policy file says so too; this checks it again so a mistaken bus policy cannot open it.

use zbus::Connection;
use zbus::message::Header;

use super::Shared;
use super::caller::caller_uid;
use crate::client::Error;

pub struct Notifier(pub Shared);

impl Notifier {
    async fn require_notifier(&self, conn: &Connection, header: &Header<'_>) -> Result<(), Error> {
        let uid = caller_uid(conn, header).await?;
        match self.0.engine().notifier_uid() {
            Some(n) if n == uid => Ok(()),
            _ => Err(Error::NotAllowed(format!(
                "the Notifier interface is for the notifier's account only, not uid {uid}"
            ))),
        }
    }
}

#[zbus::interface(name = "org.jitd.Jitd1.Notifier")]
impl Notifier {
    /// Undelivered notes with id > `after`, oldest first: (id, dedupe id, kind, JSON body).
    async fn fetch(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        after: i64,
    ) -> Result<Vec<(i64, String, String, String)>, Error> {
        self.require_notifier(conn, &header).await?;
        let rows = self.0.engine().notes_after(after)?;
        Ok(rows
            .into_iter()
            .map(|r| (r.id, r.dedupe, r.kind, r.body))
            .collect())
    }

    /// Note `id` was delivered (or given up on): it is not fetched again.
    async fn ack(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        id: i64,
    ) -> Result<bool, Error> {
        self.require_notifier(conn, &header).await?;
        self.0.engine().note_delivered(id)
    }

    /// Delivery of note `id` to `sink` failed `attempts` times: recorded as `notify.failed`.
    async fn failed(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        id: i64,
        sink: &str,
        attempts: u64,
        error: &str,
    ) -> Result<(), Error> {
        self.require_notifier(conn, &header).await?;
        let sink: String = sink.chars().take(200).collect();
        let error: String = error.chars().take(500).collect();
        self.0.engine().note_failed(id, &sink, attempts, &error)
    }
}
