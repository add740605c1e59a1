//! The untyped memory the root task gave the server, split into 2 MiB
//! granules ([`Granules`]): frames and paging structures are retyped from a
//! granule in batches (up to 256 objects per Untyped Retype, so creating
//! one costs a fraction of an invocation), and a granule whose objects are
//! all unused is reset (CNode Revoke of its capability) to serve any kind
//! again. Each granule's objects have their own run of capability slots:
//! object `k` of granule `g` lives in slot `runs[g] + k`. The runs of all
//! granules are set aside at start when the CNode holds them all; else
//! each is taken when its granule first makes 4 KiB objects (a 2 MiB frame
//! takes one slot), and kept, so memory never made into objects takes no
//! slots. The records are as many as the granules given
//! (allocated at start, with `try_reserve`).
//!
//! An untyped of 1 GiB or more is split into 1 GiB blocks first, each then
//! into its 512 granules, so that a block whose granules hold nothing in
//! use can become one 1 GiB frame: its granules reset, the block's
//! capability revoked (deleting them) and retyped into the frame, which
//! lives in the slot of its first granule's object 0. Freeing the frame
//! revokes the block again and remakes its granules: a 1 GiB frame is
//! never kept for reuse, so it is always fresh (zeroed by its Retype).

use crate::cspace::{own, retype_target, Slots};
use crate::granules::{Granules, ObjectId, ObjectKind, State, Use, UNITS};
use alloc::vec::Vec;
use core::ops::Range;
use memserver_protocol::bootstrap::{cspace, SERVER_CNODE_BITS};
use memserver_protocol::invocation_counts::{Invocation, InvocationCounts};
use sel4_layer::abi::{object_type, size, CPtr};
use sel4_layer::kernel::Kernel;
use sel4_layer::Sel4Error;

/// Size of a granule, in bits.
const GRANULE_BITS: u8 = size::LARGE_PAGE_BITS as u8;
/// Size of a block of granules that can become a 1 GiB frame, in bits.
const BLOCK_BITS: u8 = size::HUGE_PAGE_BITS as u8;
/// Granules in a block.
const BLOCK_GRANULES: usize = 1 << (BLOCK_BITS - GRANULE_BITS);

/// 1 GiB of untyped memory split into granules `first..first +
/// BLOCK_GRANULES`, or holding one 1 GiB frame.
struct Block {
    /// Its capability: the parent of its granules' capabilities.
    cap: CPtr,
    /// Its first granule.
    first: usize,
    /// Whether it holds a 1 GiB frame.
    huge: bool,
}

impl Block {
    fn granules(&self) -> Range<usize> {
        self.first..self.first + BLOCK_GRANULES
    }
}

/// How many granules `untypeds` (slot, size bits) make: an untyped of at
/// most a granule is one, a larger one splits into granules.
pub fn granules_in(untypeds: &[(CPtr, u8)]) -> u64 {
    untypeds.iter().fold(0u64, |n, &(_, bits)| n.saturating_add(granules(bits)))
}

/// How many capabilities the split of `untypeds` takes: one for each
/// granule and each 1 GiB block.
pub fn caps_in(untypeds: &[(CPtr, u8)]) -> u64 {
    let granules = granules_in(untypeds);
    granules + granules.div_ceil(BLOCK_GRANULES as u64)
}

/// How many granules an untyped of 2^`bits` bytes makes.
fn granules(bits: u8) -> u64 {
    match bits {
        _ if bits < size::PAGE_BITS as u8 => 0,
        _ if bits <= GRANULE_BITS => 1,
        _ => 1u64.checked_shl(u32::from(bits - GRANULE_BITS)).unwrap_or(u64::MAX),
    }
}

/// The seL4 object type and size bits of a kind.
const fn sel4_type(kind: ObjectKind) -> u64 {
    match kind {
        ObjectKind::SmallFrame => object_type::X86_4K,
        ObjectKind::LargeFrame => object_type::X86_LARGE_PAGE,
        ObjectKind::Pdpt => object_type::X86_PDPT,
        ObjectKind::Pd => object_type::X86_PAGE_DIRECTORY,
        ObjectKind::Pt => object_type::X86_PAGE_TABLE,
    }
}

/// Objects of a kind retyped at once: a whole Retype of 4 KiB frames, and
/// for paging structures about what a few spaces' worth of a mapping needs.
const fn batch(kind: ObjectKind) -> usize {
    match kind {
        ObjectKind::SmallFrame => size::RETYPE_MAX_OBJECTS as usize,
        ObjectKind::LargeFrame => 1,
        ObjectKind::Pdpt => 8,
        ObjectKind::Pd => 32,
        ObjectKind::Pt => 128,
    }
}

