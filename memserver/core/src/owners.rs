//! Who owns each registered space: the client badge of every space id in
//! use, each id's registration generation (its fault badge's, kept after
//! the space goes so that a reused id gets a new one), and how many spaces
//! each client has, so that "is the caller registered" is a search among
//! clients, not a scan of spaces. Both tables grow with the spaces; room
//! is made before a registration ([`Owners::reserve`]), so recording it
//! cannot fail.

use alloc::vec::Vec;

use crate::error::Error;
use crate::ids::{Badge, SpaceId};

/// One space id's record.
#[derive(Clone, Copy, Default)]
struct Record {
    owner: Option<Badge>,
    generation: u32,
}

/// The owners of the registered spaces.
pub(crate) struct Owners {
    /// By space id, as far as the highest id ever registered.
    records: Vec<Record>,
    /// Clients with at least one space and how many, in badge order.
    clients: Vec<(Badge, u32)>,
}

impl Owners {
    pub(crate) const fn new() -> Self {
        Self { records: Vec::new(), clients: Vec::new() }
    }

    /// Makes room to record one more space (of id at most one past the
    /// highest recorded, which a registration's is) for a new client.
    pub(crate) fn reserve(&mut self) -> Result<(), Error> {
        self.records.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
        self.clients.try_reserve(1).map_err(|_| Error::OutOfMemory)
    }

    /// Records that `client` owns the newly registered space `id` and
    /// gives the registration's generation. Needs the room of
    /// [`Owners::reserve`].
    pub(crate) fn insert(&mut self, id: SpaceId, client: Badge) -> u32 {
        if self.records.len() <= id.index() {
            self.records.resize(id.index() + 1, Record::default());
        }
        let mut generation = 0;
        if let Some(record) = self.records.get_mut(id.index()) {
            record.generation = record.generation.wrapping_add(1);
            record.owner = Some(client);
            generation = record.generation;
        }
        match self.clients.binary_search_by_key(&client, |c| c.0) {
            Ok(at) => {
                if let Some(c) = self.clients.get_mut(at) {
                    c.1 += 1;
                }
            }
            Err(at) => self.clients.insert(at, (client, 1)),
        }
        generation
    }

    /// Forgets space `id`'s owner; gives it, and whether it has no space
    /// left.
    pub(crate) fn remove(&mut self, id: SpaceId) -> Option<(Badge, bool)> {
        let client = self.records.get_mut(id.index())?.owner.take()?;
        let at = self.clients.binary_search_by_key(&client, |c| c.0).ok()?;
        let left = self.clients.get_mut(at).map_or(0, |c| {
            c.1 -= 1;
            c.1
        });
        if left == 0 {
            self.clients.remove(at);
        }
        Some((client, left == 0))
    }

    /// Whether `client` owns a registered space.
    pub(crate) fn has_space(&self, client: Badge) -> bool {
        self.clients.binary_search_by_key(&client, |c| c.0).is_ok()
    }

    /// The generation of space `id`'s current registration, if registered.
    pub(crate) fn current(&self, id: SpaceId) -> Option<u32> {
        self.records.get(id.index()).filter(|r| r.owner.is_some()).map(|r| r.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_survive_unregistration_and_clients_count_their_spaces() {
        let mut o = Owners::new();
        let (a, b) = (Badge(0x100), Badge(0x101));
        let ids: std::vec::Vec<SpaceId> = (0..4096).filter_map(SpaceId::new).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(o.reserve(), Ok(()));
            assert_eq!(o.insert(*id, if i % 2 == 0 { a } else { b }), 1);
        }
        assert!(o.has_space(a) && o.has_space(b) && !o.has_space(Badge(7)));
        for id in ids.iter().step_by(2) {
            let last = id.index() == 4094;
            assert_eq!(o.remove(*id), Some((a, last)));
        }
        assert!(!o.has_space(a) && o.has_space(b));
        assert_eq!(o.current(ids[0]), None);
        assert_eq!((o.reserve(), o.insert(ids[0], b)), (Ok(()), 2), "a reused id gets a new generation");
        assert_eq!(o.current(ids[0]), Some(2));
        assert_eq!(o.remove(ids[0]), Some((b, false)));
    }
}
