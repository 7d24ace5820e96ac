//! Tombstones: grants that ended while the database could not record it (another process
//! held its lock, the disk was full, the file went bad). One line per grant, written and
//! synced *before* the grant comes off the system, so a restart finishes the grant as ended
//! instead of reading the stale `active` row and putting it back.
//!
//! No SQLite here, on purpose. The file has a fixed size, reserved with real zeros while there
//! is room (at start-up): a record is written over the zeros, which needs no new block on
//! ext4, XFS or tmpfs, so a tombstone can still be written on a full disk. (Copy-on-write file
//! systems such as btrfs may still need room; then the failure is audited.) The records end at
//! the first NUL. Once every tombstoned grant is recorded in the database, the records are
//! zeroed again. The daemon and the sweep share the file under an exclusive `flock`.

#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::grant::GrantState;
use crate::names::GrantId;

/// Bytes reserved for records: about 400 ended grants at the longest reason kept.
pub const RESERVED: usize = 64 * 1024;

/// Longest reason kept in a record, in characters.
const MAX_WHY: usize = 120;

/// One grant that ended without its end reaching the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub id: GrantId,
    /// The final state it was headed for.
    pub state: GrantState,
    pub at_ms: i64,
    pub why: String,
}

impl Tombstone {
    /// `id state at_ms why`, on one line of printable ASCII.
    fn line(&self) -> String {
        let why: String = self
            .why
            .chars()
            .take(MAX_WHY)
            .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
            .collect();
        format!(
            "{} {} {} {}\n",
            self.id,
            self.state.as_str(),
            self.at_ms,
            why
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let mut parts = line.splitn(4, ' ');
        let id = GrantId::parse(parts.next()?).ok()?;
        let state = GrantState::parse(parts.next()?)?;
        let at_ms = parts.next()?.parse().ok()?;
        let why = parts.next().unwrap_or("").to_string();
        Some(Self {
            id,
            state,
            at_ms,
            why,
        })
    }
}

/// The tombstone file of a state directory.
pub struct Tombstones {
    path: PathBuf,
}

impl Tombstones {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("ended-grants"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self, create: bool) -> std::io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.path)
    }

    /// Makes sure the file exists with its room reserved (real zeros, not a hole). Call while
    /// there is room: at start-up.
    pub fn reserve(&self) -> std::io::Result<()> {
        let file = self.open(true)?;
        file.lock()?;
        let len = file.metadata()?.len();
        if len >= RESERVED as u64 {
            return Ok(());
        }
        file.write_all_at(&vec![0u8; RESERVED - len as usize], len)?;
        file.sync_all()?;
        drop(file);
        sync_parent(&self.path)
    }

    /// The records, the length they take (the offset of the first NUL) and whether that ends
    /// a line.
    fn read_from(file: &mut File) -> std::io::Result<(Vec<Tombstone>, usize, bool)> {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let used = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        let text = String::from_utf8_lossy(&bytes[..used]);
        // A line cut short by a crash is not a record; the ones around it still are.
        let records = text.lines().filter_map(Tombstone::parse).collect();
        Ok((records, used, used == 0 || text.ends_with('\n')))
    }

    /// Adds `t` and syncs it to disk before returning.
    pub fn add(&self, t: &Tombstone) -> std::io::Result<()> {
        let mut file = self.open(true)?;
        file.lock()?;
        let (_, used, clean) = Self::read_from(&mut file)?;
        // After a line a crash cut short, start a new one.
        let line = if clean {
            t.line()
        } else {
            format!("\n{}", t.line())
        };
        file.write_all_at(line.as_bytes(), used as u64)?;
        file.sync_data()
    }

    /// Every record, oldest first; none when there is no file.
    pub fn read(&self) -> std::io::Result<Vec<Tombstone>> {
        let mut file = match self.open(false) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        file.lock_shared()?;
        Ok(Self::read_from(&mut file)?.0)
    }

    /// Zeroes the records once all of `seen` (what [`Tombstones::read`] returned) are on record
    /// in the database. A record added since then keeps the file as it is, for the next pass.
    pub fn clear(&self, seen: &[Tombstone]) -> std::io::Result<()> {
        let mut file = match self.open(false) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        file.lock()?;
        let (now, used, _) = Self::read_from(&mut file)?;
        if now.as_slice() != seen || used == 0 {
            return Ok(());
        }
        file.write_all_at(&vec![0u8; used], 0)?;
        file.sync_data()
    }
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TempDir;

    fn stone(n: u64, why: &str) -> Tombstone {
        Tombstone {
            id: GrantId::from_random(n),
            state: GrantState::Revoked,
            at_ms: 1_800_000_000_000 + n as i64,
            why: why.into(),
        }
    }

    #[test]
    fn records_are_written_over_the_reserved_room_and_read_back() {
        let dir = TempDir::new();
        let t = Tombstones::new(&dir.0);
        assert!(t.read().unwrap().is_empty(), "no file: nothing ended");
        t.reserve().unwrap();
        assert_eq!(std::fs::metadata(t.path()).unwrap().len(), RESERVED as u64);
        let a = stone(1, "revoked by root: incident\nevent=forged");
        let b = stone(2, "dropped by owner");
        t.add(&a).unwrap();
        t.add(&b).unwrap();
        let back = t.read().unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].why, "revoked by root: incident event=forged");
        assert_eq!(back[1], b);
        assert_eq!(
            std::fs::metadata(t.path()).unwrap().len(),
            RESERVED as u64,
            "written in place"
        );
        // Reserving again keeps what is there.
        t.reserve().unwrap();
        assert_eq!(t.read().unwrap().len(), 2);
    }

    #[test]
    fn clearing_waits_for_records_added_since_they_were_read() {
        let dir = TempDir::new();
        let t = Tombstones::new(&dir.0);
        t.reserve().unwrap();
        t.add(&stone(1, "a")).unwrap();
        let seen = t.read().unwrap();
        t.add(&stone(2, "b")).unwrap();
        t.clear(&seen).unwrap();
        assert_eq!(t.read().unwrap().len(), 2, "the newer record is kept");
        let seen = t.read().unwrap();
        t.clear(&seen).unwrap();
        assert!(t.read().unwrap().is_empty());
        t.add(&stone(3, "c")).unwrap();
        assert_eq!(t.read().unwrap(), vec![stone(3, "c")]);
    }

    #[test]
    fn a_line_cut_short_is_skipped() {
        let dir = TempDir::new();
        let t = Tombstones::new(&dir.0);
        t.reserve().unwrap();
        t.add(&stone(1, "a")).unwrap();
        let file = t.open(false).unwrap();
        let used = stone(1, "a").line().len() as u64;
        file.write_all_at(b"g0000000", used).unwrap();
        assert_eq!(t.read().unwrap(), vec![stone(1, "a")]);
        t.add(&stone(2, "b")).unwrap();
        assert_eq!(t.read().unwrap(), vec![stone(1, "a"), stone(2, "b")]);
    }
}