/// Retypes `untyped` into `count` untypeds of 2^`bits` bytes in the slots
/// from `first` (as many Retypes as the kernel's fan-out limit needs, each
/// tried up to `tries` times).
fn retype_untypeds(
    kernel: &mut impl Kernel,
    untyped: CPtr,
    bits: u8,
    (first, count): (CPtr, u64),
    tries: u32,
    counts: &mut InvocationCounts,
) -> Result<(), Sel4Error> {
    for done in (0..count).step_by(size::RETYPE_MAX_OBJECTS as usize) {
        let target = retype_target(cspace::nth(first, done));
        let n = (count - done).min(size::RETYPE_MAX_OBJECTS);
        let mut retyped = Err(Sel4Error::InvalidArgument);
        for _ in 0..tries {
            counts.record(Invocation::Retype);
            retyped = kernel.untyped_retype(untyped, object_type::UNTYPED, bits.into(), target, n);
            if retyped.is_ok() {
                break;
            }
        }
        retyped?;
    }
    Ok(())
}

/// The slots set aside for a granule's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    /// One for each of its 512 places, from this one on.
    Places(CPtr),
    /// One, for a 2 MiB frame: until the granule makes 4 KiB objects.
    One(CPtr),
}

impl Run {
    /// Slots in it.
    const fn len(self) -> usize {
        match self {
            Run::Places(_) => UNITS,
            Run::One(_) => 1,
        }
    }
}

/// The server's untyped memory.
pub struct UntypedPool {
    /// What each granule holds.
    pub granules: Granules,
    /// The capability of each granule.
    caps: Vec<CPtr>,
    /// The 1 GiB blocks among the granules.
    blocks: Vec<Block>,
    /// The first of the run of slots of each granule's objects, once it
    /// made any.
    runs: Vec<Option<Run>>,
}

impl Default for UntypedPool {
    fn default() -> Self {
        Self::new()
    }
}

impl UntypedPool {
    /// No memory yet; see [`UntypedPool::start`].
    pub const fn new() -> UntypedPool {
        UntypedPool { granules: Granules::new(), caps: Vec::new(), blocks: Vec::new(), runs: Vec::new() }
    }

    /// Splits each untyped of `untypeds` (slot, size bits) into granules
    /// (one Retype each; an untyped of at most a granule is one itself;
    /// one of 1 GiB or more first into blocks of 1 GiB, one Retype, then
    /// each block into granules), and sets aside the slots of their
    /// objects. `NotEnoughMemory` if the records of the granules or the
    /// slots of their capabilities do not fit.
    pub fn start(
        &mut self,
        kernel: &mut impl Kernel,
        untypeds: &[(CPtr, u8)],
        slots: &mut Slots,
        counts: &mut InvocationCounts,
    ) -> Result<(), Sel4Error> {
        let total = usize::try_from(granules_in(untypeds)).map_err(|_| Sel4Error::NotEnoughMemory)?;
        self.granules.reserve(total).map_err(|_| Sel4Error::NotEnoughMemory)?;
        self.caps.try_reserve_exact(total).map_err(|_| Sel4Error::NotEnoughMemory)?;
        let blocks = untypeds.iter().filter(|&&(_, bits)| bits >= BLOCK_BITS).map(|&(_, bits)| bits - BLOCK_BITS);
        let blocks = blocks.fold(0u64, |n, extra| n.saturating_add(1u64.checked_shl(extra.into()).unwrap_or(u64::MAX)));
        let blocks = usize::try_from(blocks).map_err(|_| Sel4Error::NotEnoughMemory)?;
        self.blocks.try_reserve_exact(blocks).map_err(|_| Sel4Error::NotEnoughMemory)?;
        for &(untyped, bits) in untypeds {
            match bits {
                _ if bits < size::PAGE_BITS as u8 => {}
                _ if bits <= GRANULE_BITS => self.add(untyped, 1 << (bits - size::PAGE_BITS as u8)),
                _ if bits < BLOCK_BITS => self.split(kernel, untyped, granules(bits), slots, counts)?,
                _ if bits == BLOCK_BITS => self.add_block(kernel, untyped, slots, counts)?,
                _ => {
                    let count = granules(bits) / BLOCK_GRANULES as u64;
                    let first = slots.take_run(count).ok_or(Sel4Error::NotEnoughMemory)?;
                    retype_untypeds(kernel, untyped, BLOCK_BITS, (first, count), 1, counts)?;
                    for block in (0..count).map(|n| cspace::nth(first, n)) {
                        self.add_block(kernel, block, slots, counts)?;
                    }
                }
            }
        }
        self.runs.try_reserve_exact(self.caps.len()).map_err(|_| Sel4Error::NotEnoughMemory)?;
        self.runs.resize(self.caps.len(), None);
        // When the CNode holds a run for every granule, all are set aside
        // now, so that no copy's slot ever stands in a run's way.
        if let Some(first) = slots.take_run((self.caps.len() * UNITS) as u64) {
            for (granule, run) in self.runs.iter_mut().enumerate() {
                *run = Some(Run::Places(cspace::nth(first, (granule * UNITS) as u64)));
            }
        }
        Ok(())
    }

