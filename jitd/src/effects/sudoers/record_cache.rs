//! What the sudo records' cache keeps of each record, and when it may be trusted unread.

use super::shards::{Record, Stamp};

/// A record as last read or written, with its file's stamp and its text's hash.
pub(super) struct Known {
    pub stamp: Stamp,
    /// Has hashed the record's whole text; an append goes on from it.
    pub hasher: std::collections::hash_map::DefaultHasher,
    pub entries: Record,
    /// Lines in the file (entries, and takes not yet written away).
    pub lines: usize,
    /// Whether the file ends with a whole line: one cut short is never appended after.
    pub whole: bool,
    /// No other process has written records since this one read or wrote this one.
    pub trusted: bool,
}

/// A hasher for a record's text, fed its bytes as they are written.
pub(super) fn text_hasher() -> std::collections::hash_map::DefaultHasher {
    std::collections::hash_map::DefaultHasher::new()
}

/// The text's hash, to tell a file read again from the one known: as [`text_hasher`] fed it.
pub(super) fn text_hash(text: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = text_hasher();
    h.write(text.as_bytes());
    h.finish()
}

/// Whether a file's stamp is over a second old: a change now would get another change time.
#[allow(clippy::disallowed_methods)] // against a file's change time, which is of this clock
pub(super) fn settled(stamp: &Stamp) -> bool {
    let Some((_, _, secs, nanos, _)) = stamp else {
        return false;
    };
    let ctime = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(*secs).unwrap_or(0),
            u32::try_from(*nanos).unwrap_or(0),
        );
    std::time::SystemTime::now()
        .duration_since(ctime)
        .is_ok_and(|age| age >= std::time::Duration::from_secs(1))
}
