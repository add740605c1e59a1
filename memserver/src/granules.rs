//! The server's untyped memory as granules, and what each granule holds.
//!
//! seL4 gives an untyped's memory back only when the untyped is reset:
//! every object made from it deleted, after which its next Retype starts
//! from the beginning again. Deleting one object gives nothing back. So
//! the server splits the untyped it was given into granules of 2 MiB
//! (child untypeds) and tracks, per granule, the objects made from it and
//! whether each is in use. A granule holds one 2 MiB frame, or up to 512
//! 4 KiB objects (4 KiB frames and paging structures alike). A granule none
//! of whose objects is in use can be reset and serve any kind again, so
//! memory freed by any use becomes usable by every use.
//!
//! - [`Granules::take`] hands out an object of a kind that is not in use
//!   (fresh from a Retype, or spare after use), from the granule with the
//!   most objects in use that has one: freed objects then gather in
//!   granules that end up wholly unused. A granule with nothing in use
//!   offers its objects of a kind only if they are at least half of it.
//! - [`Granules::batch`] says where to make new objects of a kind: a
//!   granule of 4 KiB objects with room (again the fullest), else an empty
//!   granule; [`Granules::made`] records them.
//! - [`Granules::reclaimable`] picks a granule to reset when neither gives
//!   an object; [`Granules::reset`] empties it once its capability has
//!   been revoked.
//!
//! Object `g * UNITS + k` ([`ObjectId`]) is the `k`-th object made in
//! granule `g` since its last reset, so each object has a fixed capability
//! slot and a fixed frame index. The records grow with what the server
//! was given: 56 bytes per granule, and the record of its objects (3.3
//! KiB) once any is made ([`Granules::prepare`], with `try_reserve`).
//! Pure bookkeeping, built and tested on the host; the seL4 backend
//! (`sel4::untyped_pool`) makes the invocations.

use alloc::vec::Vec;
use core::cmp::Reverse;
use core::ops::Range;
use memserver_core::layout::{Level, PageSize, PAGE_SIZE};
use memserver_core::Holder;

/// 4 KiB units in a granule (2 MiB).
pub const UNITS: usize = 512;
/// Granules object numbers can name (they are `u32`): 16 TiB of memory.
const MAX_GRANULES: usize = (u32::MAX as usize + 1) / UNITS;
/// Words of a per-granule bit set over its objects.
const WORDS: usize = UNITS / 64;
/// Kinds of object.
const KINDS: usize = ObjectKind::ALL.len();

/// What an object made from a granule is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// A 4 KiB frame.
    SmallFrame,
    /// A 2 MiB frame: a granule holds one.
    LargeFrame,
    /// A page directory pointer table.
    Pdpt,
    /// A page directory.
    Pd,
    /// A page table.
    Pt,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 5] =
        [ObjectKind::SmallFrame, ObjectKind::LargeFrame, ObjectKind::Pdpt, ObjectKind::Pd, ObjectKind::Pt];

    /// The frame of `size`, if a granule holds it (a 1 GiB frame takes a
    /// whole block of granules, [`Granules::lend`]).
    pub const fn frame(size: PageSize) -> Option<ObjectKind> {
        match size {
            PageSize::Small => Some(ObjectKind::SmallFrame),
            PageSize::Large => Some(ObjectKind::LargeFrame),
            PageSize::Huge => None,
        }
    }

    /// The paging structure of `level` (`None` for the PML4, which the
    /// server never makes).
    pub const fn structure(level: Level) -> Option<ObjectKind> {
        match level {
            Level::Pdpt => Some(ObjectKind::Pdpt),
            Level::Pd => Some(ObjectKind::Pd),
            Level::Pt => Some(ObjectKind::Pt),
            Level::Pml4 => None,
        }
    }

    /// 4 KiB units of memory one object takes.
    pub const fn units(self) -> usize {
        match self {
            ObjectKind::LargeFrame => UNITS,
            _ => 1,
        }
    }

    /// Bytes of memory one object takes.
    pub const fn bytes(self) -> u64 {
        self.units() as u64 * PAGE_SIZE
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// An object's number: granule times [`UNITS`] plus its place in the
/// granule. It doubles as a frame index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(u32);

impl ObjectId {
    /// Object number `n`.
    pub const fn new(n: u32) -> ObjectId {
        ObjectId(n)
    }

    /// `granule` is below [`MAX_GRANULES`] ([`Granules::add`] makes no
    /// more), so the number fits.
    const fn at(granule: usize, place: usize) -> ObjectId {
        ObjectId((granule * UNITS + place) as u32)
    }

    /// The number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The granule it was made from.
    pub const fn granule(self) -> usize {
        self.0 as usize / UNITS
    }

    const fn place(self) -> usize {
        self.0 as usize % UNITS
    }
}

/// Whether an object is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Made and never used (a Retype zeroes what it makes).
    Fresh,
    /// Used and given back (a frame is zeroed before its next use, unless
    /// that is its last holder's, who asked for no zeroing).
    Spare,
    /// In use.
    InUse,
}