    /// Records a granule, in the room `start` reserved.
    fn add(&mut self, cap: CPtr, units: usize) {
        if self.granules.add(units).is_some() && self.caps.len() < self.caps.capacity() {
            self.caps.push(cap);
        }
    }

    /// Splits `untyped` into `count` granules (one Retype) in a run of
    /// slots, and records them.
    fn split(
        &mut self,
        kernel: &mut impl Kernel,
        untyped: CPtr,
        count: u64,
        slots: &mut Slots,
        counts: &mut InvocationCounts,
    ) -> Result<(), Sel4Error> {
        let first = slots.take_run(count).ok_or(Sel4Error::NotEnoughMemory)?;
        retype_untypeds(kernel, untyped, GRANULE_BITS, (first, count), 1, counts)?;
        for cap in (0..count).map(|n| cspace::nth(first, n)) {
            self.add(cap, UNITS);
        }
        Ok(())
    }

    /// Records the 1 GiB untyped `cap` as a block, split into granules.
    fn add_block(
        &mut self,
        kernel: &mut impl Kernel,
        cap: CPtr,
        slots: &mut Slots,
        counts: &mut InvocationCounts,
    ) -> Result<(), Sel4Error> {
        let first = self.granules.count();
        self.split(kernel, cap, BLOCK_GRANULES as u64, slots, counts)?;
        if self.blocks.len() < self.blocks.capacity() {
            self.blocks.push(Block { cap, first, huge: false });
        }
        Ok(())
    }

    /// A block that can become a 1 GiB frame (none of its objects in
    /// use), the one with the fewest objects to reset, and its granules.
    pub fn huge_candidate(&self) -> Option<(usize, Range<usize>)> {
        let idle = self.blocks.iter().enumerate().filter(|(_, b)| !b.huge && self.granules.idle(b.granules()));
        idle.min_by_key(|(_, b)| self.granules.made_in(b.granules())).map(|(i, b)| (i, b.granules()))
    }

    /// Deletes every object made from block `block` and its granules'
    /// capabilities (one CNode Revoke), for [`UntypedPool::make_huge`].
    pub fn revoke_block(
        &self,
        kernel: &mut impl Kernel,
        block: usize,
        counts: &mut InvocationCounts,
    ) -> Result<(), Sel4Error> {
        let cap = self.blocks.get(block).map(|b| b.cap).ok_or(Sel4Error::InvalidArgument)?;
        counts.record(Invocation::Revoke);
        let (cnode, index) = own(cap);
        kernel.cnode_revoke(cnode, index)
    }

    /// Block `block`, revoked, made into one 1 GiB frame in the slot of its
    /// first granule's capability: the frame's slot and number. If the
    /// Retype fails, the block is made granules again.
    pub fn make_huge(
        &mut self,
        kernel: &mut impl Kernel,
        block: usize,
        counts: &mut InvocationCounts,
    ) -> Result<(CPtr, ObjectId), Sel4Error> {
        let b = self.blocks.get(block).ok_or(Sel4Error::InvalidArgument)?;
        let (cap, granules) = (b.cap, b.granules());
        let id = ObjectId::new(u32::try_from(granules.start * UNITS).map_err(|_| Sel4Error::RangeError)?);
        let slot = *self.caps.get(granules.start).ok_or(Sel4Error::InvalidArgument)?;
        self.granules.lend(granules);
        if let Some(b) = self.blocks.get_mut(block) {
            b.huge = true;
        }
        counts.record(Invocation::Retype);
        let target = retype_target(slot);
        if let Err(e) = kernel.untyped_retype(cap, object_type::X64_HUGE_PAGE, 0, target, 1) {
            self.remake(kernel, block, counts);
            return Err(e);
        }
        Ok((slot, id))
    }

