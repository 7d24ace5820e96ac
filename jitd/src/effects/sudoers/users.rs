//! `/etc/sudoers.d/jitd_users`: the per-user settings (`Defaults:#uid …`) of users holding live
//! sudo grants, each line once however many grants and privileges carry it.
//!
//! A line is in the file while at least one grant on the system carries it, and for
//! [`LINGER_MS`] after the last one goes: a user who drops a grant and asks again (the same
//! shift, the next command) does not make each of the two grants rewrite and check a file that
//! lists every holder on the host. The file grants nothing (no rule), so a line kept a while
//! only logs more, and the ledger attributes what it logs to the grant that ended (its
//! after-expiry window is longer). Lines past their time go at the next write of the file or at
//! the integrity check, whichever comes first.
//!
//! The counts and the lingering lines are kept in `<state_dir>/sudo/users.json`, changed under
//! the lock of [`super::shards`] together with the privilege's record; [`Users::recount`]
//! rebuilds them from the records at start-up (dropping the lingering lines: the settings may
//! have changed with the configuration), so a crash between the two writes costs at most one
//! integrity check's worth of a stale count.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::consolidate::{USERS_FILE, USERS_MARKER, users_file};
use super::record_cache::text_hash;
use super::record_file::RecordFiles;
use super::shards::{Stamp, stamp};
use super::{DropInStatus, SudoersDir};
use crate::effects::GrantError;

/// How many grants carry each line.
pub type Counts = BTreeMap<String, u32>;

/// How long a line stays after the last grant carrying it went.
pub const LINGER_MS: i64 = 5 * 60 * 1000;

/// What `users.json` keeps: the lines grants carry, and the lines none carries any more with
/// when the last went (wall clock, ms).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "Stored")]
pub struct Tally {
    pub counts: Counts,
    pub lingering: BTreeMap<String, i64>,
}

/// A tally as `users.json` holds it: the lines grouped by what they set, each user once in its
/// group (`"#1001"`). Every line sets the same, so a thousand users take 15 KB where their
/// whole lines took 110 KB, read and written at each grant.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    counts: BTreeMap<String, BTreeMap<String, u32>>,
    #[serde(default)]
    lingering: BTreeMap<String, BTreeMap<String, i64>>,
}

/// `Defaults:#1001 log_format=json, …` as (what it sets, whom): (`log_format=json, …`, `#1001`).
/// A line of another shape is kept whole, as whom, under nothing set.
fn split(line: &str) -> (&str, &str) {
    line.strip_prefix("Defaults:")
        .and_then(|rest| rest.split_once(' '))
        .filter(|(_, sets)| !sets.is_empty())
        .map_or(("", line), |(who, sets)| (sets, who))
}

fn join(sets: &str, who: &str) -> String {
    if sets.is_empty() {
        who.to_string()
    } else {
        format!("Defaults:{who} {sets}")
    }
}

/// Written from borrowed lines: serialising a thousand users at each grant must not copy them.
#[derive(Serialize)]
struct StoredRef<'a> {
    counts: BTreeMap<&'a str, BTreeMap<&'a str, u32>>,
    lingering: BTreeMap<&'a str, BTreeMap<&'a str, i64>>,
}

fn grouped<V: Copy>(lines: &BTreeMap<String, V>) -> BTreeMap<&str, BTreeMap<&str, V>> {
    let mut out: BTreeMap<&str, BTreeMap<&str, V>> = BTreeMap::new();
    for (line, v) in lines {
        let (sets, who) = split(line);
        out.entry(sets).or_default().insert(who, *v);
    }
    out
}

fn ungrouped<V: Copy>(groups: BTreeMap<String, BTreeMap<String, V>>) -> BTreeMap<String, V> {
    groups
        .iter()
        .flat_map(|(sets, whom)| whom.iter().map(move |(who, v)| (join(sets, who), *v)))
        .collect()
}

impl From<Stored> for Tally {
    fn from(s: Stored) -> Self {
        Tally {
            counts: ungrouped(s.counts),
            lingering: ungrouped(s.lingering),
        }
    }
}

impl Serialize for Tally {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredRef {
            counts: grouped(&self.counts),
            lingering: grouped(&self.lingering),
        }
        .serialize(s)
    }
}

impl Tally {
    /// The lines the file shows, each once, in order.
    fn shown(&self) -> BTreeSet<&str> {
        self.counts
            .keys()
            .chain(self.lingering.keys())
            .map(String::as_str)
            .collect()
    }

    /// Lets go of the lingering lines whose time is up at `now` (or that say they went in the
    /// future: the clock was set back, and a line kept too long logs more than it should).
    fn prune(&mut self, now: i64, linger_ms: i64) {
        self.lingering
            .retain(|_, went| *went <= now && now - *went < linger_ms);
    }

