//! Membership manifests: the marker of a group grant. A sudoers drop-in carries its own
//! marker and deadline; a line in /etc/group cannot, so each group grant gets one small file,
//! `<state_dir>/memberships/<grant id>`, naming the grant, the account, the group and the
//! deadline. It is written and synced before `gpasswd -a` and removed only after the member is
//! gone, so whenever jitd's membership is on the system, its manifest is too — whatever
//! becomes of the database. The sweep and the daemon's safe mode end memberships from these
//! files alone when the database is broken, and a start over a lost database removes the
//! memberships it no longer knows.
//!
//! The files live in the state directory (root only, 0700); names are validated grant ids;
//! writes go through a temp file and a rename, then the directory is synced.

#![forbid(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::GrantError;
use crate::clock::utc;
use crate::names::{GrantId, GroupName, UserName};

/// The membership one group grant added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub grant: GrantId,
    pub uid: u32,
    pub user: UserName,
    pub group: GroupName,
    /// The grant's deadline by the wall clock, in ms.
    pub until_ms: i64,
}

impl Membership {
    fn text(&self) -> String {
        format!(
            "# jitd group grant {}: {} is in {} until {} (UTC); managed by jitd, do not edit\n\
             grant={}\nuid={}\nuser={}\ngroup={}\nuntil_ms={}\n",
            self.grant,
            self.user,
            self.group,
            utc(self.until_ms),
            self.grant,
            self.uid,
            self.user,
            self.group,
            self.until_ms
        )
    }

    /// Reads the text of the manifest of grant `id`; every field must be there and valid.
    fn parse(id: &GrantId, text: &str) -> Result<Self, String> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .ok_or_else(|| format!("no {key}="))
        };
        let grant = GrantId::parse(field("grant")?).map_err(|e| e.to_string())?;
        if &grant != id {
            return Err(format!("names grant {grant}"));
        }
        Ok(Self {
            grant,
            uid: field("uid")?.parse().map_err(|_| "bad uid".to_string())?,
            user: UserName::parse(field("user")?).map_err(|e| e.to_string())?,
            group: GroupName::parse(field("group")?).map_err(|e| e.to_string())?,
            until_ms: field("until_ms")?
                .parse()
                .map_err(|_| "bad until_ms".to_string())?,
        })
    }
}

/// The manifest directory.
pub struct Manifests {
    dir: PathBuf,
}

impl Manifests {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path_for(&self, id: &GrantId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    /// Writes the manifest of `m.grant` durably (idempotent).
    pub fn write(&self, m: &Membership) -> Result<(), GrantError> {
        match fs::symlink_metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(GrantError::Foreign {
                    path: self.dir.clone(),
                });
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .map_err(|e| GrantError::io(&self.dir, e))?;
                if let Some(parent) = self.dir.parent() {
                    sync_dir(parent)?;
                }
            }
            Err(e) => return Err(GrantError::io(&self.dir, e)),
        }
        crate::effects::sudoers::write_synced(&self.dir, m.grant.as_str(), &m.text())
    }

    /// The manifest of grant `id`: `None` when there is none, an error naming the file when it
    /// does not read back.
    pub fn read(&self, id: &GrantId) -> Result<Option<Membership>, GrantError> {
        let path = self.path_for(id);
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(GrantError::io(&path, e)),
        };
        let mut text = String::new();
        (&mut file)
            .take(4096)
            .read_to_string(&mut text)
            .map_err(|e| GrantError::io(&path, e))?;
        Membership::parse(id, &text)
            .map(Some)
            .map_err(|why| GrantError::Verify {
                what: format!("{}: {why}", path.display()),
            })
    }

    /// Removes the manifest of grant `id` (none is success).
    pub fn remove(&self, id: &GrantId) -> Result<(), GrantError> {
        let path = self.path_for(id);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(GrantError::io(&path, e)),
        }
    }

    /// Ids of the grants that have a manifest.
    pub fn ids(&self) -> Result<Vec<GrantId>, GrantError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(GrantError::io(&self.dir, e)),
        };
        let mut ids: Vec<GrantId> = rd
            .filter_map(Result::ok)
            .filter_map(|e| GrantId::parse(e.file_name().to_str()?).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn sync_dir(dir: &Path) -> Result<(), GrantError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| GrantError::io(dir, e))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // temp dirs in tests
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        std::env::temp_dir().join(format!(
            "jitd-manifest-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ))
    }

    fn membership(n: u64) -> Membership {
        Membership {
            grant: GrantId::from_random(n),
            uid: 1001,
            user: UserName::parse("alice").unwrap(),
            group: GroupName::parse("docker").unwrap(),
            until_ms: 1_800_000_000_000,
        }
    }

    #[test]
    fn a_manifest_is_written_read_back_listed_and_removed() {
        let root = temp();
        let m = Manifests::new(root.join("memberships"));
        assert!(m.ids().unwrap().is_empty(), "no directory: no manifests");
        let a = membership(1);
        m.write(&a).unwrap();
        m.write(&a).unwrap();
        m.write(&membership(2)).unwrap();
        assert_eq!(m.read(&a.grant).unwrap(), Some(a.clone()));
        assert_eq!(m.ids().unwrap(), vec![a.grant.clone(), membership(2).grant]);
        m.remove(&a.grant).unwrap();
        m.remove(&a.grant).unwrap();
        assert_eq!(m.read(&a.grant).unwrap(), None);
        assert_eq!(fs::read_dir(root.join("memberships")).unwrap().count(), 1);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_manifest_that_does_not_read_back_is_an_error_naming_it() {
        let root = temp();
        let m = Manifests::new(root.clone());
        let a = membership(1);
        m.write(&a).unwrap();
        let path = root.join(a.grant.as_str());
        let text = fs::read_to_string(&path).unwrap();
        for bad in [
            text.replace("user=alice", "user=ALL,root"),
            text.replace("grant=", "grunt="),
            text.replace(&format!("grant={}", a.grant), "grant=g000000000000"),
        ] {
            fs::write(&path, bad).unwrap();
            let err = m.read(&a.grant).unwrap_err().to_string();
            assert!(err.contains(a.grant.as_str()), "{err}");
        }
        fs::remove_dir_all(&root).unwrap();
    }
}
