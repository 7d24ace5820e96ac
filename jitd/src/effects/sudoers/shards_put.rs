//! A grant's entry into its privilege's file, in two steps: [`Shards::stage_put`] writes the
//! file aside and starts `visudo` on it, [`StagedPut::finish`] writes the record and puts the
//! file in place. Between them the daemon commits the grant's intent to its database, so the
//! commit and the check run at the same time instead of one after the other; nothing sudo
//! reads has changed until `finish`. The records' lock is held from the first step to the last.

use super::*;
use crate::effects::sudoers::checked_write::Staged;
use crate::effects::sudoers::users::Tally;

/// A grant's entry on its way into a privilege's file (see the module note). Dropped
/// unfinished, the check stops, the temporary files go and the lock is released: nothing
/// changed.
#[must_use = "nothing is in place until it is finished"]
pub struct StagedPut<'a> {
    shards: &'a Shards,
    p: PrivilegeName,
    before: Record,
    after: Record,
    /// The users' counts after, when they change.
    tally: Option<Tally>,
    /// The users file goes once the rule is in (its last settings line went).
    remove_users_file: bool,
    /// The users file's lines change (installed or removed with this entry).
    users_lines_changed: bool,
    files: Option<Staged<'a>>,
    /// Held until the entry is in (or abandoned).
    _lock: fs::File,
}

impl Shards {
    /// Puts (or replaces) `entry` in the file of `p`; idempotent.
    pub fn put(&self, p: &PrivilegeName, entry: Entry) -> Result<(), GrantError> {
        self.stage_put(p, entry)?.finish()
    }