    /// The file's text for what this tally shows, or `None` when it shows nothing.
    fn file_text(&self) -> Option<String> {
        let shown = self.shown();
        (!shown.is_empty()).then(|| users_file(shown))
    }
}

/// A change to the users file.
pub enum FileChange {
    Install(String),
    Remove,
}

/// `users.json` as last read or written, by its text's hash: with a thousand users it is over
/// 100 KB, and parsing it four times made each grant cost a millisecond more than on a host
/// of ten. With the users file's text for it, once rendered.
#[derive(Default)]
pub struct Known {
    hash: u64,
    tally: Tally,
    file_text: Option<Option<String>>,
    /// [`RecordFiles::quiet_since`] when this was written or read: while it is the same, no
    /// other process has written `users.json` and it need not be read again (a grant on a
    /// host of a thousand users read and hashed the counts it had written itself).
    quiet: Option<u64>,
    /// The users file's status against `file_text`, with the file's stamp when it was taken.
    status: Option<(Stamp, DropInStatus)>,
}

pub struct Users<'a> {
    pub sudoers: &'a SudoersDir,
    pub records: &'a PathBuf,
    /// The records' write count, which `users.json`'s writes share.
    pub(super) files: &'a RecordFiles,
    pub known: &'a Mutex<Option<Known>>,
    /// [`LINGER_MS`], or 0 (lines go with their last grant).
    pub linger_ms: i64,
    /// The wall clock now, in ms.
    pub now_ms: i64,
}

