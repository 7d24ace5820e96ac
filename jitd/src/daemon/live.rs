//! The live grants, by id and by uid: a request, an approval or a ledger event looks at one
//! user's grants, and on a host of ten thousand live grants walking them all was most of what
//! made a request slower there than on a host of ten.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;

use crate::grant::GrantRecord;
use crate::names::GrantId;

/// Every grant something of which may be on the system, by id (read through `Deref`), and
/// the ids of each uid's.
#[derive(Default)]
pub struct LiveSet {
    /// Boxed: a B-tree node holds eleven values inline, most of them empty slots at any time.
    by_id: BTreeMap<GrantId, Box<GrantRecord>>,
    by_uid: HashMap<u32, Vec<GrantId>>,
}

impl Deref for LiveSet {
    type Target = BTreeMap<GrantId, Box<GrantRecord>>;

    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

impl LiveSet {
    /// Puts `g` in, in place of any grant with its id.
    pub fn insert(&mut self, g: Box<GrantRecord>) {
        let (id, uid) = (g.id.clone(), g.uid);
        if let Some(old) = self.by_id.insert(id.clone(), g) {
            self.forget_uid(old.uid, &id);
        }
        self.by_uid.entry(uid).or_default().push(id);
    }

    pub fn remove(&mut self, id: &GrantId) -> Option<Box<GrantRecord>> {
        let g = self.by_id.remove(id)?;
        self.forget_uid(g.uid, id);
        Some(g)
    }

    /// The live grants of `uid`.
    pub fn of_uid(&self, uid: u32) -> impl Iterator<Item = &GrantRecord> {
        self.by_uid
            .get(&uid)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id).map(|g| &**g))
    }

    fn forget_uid(&mut self, uid: u32, id: &GrantId) {
        if let Some(ids) = self.by_uid.get_mut(&uid) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.by_uid.remove(&uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::GrantState;

    fn grant_record(id: u64, uid: u32) -> GrantRecord {
        GrantRecord {
            uid,
            ..crate::store::tests::record(id, GrantState::Active)
        }
    }

    #[test]
    fn a_uids_grants_are_found_without_the_others_and_go_when_removed_or_replaced() {
        let mut live = LiveSet::default();
        let (a, b, c) = (
            grant_record(1, 1001),
            grant_record(2, 1002),
            grant_record(3, 1001),
        );
        for g in [&a, &b, &c] {
            live.insert(Box::new(g.clone()));
        }
        let ids = |live: &LiveSet, uid| {
            let mut v: Vec<GrantId> = live.of_uid(uid).map(|g| g.id.clone()).collect();
            v.sort();
            v
        };
        assert_eq!(ids(&live, 1001), vec![a.id.clone(), c.id.clone()]);
        assert_eq!(ids(&live, 1002), vec![b.id.clone()]);
        assert!(live.remove(&a.id).is_some());
        assert_eq!(ids(&live, 1001), vec![c.id.clone()]);
        // The same grant put in again (a state change) is listed once.
        live.insert(Box::new(c.clone()));
        assert_eq!(ids(&live, 1001), vec![c.id.clone()]);
        assert!(live.remove(&c.id).is_some());
        assert!(ids(&live, 1001).is_empty());
        assert_eq!(live.len(), 1);
    }
}