#[derive(Clone, Copy)]
struct Object {
    kind: ObjectKind,
    state: State,
}

/// Where to make a batch of new objects: `count` objects from `first` on,
/// in `granule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The granule to retype from.
    pub granule: usize,
    /// The first new object's number (the others follow).
    pub first: ObjectId,
    /// How many.
    pub count: usize,
}

/// Whom an object is for. The server's own objects gather in granules of
/// their own, which serve clients only when no other granule can, and
/// clients' objects stay out of them: so a heap grown amid clients' frames
/// keeps as few granules from being reset as can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// A client: a frame or paging structure given back when freed.
    Client,
    /// The server itself: a frame of its heap or a paging structure of its
    /// own VSpace, kept once in place.
    Server,
}

impl Use {
    /// The other one.
    pub const fn other(self) -> Use {
        match self {
            Use::Client => Use::Server,
            Use::Server => Use::Client,
        }
    }
}

/// No memory for a granule's record of its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory;

/// What a granule's objects are.
struct Objects {
    /// Objects not in use, by kind: one bit per place.
    available: [[u64; WORDS]; KINDS],
    objects: [Option<Object>; UNITS],
    /// Whose data each frame last held: a [`Holder`]'s number, 0 for none
    /// (fresh, or data of no single client).
    holders: [u32; UNITS],
}

impl Objects {
    const EMPTY: Objects = Objects { available: [[0; WORDS]; KINDS], objects: [None; UNITS], holders: [0; UNITS] };
}

struct Granule {
    /// 4 KiB units of memory it has ([`UNITS`], or fewer for an untyped
    /// smaller than a granule).
    units: usize,
    /// Objects made since the last reset.
    made: usize,
    /// Objects in use.
    in_use: usize,
    /// Part of a 1 GiB frame, or one of the server's CNodes
    /// ([`Granules::lend`]): it serves nothing else until the frame is
    /// freed (a CNode stays).
    lent: bool,
    /// Holds objects taken for [`Use::Server`] since the last reset.
    server: bool,
    /// The record of its objects: none until the first is made, then one
    /// (a box allocated with `try_reserve`).
    objects: Vec<Objects>,
}

impl Granule {
    const fn new(units: usize) -> Granule {
        Granule { units, made: 0, in_use: 0, lent: false, server: false, objects: Vec::new() }
    }

    fn record(&self) -> Option<&Objects> {
        self.objects.first()
    }

    fn object(&self, place: usize) -> Option<Object> {
        self.record()?.objects.get(place).copied().flatten()
    }

    fn is_large(&self) -> bool {
        matches!(self.object(0), Some(Object { kind: ObjectKind::LargeFrame, .. }))
    }

    /// 4 KiB units made into objects.
    fn used_units(&self) -> usize {
        if self.is_large() {
            self.units
        } else {
            self.made
        }
    }

    fn available(&self, kind: ObjectKind) -> Option<&[u64; WORDS]> {
        self.record()?.available.get(kind.index())
    }

    fn has(&self, kind: ObjectKind) -> bool {
        self.available(kind).is_some_and(|words| words.iter().any(|w| *w != 0))
    }

    /// Whether an unused object of `kind` should be taken from here: the
    /// granule is in use anyway, or at least half of it is such objects.
    /// (Taking one from a granule of other unused objects would keep all
    /// of them from a reset; new objects made elsewhere cost no memory.)
    fn offers(&self, kind: ObjectKind) -> bool {
        self.has(kind) && (self.in_use > 0 || 2 * self.count_available(kind) >= self.made as u64)
    }

    /// The lowest place holding an object of `kind` not in use.
    fn first_available(&self, kind: ObjectKind) -> Option<usize> {
        let words = self.available(kind)?;
        let (i, w) = words.iter().enumerate().find(|(_, w)| **w != 0)?;
        Some(i * 64 + w.trailing_zeros() as usize)
    }

    /// Sets the state of the object at `place`; returns what it was.
    fn set_state(&mut self, place: usize, state: State) -> Option<State> {
        let object = self.objects.first_mut()?.objects.get_mut(place)?.as_mut()?;
        let (was, kind) = (object.state, object.kind);
        object.state = state;
        match (was == State::InUse, state == State::InUse) {
            (false, true) => self.in_use += 1,
            (true, false) => self.in_use = self.in_use.saturating_sub(1),
            _ => {}
        }
        self.mark(kind, place, state != State::InUse);
        Some(was)
    }