impl Users<'_> {
    fn path(&self) -> PathBuf {
        self.records.join("users.json")
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Option<Known>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `users.json` says; counts written by earlier versions (a bare map) read as such.
    pub fn read(&self) -> Result<Tally, GrantError> {
        self.with_known(|k| k.tally.clone())
    }

    /// Runs `f` on what `users.json` says now: as this process knows it while no other
    /// process has written since, else read again (and parsed when its text changed).
    fn with_known<T>(&self, f: impl FnOnce(&mut Known) -> T) -> Result<T, GrantError> {
        let quiet = self.files.quiet_since();
        let mut known = self.known();
        if let Some(k) = known.as_mut()
            && quiet.is_some()
            && k.quiet == quiet
        {
            return Ok(f(k));
        }
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => return Err(GrantError::io(&path, e)),
        };
        let hash = text_hash(&text);
        if let Some(k) = known.as_mut().filter(|k| k.hash == hash) {
            k.quiet = quiet;
            return Ok(f(k));
        }
        let tally = if text.is_empty() {
            Tally::default()
        } else {
            serde_json::from_str::<Tally>(&text)
                .or_else(|e| {
                    serde_json::from_str::<Counts>(&text)
                        .map(|counts| Tally {
                            counts,
                            lingering: BTreeMap::new(),
                        })
                        .map_err(|_| e)
                })
                .map_err(|e| GrantError::Verify {
                    what: format!("{}: {e}", path.display()),
                })?
        };
        Ok(f(known.insert(Known {
            hash,
            tally,
            file_text: None,
            quiet,
            status: None,
        })))
    }

    /// Writes `tally`; `lines_changed`: the lines it shows are not those of the last tally
    /// (then the users file's text and status known for them go).
    pub fn write(&self, tally: Tally, lines_changed: bool) -> Result<(), GrantError> {
        let text = serde_json::to_string(&tally).map_err(|e| GrantError::Verify {
            what: e.to_string(),
        })?;
        // Not synced: the counts are derived (recounted from the records at start-up) and the
        // file grants nothing, so a grant does not wait on another flush for them.
        let (path, temp) = (self.path(), self.records.join(".users.json.tmp"));
        // The users file's text stays as it was while the same lines are shown (only counts
        // changed: most grants).
        let kept = self
            .known()
            .take()
            .filter(|_| !lines_changed)
            .map(|k| (k.file_text, k.status));
        let (file_text, status) = kept.unwrap_or_default();
        self.files.count_change()?;
        fs::write(&temp, &text).map_err(|e| GrantError::io(&temp, e))?;
        fs::rename(&temp, &path).map_err(|e| GrantError::io(&path, e))?;
        *self.known() = Some(Known {
            hash: text_hash(&text),
            tally,
            file_text,
            quiet: self.files.quiet_since(),
            status,
        });
        Ok(())
    }

    /// Makes the file say exactly what `tally` shows.
    fn show(&self, tally: &Tally) -> Result<(), GrantError> {
        match tally.file_text() {
            Some(text) => self.sudoers.install_named(USERS_FILE, USERS_MARKER, &text),
            None => self
                .sudoers
                .remove_named(USERS_FILE, USERS_MARKER)
                .map(|_| ()),
        }
    }

    /// Counts `added` in and `removed` out; the file is rewritten only when a line appears or
    /// goes. Called under the shards' lock.
    pub fn adjust(&self, added: &[&str], removed: &[&str]) -> Result<(), GrantError> {
        let planned = self.plan(added, removed)?;
        self.carry_out(planned, !added.is_empty() || !removed.is_empty())
    }

    /// Does what [`Self::plan`] said: the file, then the counts (when `changed`).
    pub fn carry_out(
        &self,
        (after, file): (Tally, Option<FileChange>),
        changed: bool,
    ) -> Result<(), GrantError> {
        match &file {
            Some(FileChange::Install(text)) => {
                self.sudoers.install_named(USERS_FILE, USERS_MARKER, text)?;
            }
            Some(FileChange::Remove) => {
                self.sudoers.remove_named(USERS_FILE, USERS_MARKER)?;
            }
            None => {}
        }
        if changed {
            self.write(after, file.is_some())?;
        }
        Ok(())
    }

    /// What [`Self::adjust`] would do, without doing it: the tally after, and the change to
    /// the file when a line appears or goes (lingering lines whose time is up go with it).
    pub fn plan(
        &self,
        added: &[&str],
        removed: &[&str],
    ) -> Result<(Tally, Option<FileChange>), GrantError> {
        let mut after = self.read()?;
        if added.is_empty() && removed.is_empty() {
            return Ok((after, None));
        }
        let now = self.now_ms;
        // Whether the lines shown change, followed step by step: comparing the shown sets
        // before and after took as long as the rest at a thousand users.
        let lingered = after.lingering.len();
        after.prune(now, self.linger_ms);
        let mut lines_changed = after.lingering.len() != lingered;
        for line in added {
            let n = after.counts.entry((*line).to_string()).or_default();
            let lingering = after.lingering.remove(*line).is_some();
            lines_changed |= *n == 0 && !lingering;
            *n += 1;
        }
        for line in removed {
            if let Some(n) = after.counts.get_mut(*line) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    after.counts.remove(*line);
                    if self.linger_ms > 0 {
                        after.lingering.insert((*line).to_string(), now);
                    } else {
                        lines_changed = true;
                    }
                }
            }
        }
        let change = lines_changed.then(|| match after.file_text() {
            Some(text) => FileChange::Install(text),
            None => FileChange::Remove,
        });
        Ok((after, change))
    }

    /// Sets the counts to `counts` (recounted from the records) and the file to match; no
    /// line lingers.
    pub fn recount(&self, counts: &Counts) -> Result<(), GrantError> {
        let tally = Tally {
            counts: counts.clone(),
            lingering: BTreeMap::new(),
        };
        self.show(&tally)?;
        self.write(tally, true)
    }

    /// Lets go of the lingering lines whose time is up (the integrity check): the file is
    /// rewritten only when one goes.
    pub fn tidy(&self) -> Result<(), GrantError> {
        let before = self.read()?;
        let mut after = before.clone();
        after.prune(self.now_ms, self.linger_ms);
        if after == before {
            return Ok(());
        }
        let lines_changed = after.shown() != before.shown();
        if lines_changed {
            self.show(&after)?;
        }
        self.write(after, lines_changed)
    }

    /// Whether the file on disk says what the tally says; known without reading the file
    /// again while neither it nor the lines shown changed.
    pub fn status(&self) -> Result<DropInStatus, GrantError> {
        let on_disk = stamp(&self.sudoers.dir().join(USERS_FILE));
        self.with_known(|k| {
            if let Some((at, status)) = &k.status
                && *at == on_disk
            {
                return Ok(status.clone());
            }
            let Known {
                file_text, tally, ..
            } = &mut *k;
            let status = match file_text.get_or_insert_with(|| tally.file_text()) {
                None => DropInStatus::Intact,
                Some(text) => self.sudoers.status_named(USERS_FILE, text)?,
            };
            k.status = Some((on_disk, status.clone()));
            Ok(status)
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_is_stored_grouped_by_what_its_lines_set_and_reads_back_whole() {
        let sets = "log_format=json, logfile=/var/lib/jitd/ledger/sudo.json, log_exit_status";
        let mut t = Tally::default();
        for uid in 1000..2000u32 {
            t.counts
                .insert(format!("Defaults:#{uid} {sets}"), uid % 3 + 1);
        }
        t.lingering.insert(format!("Defaults:#7 {sets}"), 42);
        t.counts.insert("a line of another shape".into(), 1);
        t.counts.insert("Defaults:#9 ".into(), 1);
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text.matches(sets).count(), 2, "once per group: {text}");
        assert!(text.len() < 20_000, "{} bytes", text.len());
        assert_eq!(serde_json::from_str::<Tally>(&text).unwrap(), t);
    }
}