    /// Deletes the 1 GiB frame `id` and every copy of its capability (a
    /// revoke of its block) and makes the block's granules again.
    pub fn give_back_huge(
        &mut self,
        kernel: &mut impl Kernel,
        id: ObjectId,
        counts: &mut InvocationCounts,
    ) -> Result<(), Sel4Error> {
        let block = self.blocks.iter().position(|b| b.huge && b.first == id.granule());
        let block = block.ok_or(Sel4Error::InvalidArgument)?;
        self.revoke_block(kernel, block, counts)?;
        self.remake(kernel, block, counts);
        Ok(())
    }

    /// The granules of the blocks that could become a 1 GiB frame now (none
    /// if the record of them does not fit).
    fn idle_blocks(&self) -> Vec<Range<usize>> {
        let mut idle = Vec::new();
        if idle.try_reserve_exact(self.blocks.len()).is_ok() {
            let blocks = self.blocks.iter().filter(|b| !b.huge && self.granules.idle(b.granules()));
            idle.extend(blocks.map(Block::granules));
        }
        idle
    }

    /// The capabilities of the blocks that hold a 1 GiB frame.
    pub fn huge_blocks(&self) -> impl Iterator<Item = CPtr> + '_ {
        self.blocks.iter().filter(|b| b.huge).map(|b| b.cap)
    }

    /// Splits `block`, whose capability has no children, into its
    /// granules again (in the slots they had). Each Retype is tried twice:
    /// one on the server's own untyped fails only by an injected failure,
    /// which strikes once; if both fail, the block stays lent and serves
    /// nothing.
    fn remake(&mut self, kernel: &mut impl Kernel, block: usize, counts: &mut InvocationCounts) {
        let Some(b) = self.blocks.get(block) else { return };
        let (cap, granules) = (b.cap, b.granules());
        let Some(&first) = self.caps.get(granules.start) else { return };
        if retype_untypeds(kernel, cap, GRANULE_BITS, (first, BLOCK_GRANULES as u64), 2, counts).is_ok() {
            self.granules.unlend(granules);
            if let Some(b) = self.blocks.get_mut(block) {
                b.huge = false;
            }
        }
    }

    /// The capability of each granule, by granule number.
    pub fn granule_caps(&self) -> &[CPtr] {
        &self.caps
    }

    /// The capability slot of object `id` (of a granule that made
    /// objects: those are the only ones handed out).
    pub fn slot(&self, id: ObjectId) -> CPtr {
        let place = u64::from(id.get()) % UNITS as u64;
        match self.runs.get(id.granule()).copied().flatten() {
            Some(Run::Places(first)) => cspace::nth(first, place),
            Some(Run::One(slot)) => slot,
            None => 0,
        }
    }

    /// Whether `granule` has the slots a batch of `kind` needs.
    fn has_run(&self, granule: usize, kind: ObjectKind) -> bool {
        match self.runs.get(granule).copied().flatten() {
            Some(Run::Places(_)) => true,
            Some(Run::One(_)) => kind == ObjectKind::LargeFrame,
            None => false,
        }
    }

    /// Makes sure empty `granule` has the slots a batch of `kind` needs:
    /// one for a 2 MiB frame, a run of 512 for 4 KiB objects (taken once
    /// and kept; `NotEnoughMemory` when the CNode has no run left).
    fn run(&mut self, granule: usize, kind: ObjectKind, slots: &mut Slots) -> Result<(), Sel4Error> {
        let Some(run) = self.runs.get_mut(granule) else { return Err(Sel4Error::InvalidArgument) };
        match (*run, kind) {
            (Some(Run::Places(_)), _) | (Some(Run::One(_)), ObjectKind::LargeFrame) => {}
            (None, ObjectKind::LargeFrame) => *run = Some(Run::One(slots.take().ok_or(Sel4Error::NotEnoughMemory)?)),
            (one, _) => {
                *run = Some(Run::Places(slots.take_run(UNITS as u64).ok_or(Sel4Error::NotEnoughMemory)?));
                if let Some(Run::One(slot)) = one {
                    slots.give_back(slot);
                }
            }
        }
        Ok(())
    }

    /// Slots set aside and empty: those of every granule's run that hold
    /// no object, and those of the granules of a block that holds a 1 GiB
    /// frame (the frame takes the first).
    pub fn empty_slots(&self) -> u64 {
        let runs = self.runs.iter().enumerate().filter_map(|(g, run)| run.map(|run| (g, run)));
        let empty = runs.map(|(g, run)| run.len().saturating_sub(self.granules.made_from(g)) as u64).sum::<u64>();
        empty + self.huge_blocks().count() as u64 * (BLOCK_GRANULES as u64 - 1)
    }

    /// An object of `kind` for `user` that is not in use, now in use, with
    /// its slot and what it was: one retyped earlier, or one of a batch
    /// retyped now ([`Granules::take`] and [`Granules::batch`] say where).
    /// `None` when no granule has one or room for one.
    pub fn take(
        &mut self,
        kernel: &mut impl Kernel,
        kind: ObjectKind,
        user: Use,
        slots: &mut Slots,
        counts: &mut InvocationCounts,
    ) -> Result<Option<(CPtr, ObjectId, State)>, Sel4Error> {
        if let Some((id, state)) = self.granules.take(kind, user) {
            return Ok(Some((self.slot(id), id, state)));
        }
        let idle = self.idle_blocks();
        let in_idle_block = |g: usize| idle.iter().any(|b| b.contains(&g));
        let rank = |g: usize| u8::from(in_idle_block(g)) * 2 + u8::from(!self.has_run(g, kind));
        let want = batch(kind);
        let Some(mut batch) = self.granules.batch(kind, want, user, rank) else { return Ok(None) };
        if self.run(batch.granule, kind, slots).is_err() {
            // No run of slots is left for it: an empty granule that has
            // its run may serve instead (even in an idle block), else a
            // reset granule (which keeps its run).
            let with_run = |g: usize| if self.has_run(g, kind) { u8::from(in_idle_block(g)) } else { u8::MAX };
            match self.granules.batch(kind, want, user, with_run) {
                Some(other) if self.has_run(other.granule, kind) => batch = other,
                _ => return Ok(None),
            }
        }
        let untyped = *self.caps.get(batch.granule).ok_or(Sel4Error::NotEnoughMemory)?;
        self.granules.prepare(batch).map_err(|_| Sel4Error::NotEnoughMemory)?;
        counts.record(Invocation::Retype);
        let target = retype_target(self.slot(batch.first));
        kernel.untyped_retype(untyped, sel4_type(kind), 0, target, batch.count as u64)?;
        self.granules.made(batch, kind);
        if user == Use::Server {
            self.granules.hold_for_server(batch.granule);
        }
        Ok(self.granules.take(kind, user).map(|(id, state)| (self.slot(id), id, state)))
    }

    /// A granule that can become one of the server's CNodes: whole, none
    /// of its objects made (the one whose reset [`Granules::reclaimable`]
    /// picks, when `reset`), preferring those outside the blocks that
    /// could become 1 GiB frames.
    pub fn node_granule(&self, reset: bool) -> Option<usize> {
        let idle = self.idle_blocks();
        let outside = |g: &usize| !idle.iter().any(|b| b.contains(g));
        let mut unmade = (0..self.caps.len()).filter(|&g| self.granules.unmade(g));
        match unmade.clone().find(outside).or_else(|| unmade.next()) {
            None if reset => self.granules.reclaimable(ObjectKind::LargeFrame),
            found => found,
        }
    }

    /// Makes empty `granule` one CNode of 2^`SERVER_CNODE_BITS` slots in
    /// slot `holder` (one Retype); from then on it serves nothing else, and
    /// the slots set aside for its objects go back to `slots`.
    pub fn make_node(
        &mut self,
        kernel: &mut impl Kernel,
        granule: usize,
        holder: CPtr,
        slots: &mut Slots,
        counts: &mut InvocationCounts,
    ) -> Result<(), Sel4Error> {
        let cap = *self.caps.get(granule).ok_or(Sel4Error::InvalidArgument)?;
        counts.record(Invocation::Retype);
        kernel.untyped_retype(cap, object_type::CAP_TABLE, SERVER_CNODE_BITS, retype_target(holder), 1)?;
        self.granules.lend(granule..granule + 1);
        match self.runs.get_mut(granule).and_then(Option::take) {
            Some(Run::Places(first)) => (0..UNITS as u64).for_each(|n| slots.give_back(cspace::nth(first, n))),
            Some(Run::One(slot)) => slots.give_back(slot),
            None => {}
        }
        Ok(())
    }

    /// Deletes every object made from `granule`, and every capability
    /// derived from them, with one CNode Revoke: once the caller has
    /// recorded it ([`Granules::reset`]), the granule's memory serves
    /// objects of any kind.
    pub fn revoke(
        &self,
        kernel: &mut impl Kernel,
        granule: usize,
        counts: &mut InvocationCounts,
    ) -> Result<(), Sel4Error> {
        let cap = *self.caps.get(granule).ok_or(Sel4Error::InvalidArgument)?;
        counts.record(Invocation::Revoke);
        let (cnode, index) = own(cap);
        kernel.cnode_revoke(cnode, index)
    }
}