    /// The first step of [`Shards::put`]: under the lock, the file for the record with `entry`
    /// is written aside (with the users file, when the user's settings line appears: one
    /// `visudo` run for both) and its check started.
    pub fn stage_put(&self, p: &PrivilegeName, entry: Entry) -> Result<StagedPut<'_>, GrantError> {
        // Refused before anything is written: a text the file could not hold.
        consolidate::render(p, [&*entry.text]).map_err(|what| GrantError::Verify { what })?;
        let lock = self.lock()?;
        let before = self.read_locked(p)?;
        self.note_drift(p, &before);
        let lines = |e: Option<&Entry>| -> Vec<String> {
            e.map(|e| defaults(&e.text).into_iter().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let (old, new) = (lines(before.get(&entry.grant)), lines(Some(&entry)));
        let mut after = before.clone();
        after.insert(entry.grant.clone(), entry);
        let (name, marker) = (consolidate::file_name(p), consolidate::marker(p));
        let rule = Self::render(p, &after)?;
        let mut staged = StagedPut {
            shards: self,
            p: p.clone(),
            before,
            after,
            tally: None,
            remove_users_file: false,
            users_lines_changed: false,
            files: None,
            _lock: lock,
        };
        if staged.after == staged.before {
            // Nothing new: the file is put right if it was changed behind jitd's back.
            staged.files = Some(self.sudoers.stage_named(&[(&name, &marker, &rule)])?);
            return Ok(staged);
        }
        let (added, removed): (Vec<&str>, Vec<&str>) = (
            new.iter().map(String::as_str).collect(),
            old.iter().map(String::as_str).collect(),
        );
        let (tally, change) = self.users().plan(&added, &removed)?;
        let changed = !added.is_empty() || !removed.is_empty();
        staged.tally = changed.then_some(tally);
        staged.users_lines_changed = change.is_some();
        staged.files = Some(match change {
            // The settings (the ledger's logging) renamed in before the rule.
            Some(FileChange::Install(users_text)) => self.sudoers.stage_named(&[
                (USERS_FILE, USERS_MARKER, &users_text),
                (&name, &marker, &rule),
            ])?,
            Some(FileChange::Remove) => {
                staged.remove_users_file = true;
                self.sudoers.stage_named(&[(&name, &marker, &rule)])?
            }
            None => self.sudoers.stage_named(&[(&name, &marker, &rule)])?,
        });
        Ok(staged)
    }
}

impl Shards {
    /// Removes what a crash left written aside (`.jitd_<name>.tmp` in the drop-in directory:
    /// a staged file, the users file, `visudo`'s include file), under the lock, so nothing a
    /// running sweep is writing goes; returns how many.
    pub fn remove_stale_temps(&self) -> Result<usize, GrantError> {
        self.locked(|| self.sudoers.remove_named_temps())
    }
}

impl StagedPut<'_> {
    /// The second step: the record first (a crash after it leaves a record the next change
    /// or the integrity check renders), then the files once `visudo` has said yes, then the
    /// users' counts (they follow the files).
    pub fn finish(mut self) -> Result<(), GrantError> {
        let s = self.shards;
        let changed = self.after != self.before;
        if changed {
            s.files.write(&self.p, &self.before, &self.after)?;
        }
        if let Err(e) = self.files.take().map_or(Ok(()), Staged::commit) {
            if changed {
                // The rule was not put in place: the record goes back to what it says.
                let _ = s.files.write(&self.p, &self.after, &self.before);
            }
            return Err(e);
        }
        // The rule is in, and its record says so, whatever happens from here.
        if self.remove_users_file {
            s.sudoers.remove_named(USERS_FILE, USERS_MARKER)?;
        }
        if let Some(tally) = self.tally.take() {
            s.users().write(tally, self.users_lines_changed)?;
        }
        // The users file deleted or edited behind jitd's back: counted again and rewritten.
        if s.users_status()? != DropInStatus::Intact {
            s.recount_locked()?;
        }
        s.note_shown(&self.p);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // temp dirs and the real visudo in tests

    use super::*;
    use crate::clock::FakeClock;
    use crate::effects::sudoers::shards::tests::{entry, file, logged, p, shards, temp_dirs};

    /// Dot files in the drop-in directory: what a staged change writes aside (sudo skips them).
    fn temps_in(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    #[test]
    fn a_staged_grant_changes_nothing_sudo_reads_until_finished_and_nothing_when_dropped() {
        let dirs = temp_dirs();
        let s = shards(&dirs);
        let (a, b) = (entry(1, 1001, 1_795_000_000), entry(2, 1002, 1_795_000_000));
        s.put(&p(), a.clone()).unwrap();
        let shown = fs::read_to_string(file(&dirs)).unwrap();

        let staged = s.stage_put(&p(), b.clone()).unwrap();
        assert_eq!(fs::read_to_string(file(&dirs)).unwrap(), shown);
        assert_eq!(temps_in(&dirs.0).len(), 1, "written aside");
        drop(staged);
        assert_eq!(fs::read_to_string(file(&dirs)).unwrap(), shown);
        assert!(temps_in(&dirs.0).is_empty(), "{:?}", temps_in(&dirs.0));
        assert_eq!(s.entries().0.len(), 1, "the record is as it was");

        // The lock went with it: the same grant can be staged again, and finished.
        s.stage_put(&p(), b.clone()).unwrap().finish().unwrap();
        let text = fs::read_to_string(file(&dirs)).unwrap();
        assert!(text.contains("#1001, #1002 ALL="), "{text}");
        assert_eq!(s.entries().0.len(), 2);
        assert!(temps_in(&dirs.0).is_empty());
    }

    #[test]
    fn a_staged_grant_visudo_refuses_leaves_the_file_and_the_record_as_they_were() {
        let dirs = temp_dirs();
        let a = entry(1, 1001, 1_795_000_000);
        shards(&dirs).put(&p(), a.clone()).unwrap();
        let shown = fs::read_to_string(file(&dirs)).unwrap();
        let refusing = Shards::new(
            SudoersDir::new(dirs.0.clone(), PathBuf::from("/bin/false")),
            dirs.1.clone(),
            Arc::new(FakeClock::new(1_795_000_000_000)),
        );
        let staged = refusing
            .stage_put(&p(), entry(2, 1002, 1_795_000_000))
            .unwrap();
        let e = staged.finish().unwrap_err();
        assert!(matches!(e, GrantError::Visudo { .. }), "{e}");
        assert_eq!(fs::read_to_string(file(&dirs)).unwrap(), shown);
        assert!(temps_in(&dirs.0).is_empty());
        let left: Vec<GrantId> = shards(&dirs)
            .entries()
            .0
            .into_iter()
            .map(|(_, e)| e.grant)
            .collect();
        assert_eq!(left, vec![a.grant], "the record went back");
    }

    /// The users file's last line goes once the rule is in; if it cannot go then, the rule is
    /// in and its record must say so (never a file that its record does not explain).
    #[test]
    fn a_users_file_that_cannot_go_after_the_rule_leaves_the_record_saying_what_the_file_says() {
        let dirs = temp_dirs();
        let s = shards(&dirs).lingering(0);
        let a = logged(entry(1, 1001, 1_795_000_000), 1001);
        s.put(&p(), a.clone()).unwrap();
        // The same grant again without its settings line: the users file is due to go. A
        // file not carrying jitd's marker stands in its place, so it cannot.
        let users = dirs
            .0
            .join(crate::effects::sudoers::consolidate::USERS_FILE);
        fs::remove_file(&users).unwrap();
        fs::write(&users, "# not jitd's\n").unwrap();
        let plain = entry(1, 1001, 1_795_000_600);
        assert!(s.put(&p(), plain.clone()).is_err());
        let shown = fs::read_to_string(file(&dirs)).unwrap();
        let recorded = &shards(&dirs).entries().0[0].1;
        assert_eq!(
            Shards::render(&p(), &[(recorded.grant.clone(), recorded.clone())].into()).unwrap(),
            shown,
            "the record renders the file on disk"
        );
    }
}