    /// Records whether the object of `kind` at `place` is available.
    fn mark(&mut self, kind: ObjectKind, place: usize, available: bool) {
        let words = self.objects.first_mut().and_then(|record| record.available.get_mut(kind.index()));
        if let Some(word) = words.and_then(|words| words.get_mut(place / 64)) {
            let bit = 1u64 << (place % 64);
            if available {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    /// Objects not in use, of `kind`.
    fn count_available(&self, kind: ObjectKind) -> u64 {
        self.available(kind).map_or(0, |words| words.iter().map(|w| u64::from(w.count_ones())).sum())
    }
}

/// Every granule and its objects.
pub struct Granules {
    granules: Vec<Granule>,
    /// The granule each kind was last taken from: it stays the fullest
    /// while it has one, until one of the kind is given back. (So the same
    /// free objects are taken in the same order again: a recycled frame
    /// then is one the zeroing window already maps.)
    preferred: [Option<usize>; KINDS],
    /// By kind, one bit a granule: whether it has an object of the kind
    /// not in use. A take looks among these, not at every granule.
    offering: [Vec<u64>; KINDS],
}

impl Default for Granules {
    fn default() -> Self {
        Self::new()
    }
}

impl Granules {
    /// No granules.
    pub const fn new() -> Granules {
        Granules { granules: Vec::new(), preferred: [None; KINDS], offering: [const { Vec::new() }; KINDS] }
    }

    /// Makes room for `n` more granules.
    pub fn reserve(&mut self, n: usize) -> Result<(), NoMemory> {
        if self.granules.len().saturating_add(n) > MAX_GRANULES {
            return Err(NoMemory);
        }
        let words = (self.granules.len() + n).div_ceil(64);
        for bits in &mut self.offering {
            bits.try_reserve_exact(words.saturating_sub(bits.len())).map_err(|_| NoMemory)?;
        }
        self.granules.try_reserve_exact(n).map_err(|_| NoMemory)
    }

    /// Adds an empty granule of `units` 4 KiB units (at most [`UNITS`]),
    /// in room [`Granules::reserve`] made; its number, or `None` without
    /// room.
    pub fn add(&mut self, units: usize) -> Option<usize> {
        if self.granules.len() == self.granules.capacity() || self.granules.len() >= MAX_GRANULES {
            return None;
        }
        self.granules.push(Granule::new(units.min(UNITS)));
        let words = self.granules.len().div_ceil(64);
        for bits in &mut self.offering {
            // Within the room `reserve` made.
            bits.resize(words, 0);
        }
        Some(self.granules.len() - 1)
    }

    /// How many granules there are.
    pub fn count(&self) -> usize {
        self.granules.len()
    }

    /// The granules that serve objects: all but those lent to a 1 GiB
    /// frame.
    fn live(&self) -> impl Iterator<Item = (usize, &Granule)> {
        self.granules.iter().enumerate().filter(|(_, gr)| !gr.lent)
    }

    /// An object of `kind` not in use, now in use, and what it was; from
    /// the granule of `user`'s objects with the most objects in use that
    /// offers one.
    pub fn take(&mut self, kind: ObjectKind, user: Use) -> Option<(ObjectId, State)> {
        let eligible = |gr: &Granule| !gr.lent && gr.offers(kind) && gr.server == (user == Use::Server);
        let preferred = self.preferred.get(kind.index()).copied().flatten();
        let preferred = preferred.filter(|&g| self.granules.get(g).is_some_and(eligible));
        let granule = preferred.or_else(|| {
            let offering = self.offering(kind).filter_map(|g| self.granules.get(g).map(|gr| (g, gr)));
            let candidates = offering.filter(|(_, gr)| eligible(gr));
            candidates.min_by_key(|(g, gr)| (Reverse(gr.in_use), *g)).map(|(g, _)| g)
        })?;
        if let Some(p) = self.preferred.get_mut(kind.index()) {
            *p = Some(granule);
        }
        let gr = self.granules.get_mut(granule)?;
        let place = gr.first_available(kind)?;
        let was = gr.set_state(place, State::InUse)?;
        self.note(granule, kind);
        Some((ObjectId::at(granule, place), was))
    }

    /// The granules with an object of `kind` not in use, in order.
    fn offering(&self, kind: ObjectKind) -> impl Iterator<Item = usize> + '_ {
        let words = self.offering.get(kind.index()).map_or(&[][..], Vec::as_slice);
        words.iter().enumerate().flat_map(|(i, &word)| {
            let mut rest = word;
            core::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    i * 64 + bit
                })
            })
        })
    }

    /// Records whether `granule` has an object of `kind` not in use.
    fn note(&mut self, granule: usize, kind: ObjectKind) {
        let has = self.granules.get(granule).is_some_and(|gr| gr.has(kind));
        if let Some(word) = self.offering.get_mut(kind.index()).and_then(|bits| bits.get_mut(granule / 64)) {
            let bit = 1 << (granule % 64);
            if has {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    /// Marks `granule` as one that holds the server's objects: it serves
    /// [`Use::Server`], and clients only when nothing else can.
    pub fn hold_for_server(&mut self, granule: usize) {
        if let Some(gr) = self.granules.get_mut(granule) {
            gr.server = true;
        }
    }

    /// Gives object `id` back: it is spare.
    pub fn give_back(&mut self, id: ObjectId) {
        let Some(granule) = self.granules.get_mut(id.granule()) else { return };
        let kind = granule.object(id.place()).map(|o| o.kind);
        granule.set_state(id.place(), State::Spare);
        if let Some(kind) = kind {
            self.note(id.granule(), kind);
        }
        if let Some(preferred) = kind.and_then(|kind| self.preferred.get_mut(kind.index())) {
            *preferred = None;
        }
    }

    /// The state of object `id`, if it exists.
    pub fn state(&self, id: ObjectId) -> Option<State> {
        self.granules.get(id.granule())?.object(id.place()).map(|o| o.state)
    }

    /// Whose data frame `id` last held, as [`Granules::hold`] recorded
    /// (none for a frame not taken since its granule's last reset).
    pub fn holder(&self, id: ObjectId) -> Option<Holder> {
        let record = self.granules.get(id.granule())?.record()?;
        record.holders.get(id.place()).copied().filter(|&n| n != 0).map(Holder)
    }

    /// Records that frame `id` holds `holder`'s data from now on.
    pub fn hold(&mut self, id: ObjectId, holder: Option<Holder>) {
        let record = self.granules.get_mut(id.granule()).and_then(|gr| gr.objects.first_mut());
        if let Some(n) = record.and_then(|record| record.holders.get_mut(id.place())) {
            *n = holder.map_or(0, |Holder(n)| n);
        }
    }

    /// Where up to `want` new objects of `kind` can be made: a 2 MiB frame
    /// in an empty whole granule; 4 KiB objects in the fullest granule of
    /// 4 KiB objects of `user`'s with room, else in an empty granule. Among empty
    /// granules, the lowest of those `rank` ranks first (on seL4: outside
    /// the blocks that could become 1 GiB frames, and with their run of
    /// slots).
    pub fn batch(&self, kind: ObjectKind, want: usize, user: Use, rank: impl Fn(usize) -> u8) -> Option<Batch> {
        let empty = |gr: &Granule| gr.made == 0 && gr.units >= kind.units();
        let first_empty = || {
            let empties = self.live().filter(|(_, gr)| empty(gr));
            empties.min_by_key(|&(g, _)| (rank(g), g)).map(|(g, _)| g)
        };
        let granule = match kind {
            ObjectKind::LargeFrame => first_empty(),
            _ => {
                let with_room = self.live().filter(|(_, gr)| {
                    gr.made > 0 && !gr.is_large() && gr.made < gr.units && gr.server == (user == Use::Server)
                });
                let fullest = with_room.min_by_key(|(g, gr)| (Reverse(gr.in_use), *g)).map(|(g, _)| g);
                fullest.or_else(first_empty)
            }
        }?;
        let gr = self.granules.get(granule)?;
        let count = match kind {
            ObjectKind::LargeFrame => 1,
            _ => want.min(gr.units - gr.made),
        };
        (count > 0).then(|| Batch { granule, first: ObjectId::at(granule, gr.made), count })
    }

    /// Makes sure the objects of `batch` can be recorded: the granule's
    /// record of its objects exists (`Err`, nothing changed, without
    /// memory for it).
    pub fn prepare(&mut self, batch: Batch) -> Result<(), NoMemory> {
        let gr = self.granules.get_mut(batch.granule).ok_or(NoMemory)?;
        if gr.objects.is_empty() {
            gr.objects.try_reserve_exact(1).map_err(|_| NoMemory)?;
            gr.objects.push(Objects::EMPTY);
        }
        Ok(())
    }

    /// Records the objects of `batch`, of `kind`, as made (fresh), once
    /// [`Granules::prepare`] succeeded for it.
    pub fn made(&mut self, batch: Batch, kind: ObjectKind) {
        let Some(gr) = self.granules.get_mut(batch.granule) else { return };
        for place in batch.first.place()..batch.first.place() + batch.count {
            let slot = gr.objects.first_mut().and_then(|record| record.objects.get_mut(place));
            if let Some(slot) = slot {
                *slot = Some(Object { kind, state: State::Fresh });
                gr.made += 1;
                gr.mark(kind, place, true);
            }
        }
        self.note(batch.granule, kind);
    }

    /// A granule to reset for an object of `kind`: one with objects, none
    /// of them in use, big enough; the one with the fewest objects.
    pub fn reclaimable(&self, kind: ObjectKind) -> Option<usize> {
        let idle = self.live().filter(|(_, gr)| gr.made > 0 && gr.in_use == 0 && gr.units >= kind.units());
        idle.min_by_key(|(g, gr)| (gr.made, *g)).map(|(g, _)| g)
    }

    /// The objects made from `granule`, with their kinds.
    pub fn objects(&self, granule: usize) -> impl Iterator<Item = (ObjectId, ObjectKind)> + '_ {
        let objects = self.granules.get(granule).and_then(Granule::record).map(|record| &record.objects);
        objects
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(move |(place, o)| o.as_ref().map(|o| (ObjectId::at(granule, place), o.kind)))
    }

    /// Forgets every object of `granule`, whose capability was revoked
    /// (all its objects deleted): it is empty again (its record of objects
    /// stays allocated, for the next).
    pub fn reset(&mut self, granule: usize) {
        if let Some(gr) = self.granules.get_mut(granule) {
            (gr.made, gr.in_use, gr.server) = (0, 0, false);
            if let Some(record) = gr.objects.first_mut() {
                *record = Objects::EMPTY;
            }
        }
        for kind in ObjectKind::ALL {
            self.note(granule, kind);
        }
    }

    /// Objects not in use (fresh or spare), and the bytes they hold.
    pub fn spare(&self) -> (u64, u64) {
        let per_kind = ObjectKind::ALL.map(|kind| self.live().map(|(_, gr)| gr.count_available(kind)).sum::<u64>());
        ObjectKind::ALL.iter().zip(per_kind).fold((0, 0), |(n, b), (kind, k)| (n + k, b + k * kind.bytes()))
    }

    /// Objects made (in use or not), by kind.
    pub fn count_made(&self, kind: ObjectKind) -> u64 {
        let objects = self.live().flat_map(|(_, gr)| gr.record().into_iter().flat_map(|r| r.objects.iter().flatten()));
        objects.filter(|o| o.kind == kind).count() as u64
    }

    /// Bytes of all granules.
    pub fn bytes(&self) -> u64 {
        self.granules.iter().map(|gr| gr.units as u64 * PAGE_SIZE).sum()
    }

    /// Whether the granules of `block` can be lent to a 1 GiB frame: all
    /// whole, none lent, none of their objects in use.
    pub fn idle(&self, block: Range<usize>) -> bool {
        let granules = self.granules.get(block);
        granules.is_some_and(|grs| grs.iter().all(|gr| gr.units == UNITS && !gr.lent && gr.in_use == 0))
    }

    /// Objects made from the granules of `block` (what lending it resets).
    pub fn made_in(&self, block: Range<usize>) -> usize {
        self.granules.get(block).map_or(0, |grs| grs.iter().map(|gr| gr.made).sum())
    }

    /// The granules of `block`, reset and their capabilities revoked, now
    /// hold one 1 GiB frame; [`Granules::unlend`] makes them serve again.
    pub fn lend(&mut self, block: Range<usize>) {
        self.set_lent(block, true);
    }

    /// The 1 GiB frame over `block` is deleted and its granules made
    /// again: they serve objects (none made yet).
    pub fn unlend(&mut self, block: Range<usize>) {
        self.set_lent(block, false);
    }

    fn set_lent(&mut self, block: Range<usize>, lent: bool) {
        for granule in block.clone() {
            self.reset(granule);
        }
        if let Some(granules) = self.granules.get_mut(block) {
            granules.iter_mut().for_each(|gr| gr.lent = lent);
        }
    }

    /// Bytes of the granules not made into objects.
    pub fn untyped_free(&self) -> u64 {
        self.live().map(|(_, gr)| (gr.units - gr.used_units()) as u64 * PAGE_SIZE).sum()
    }

    /// Whether `granule` is whole, not lent and has made no object since
    /// its last reset.
    pub fn unmade(&self, granule: usize) -> bool {
        self.granules.get(granule).is_some_and(|gr| gr.units == UNITS && !gr.lent && gr.made == 0)
    }

    /// Objects made from `granule` since its last reset.
    pub fn made_from(&self, granule: usize) -> usize {
        self.granules.get(granule).map_or(0, |gr| gr.made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn granules(n: usize) -> Granules {
        let mut g = Granules::new();
        g.reserve(n).unwrap();
        for _ in 0..n {
            g.add(UNITS);
        }
        g
    }

    /// Records `batch` of `kind` as made, as the seL4 backend does around
    /// its Retype.
    fn make(g: &mut Granules, batch: Batch, kind: ObjectKind) {
        g.prepare(batch).unwrap();
        g.made(batch, kind);
    }

    /// Takes an object of `kind`, making a batch of `batch` when none is
    /// left and resetting a reclaimable granule when nothing has room, as
    /// the seL4 backend does.
    fn obtain(g: &mut Granules, kind: ObjectKind, batch: usize) -> Option<(ObjectId, State)> {
        if let Some(taken) = g.take(kind, Use::Client) {
            return Some(taken);
        }
        let room = g.batch(kind, batch, Use::Client, |_| 0).or_else(|| {
            let granule = g.reclaimable(kind)?;
            g.reset(granule);
            g.batch(kind, batch, Use::Client, |_| 0)
        })?;
        make(g, room, kind);
        g.take(kind, Use::Client)
    }

    /// Places for objects not made yet, over every granule.
    fn empty_slots(g: &Granules) -> u64 {
        (0..g.count()).map(|granule| (UNITS - g.made_from(granule)) as u64).sum()
    }

    /// Bytes not in use: never made into objects, or held by objects not
    /// in use.
    fn unused(g: &Granules) -> u64 {
        g.untyped_free() + g.spare().1
    }

    #[test]
    fn a_batch_is_fresh_and_taken_in_order() {
        let mut g = granules(2);
        let batch = g.batch(ObjectKind::SmallFrame, 256, Use::Client, |_| 0).unwrap();
        assert_eq!(batch, Batch { granule: 0, first: ObjectId::new(0), count: 256 });
        make(&mut g, batch, ObjectKind::SmallFrame);
        assert_eq!(g.spare(), (256, MIB));
        assert_eq!(g.untyped_free(), 3 * MIB);
        assert_eq!(empty_slots(&g), 2 * UNITS as u64 - 256);
        assert_eq!(g.take(ObjectKind::SmallFrame, Use::Client), Some((ObjectId::new(0), State::Fresh)));
        assert_eq!(g.take(ObjectKind::SmallFrame, Use::Client), Some((ObjectId::new(1), State::Fresh)));
        assert_eq!(g.take(ObjectKind::Pt, Use::Client), None, "a kind never made is not handed out");
        g.give_back(ObjectId::new(0));
        assert_eq!(g.take(ObjectKind::SmallFrame, Use::Client), Some((ObjectId::new(0), State::Spare)));
        assert_eq!(g.spare(), (254, 254 * 4096));
    }

    #[test]
    fn a_granule_record_takes_56_bytes() {
        assert_eq!(core::mem::size_of::<Granule>(), 56);
    }

    #[test]
    fn lent_granules_serve_nothing_until_given_back() {
        let mut g = granules(4);
        let taken = obtain(&mut g, ObjectKind::SmallFrame, 256).unwrap();
        assert!(!g.idle(0..2), "an object in use");
        assert!(g.idle(2..4) && !g.idle(3..5), "granules past the end are not idle");
        g.give_back(taken.0);
        assert!(g.idle(0..2));
        assert_eq!(g.made_in(0..2), 256);
        g.lend(0..2);
        assert_eq!((g.made_in(0..2), g.untyped_free(), g.bytes()), (0, 4 * MIB, 8 * MIB), "reset and lent");
        assert!(!g.idle(0..2), "lent already");
        for _ in 0..2 {
            let (id, _) = obtain(&mut g, ObjectKind::LargeFrame, 1).unwrap();
            assert!(id.granule() >= 2, "{id:?} from a lent granule");
        }
        assert_eq!(obtain(&mut g, ObjectKind::SmallFrame, 256), None, "nothing left but the lent granules");
        g.unlend(0..2);
        assert_eq!(obtain(&mut g, ObjectKind::SmallFrame, 256).map(|(id, _)| id.granule()), Some(0));
    }

    #[test]
    fn the_servers_objects_and_clients_objects_keep_to_granules_of_their_own() {
        let mut g = granules(3);
        let server = g.batch(ObjectKind::SmallFrame, 256, Use::Server, |_| 0).unwrap();
        make(&mut g, server, ObjectKind::SmallFrame);
        g.hold_for_server(server.granule);
        assert_eq!(g.take(ObjectKind::SmallFrame, Use::Server).map(|(id, _)| id.granule()), Some(0));
        assert_eq!(g.take(ObjectKind::SmallFrame, Use::Client), None, "the server's granule serves no client");
        let client = g.batch(ObjectKind::SmallFrame, 256, Use::Client, |_| 0).unwrap();
        assert_eq!(client.granule, 1, "a client's batch goes to an empty granule, not the server's with room");
        make(&mut g, client, ObjectKind::SmallFrame);
        for _ in 0..256 {
            assert_eq!(g.take(ObjectKind::SmallFrame, Use::Client).map(|(id, _)| id.granule()), Some(1));
        }
        assert_eq!(g.batch(ObjectKind::SmallFrame, 256, Use::Server, |_| 0).map(|b| b.granule), Some(0));
        assert_eq!(g.batch(ObjectKind::SmallFrame, 256, Use::Client, |_| 0).map(|b| b.granule), Some(1));
        g.reset(0);
        assert_eq!(g.batch(ObjectKind::SmallFrame, 256, Use::Client, |_| 0).map(|b| b.granule), Some(1));
        let rest = g.batch(ObjectKind::SmallFrame, 256, Use::Client, |_| 0).unwrap();
        make(&mut g, rest, ObjectKind::SmallFrame);
        assert_eq!(
            g.batch(ObjectKind::SmallFrame, 256, Use::Client, |_| 0).map(|b| b.granule),
            Some(0),
            "a reset granule is anyone's"
        );
    }

    #[test]
    fn small_objects_fill_a_granule_before_the_next_and_large_frames_take_whole_ones() {
        let mut g = granules(3);
        let pts = g.batch(ObjectKind::Pt, 128, Use::Client, |_| 0).unwrap();
        make(&mut g, pts, ObjectKind::Pt);
        let frames = g.batch(ObjectKind::SmallFrame, 512, Use::Client, |_| 0).unwrap();
        assert_eq!((frames.granule, frames.first.get(), frames.count), (0, 128, 384), "the rest of granule 0");
        make(&mut g, frames, ObjectKind::SmallFrame);
        assert_eq!(g.batch(ObjectKind::SmallFrame, 256, Use::Client, |_| 0).map(|b| b.granule), Some(1));
        let large = g.batch(ObjectKind::LargeFrame, 256, Use::Client, |_| 0).unwrap();
        assert_eq!((large.granule, large.first.get(), large.count), (1, 512, 1));
        make(&mut g, large, ObjectKind::LargeFrame);
        assert_eq!(g.batch(ObjectKind::LargeFrame, 1, Use::Client, |_| 0).map(|b| b.granule), Some(2));
        assert_eq!(
            g.batch(ObjectKind::Pd, 32, Use::Client, |_| 0).map(|b| b.granule),
            Some(2),
            "never after a large frame"
        );
        assert_eq!(g.untyped_free(), 2 * MIB);
        assert_eq!(empty_slots(&g), 511 + 512);
    }

    #[test]
    fn objects_come_from_the_fullest_granule() {
        let mut g = granules(2);
        for granule in 0..2 {
            let b = g.batch(ObjectKind::SmallFrame, 512, Use::Client, |_| 0).unwrap();
            assert_eq!(b.granule, granule);
            make(&mut g, b, ObjectKind::SmallFrame);
        }
        let all: Vec<_> = (0..1024).map(|_| g.take(ObjectKind::SmallFrame, Use::Client).unwrap().0).collect();
        // Free every other frame of both granules, then keep one of
        // granule 1 in use: reuse fills granule 1 first.
        for id in all.iter().step_by(2) {
            g.give_back(*id);
        }
        let kept = all[513];
        for id in all.iter().skip(1).step_by(2).filter(|id| **id != kept) {
            g.give_back(*id);
        }
        let again: Vec<_> = (0..511).map(|_| g.take(ObjectKind::SmallFrame, Use::Client).unwrap().0).collect();
        assert!(again.iter().all(|id| id.granule() == 1), "granule 1 was the fuller");
        assert_eq!(g.reclaimable(ObjectKind::LargeFrame), Some(0), "granule 0 is wholly unused");
    }

    /// The index of granules offering each kind says what a scan of every
    /// granule would, through makes, takes, give-backs and resets.
    #[test]
    fn the_offering_index_agrees_with_the_granules() {
        let mut g = granules(130);
        let agrees = |g: &Granules| {
            for kind in ObjectKind::ALL {
                let scanned: Vec<usize> = (0..g.count()).filter(|&i| g.granules[i].has(kind)).collect();
                assert_eq!(g.offering(kind).collect::<Vec<_>>(), scanned, "{kind:?}");
            }
        };
        let mut taken = Vec::new();
        for round in 0..200 {
            let kind = [ObjectKind::SmallFrame, ObjectKind::Pt, ObjectKind::LargeFrame][round % 3];
            taken.push(obtain(&mut g, kind, 64).expect("room").0);
            if round % 5 == 4 {
                for id in taken.drain(..).step_by(2) {
                    g.give_back(id);
                }
            }
            agrees(&g);
        }
        for id in taken {
            g.give_back(id);
        }
        if let Some(granule) = g.reclaimable(ObjectKind::LargeFrame) {
            g.reset(granule);
        }
        agrees(&g);
    }

    #[test]
    fn objects_given_back_are_taken_again_in_the_same_order() {
        let mut g = granules(3);
        for _ in 0..3 {
            let b = g.batch(ObjectKind::SmallFrame, 256, Use::Client, |_| 0).unwrap();
            make(&mut g, b, ObjectKind::SmallFrame);
        }
        let take = |g: &mut Granules, n| -> Vec<ObjectId> {
            (0..n).map(|_| g.take(ObjectKind::SmallFrame, Use::Client).unwrap().0).collect()
        };
        let pinned = take(&mut g, 300);
        let first = take(&mut g, 200);
        for id in &first {
            g.give_back(*id);
        }
        assert_eq!(take(&mut g, 200), first);
        drop(pinned);
    }

    #[test]
    fn a_granule_is_reclaimable_only_when_none_of_its_objects_is_in_use() {
        let mut g = granules(2);
        let (a, _) = obtain(&mut g, ObjectKind::Pt, 128).unwrap();
        let (b, _) = obtain(&mut g, ObjectKind::LargeFrame, 1).unwrap();
        assert_eq!((a.granule(), b.granule()), (0, 1));
        assert_eq!(g.reclaimable(ObjectKind::Pt), None);
        g.give_back(b);
        assert_eq!(g.reclaimable(ObjectKind::Pt), Some(1));
        g.give_back(a);
        assert_eq!(g.reclaimable(ObjectKind::Pt), Some(1), "the one with the fewest objects");
        let objects: Vec<_> = g.objects(1).collect();
        assert_eq!(objects, [(b, ObjectKind::LargeFrame)]);
        g.reset(1);
        assert_eq!(g.objects(1).count(), 0);
        assert_eq!(g.state(b), None);
        assert_eq!(
            g.batch(ObjectKind::Pd, 32, Use::Client, |_| 0).map(|b| b.granule),
            Some(0),
            "granule 0 still has room"
        );
    }

    #[test]
    fn an_untyped_smaller_than_a_granule_holds_no_large_frame() {
        let mut g = Granules::new();
        g.reserve(1).unwrap();
        g.add(16);
        assert_eq!(g.batch(ObjectKind::LargeFrame, 1, Use::Client, |_| 0), None);
        let b = g.batch(ObjectKind::SmallFrame, 256, Use::Client, |_| 0).unwrap();
        assert_eq!(b.count, 16);
        make(&mut g, b, ObjectKind::SmallFrame);
        assert_eq!(g.batch(ObjectKind::SmallFrame, 256, Use::Client, |_| 0), None);
        assert_eq!(g.reclaimable(ObjectKind::LargeFrame), None);
        assert_eq!(g.reclaimable(ObjectKind::Pt), Some(0));
        assert_eq!(g.untyped_free(), 0);
    }

    /// The records follow the memory given: as many granules as there was
    /// room made for, beyond a fixed table's 64 (what 32,768 frames took),
    /// and a granule's record of its objects only once one is made.
    #[test]
    fn granules_are_as_many_as_the_memory_given() {
        let n = 4096;
        let mut g = granules(n);
        assert_eq!(g.count(), n);
        assert_eq!(g.add(UNITS), None, "no room was made for more");
        assert!(g.granules.iter().all(|gr| gr.objects.is_empty()), "no object record before an object");
        let last = Batch { granule: n - 1, first: ObjectId::at(n - 1, 0), count: 1 };
        make(&mut g, last, ObjectKind::LargeFrame);
        let id = ObjectId::new((n * UNITS - UNITS) as u32);
        assert_eq!(g.take(ObjectKind::LargeFrame, Use::Client), Some((id, State::Fresh)));
        assert_eq!(g.state(id), Some(State::InUse));
        assert_eq!(g.granules.iter().filter(|gr| !gr.objects.is_empty()).count(), 1);
        g.reserve(1).unwrap();
        assert_eq!(g.add(16), Some(n));
    }

    /// The defect this module prevents: once every object is given back,
    /// memory used by one kind serves any other, whichever came before.
    /// Each use fills the memory until a request fails, then gives all
    /// back; the uses follow each other in every order.
    #[test]
    fn memory_freed_by_one_kind_serves_every_kind() {
        let n = 8;
        let mut g = granules(n);
        let total = unused(&g);
        let large: &[ObjectKind] = &[ObjectKind::LargeFrame];
        // 4 KiB pages with a page table for every 16 (32 spaces).
        let small = &[[ObjectKind::SmallFrame; 16].as_slice(), &[ObjectKind::Pt]].concat();
        // Paging structures alone (many spaces mirroring the region).
        let structures: &[ObjectKind] = &[ObjectKind::Pt, ObjectKind::Pt, ObjectKind::Pd, ObjectKind::Pdpt];
        for uses in [large, small, structures, large, structures, small, large] {
            let mut held = Vec::new();
            'fill: loop {
                for &kind in uses {
                    let batch = match kind {
                        ObjectKind::SmallFrame => 256,
                        ObjectKind::Pt => 128,
                        _ => 8,
                    };
                    match obtain(&mut g, kind, batch) {
                        Some((id, _)) => held.push((id, kind)),
                        None => break 'fill,
                    }
                }
            }
            let bytes: u64 = held.iter().map(|(_, kind)| kind.bytes()).sum();
            assert!(bytes + unused(&g) == total, "{uses:?}: {bytes} bytes held");
            assert!(unused(&g) < 2 * MIB, "{uses:?} left {} bytes unused", unused(&g));
            for (id, _) in held {
                g.give_back(id);
            }
            assert_eq!(unused(&g), total);
            assert_eq!(g.spare().0 + empty_slots(&g), (n * UNITS) as u64);
            assert_eq!(g.objects_in_use(), 0);
        }
    }

    impl Granules {
        fn objects_in_use(&self) -> u64 {
            self.live().map(|(_, gr)| gr.in_use as u64).sum()
        }
    }
}
