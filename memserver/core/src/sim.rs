//! The simulated MMU backend (host only, `sim` feature): a real 4-level
//! page table per VSpace, objects with identities, frame copies tracked per
//! (space, address) so unmapping everywhere removes them all, every operation counted by
//! kind, failure injection ("fail the n-th creating operation") and a
//! bound on the bytes its frames may hold.
//!
//! It holds the server to seL4's rules and panics on a breach (a server bug,
//! never input): a structure or leaf needs its parent structure, a
//! structure's slot must be empty to fill, a structure must be empty to
//! delete, a frame must have no copies left to free. A map into a leaf slot
//! that is not empty is refused, as seL4 refuses it.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "the simulator stops the test on a server bug; it never runs on seL4"
)]

use std::boxed::Box;
use std::collections::{BTreeMap, HashMap};
use std::format;
use std::string::String;
use std::vec::Vec;

use crate::accounting::FrameTally;
use crate::backend::{Backend, FrameFor, OpCounts, OpKind, Rights, SpaceRef};
use crate::error::BackendError;
use crate::layout::{Level, PageSize, RegionAddr, REGION_END, REGION_START};

/// A frame of the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimFrame(u64);
/// A paging structure of the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimStructure(u64);
/// A VSpace of the simulation (what the root task would hand over).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimVSpace(u64);

/// A leaf of a simulated page table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimMapping {
    /// The frame mapped.
    pub frame: SimFrame,
    /// The page size.
    pub size: PageSize,
    /// Whether the mapping is writable.
    pub writable: bool,
}

enum SimEntry {
    Table(SimStructure, Box<SimNode>),
    Leaf(SimMapping),
}

struct SimNode {
    level: Level,
    entries: BTreeMap<usize, SimEntry>,
}

impl SimNode {
    fn new(level: Level) -> Self {
        Self { level, entries: BTreeMap::new() }
    }

    /// The node at `level` on the way to `raw`, if the walk gets there.
    fn descend(&mut self, raw: u64, level: Level) -> Option<&mut SimNode> {
        let mut node = self;
        while node.level != level {
            match node.entries.get_mut(&node.level.index(raw)) {
                Some(SimEntry::Table(_, child)) => node = child,
                _ => return None,
            }
        }
        Some(node)
    }

    fn collect_leaves(&self, base: u64, out: &mut Vec<(u64, SimMapping)>) {
        for (&slot, entry) in &self.entries {
            let addr = base + slot as u64 * self.level.entry_span();
            match entry {
                SimEntry::Leaf(m) => out.push((addr, *m)),
                SimEntry::Table(_, child) => child.collect_leaves(addr, out),
            }
        }
    }

    fn count_structures(&self) -> usize {
        self.entries
            .values()
            .map(|e| match e {
                SimEntry::Table(_, child) => 1 + child.count_structures(),
                SimEntry::Leaf(_) => 0,
            })
            .sum()
    }
}

struct FrameState {
    size: PageSize,
    copies: Vec<(SimVSpace, u64)>,
}

/// The simulated MMU.
#[derive(Default)]
pub struct Sim {
    next_id: u64,
    frames: HashMap<SimFrame, FrameState>,
    client_frames: HashMap<SimFrame, FrameState>,
    structures: HashMap<SimStructure, (SimVSpace, Level, u64)>,
    vspaces: BTreeMap<SimVSpace, SimNode>,
    counts: OpCounts,
    creating_ops: u64,
    fail_at: Option<u64>,
    /// Failures injected so far.
    injected: u64,
    /// Bytes the server's frames may hold at once, if bounded.
    memory_limit: Option<u64>,
    /// Bytes the server's frames hold.
    frame_bytes: u64,
    /// No 1 GiB frames to be had (as on seL4 without a free 1 GiB block).
    no_huge_frames: bool,
    /// CNodes of client frames a test hands the dispatcher as the
    /// capability of a vmap: their radix and slots.
    frame_cnodes: HashMap<SimVSpace, (u8, Vec<Option<SimFrame>>)>,
    /// Client frames the server borrowed and not yet gave back.
    lent: HashMap<SimFrame, u32>,
    /// Times the server gave a client frame back.
    returned: u64,
}

impl Sim {
    /// A simulation with no VSpace and no frame.
    pub fn new() -> Self {
        Self::default()
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Make the creating operation `k` operations from now (0 = the next)
    /// fail; `None` clears the injection.
    fn fail_after(&mut self, k: Option<u64>) {
        self.fail_at = k.map(|k| self.creating_ops + k);
    }

    /// Whether an injected failure is still pending.
    pub fn failure_pending(&self) -> bool {
        self.fail_at.is_some_and(|at| at >= self.creating_ops)
    }

    /// Bytes the server's frames hold.
    pub fn frame_bytes(&self) -> u64 {
        self.frame_bytes
    }

    /// Operations performed so far, by kind.
    pub fn counts(&self) -> OpCounts {
        self.counts
    }

    /// Server frames alive, by size.
    pub fn live_frames(&self) -> FrameTally {
        let mut tally = FrameTally::ZERO;
        for frame in self.frames.values() {
            *tally.of_size(frame.size) += 1;
        }
        tally
    }

    /// Structures alive in all VSpaces.
    pub fn live_structures(&self) -> usize {
        self.structures.len()
    }

    /// Every VSpace created so far.
    pub fn vspaces(&self) -> impl Iterator<Item = SimVSpace> + '_ {
        self.vspaces.keys().copied()
    }

    /// Every leaf of `vspace` inside the kernel region, in address order.
    pub fn region_leaves(&self, vspace: SimVSpace) -> Vec<(u64, SimMapping)> {
        let mut out = Vec::new();
        if let Some(root) = self.vspaces.get(&vspace) {
            root.collect_leaves(0, &mut out);
        }
        out.retain(|(a, _)| (REGION_START..REGION_END).contains(a));
        out
    }

    /// Structures the server created in `vspace`.
    pub fn structure_count(&self, vspace: SimVSpace) -> usize {
        self.vspaces.get(&vspace).map_or(0, SimNode::count_structures)
    }

    /// Whether `vspace` has a structure of `level` covering `raw`.
    pub fn has_structure(&self, vspace: SimVSpace, level: Level, raw: u64) -> bool {
        let Some(mut node) = self.vspaces.get(&vspace) else { return false };
        while node.level != level {
            match node.entries.get(&node.level.index(raw)) {
                Some(SimEntry::Table(_, child)) => node = child,
                _ => return false,
            }
        }
        true
    }

    /// What `vspace` maps at `raw`, walking its 4-level table.
    pub fn translate(&self, vspace: SimVSpace, raw: u64) -> Option<SimMapping> {
        let mut node = self.vspaces.get(&vspace)?;
        loop {
            match node.entries.get(&node.level.index(raw))? {
                SimEntry::Leaf(m) => return Some(*m),
                SimEntry::Table(_, child) => node = child,
            }
        }
    }

    fn creating_op(&mut self, kind: OpKind) -> Result<(), BackendError> {
        self.counts.record(kind);
        let n = self.creating_ops;
        self.creating_ops += 1;
        if self.fail_at == Some(n) {
            self.fail_at = None;
            self.injected += 1;
            return Err(BackendError::OutOfMemory);
        }
        Ok(())
    }

    fn remove_leaf(&mut self, vspace: SimVSpace, raw: u64, size: PageSize, frame: SimFrame) -> bool {
        let aligned = raw & !(size.bytes() - 1);
        let Some(node) = self.vspaces.get_mut(&vspace).and_then(|r| r.descend(aligned, size.leaf_level())) else {
            return false;
        };
        let slot = node.level.index(aligned);
        if !matches!(node.entries.get(&slot), Some(SimEntry::Leaf(m)) if m.frame == frame) {
            return false;
        }
        node.entries.remove(&slot);
        for state in [self.frames.get_mut(&frame), self.client_frames.get_mut(&frame)].into_iter().flatten() {
            state.copies.retain(|&c| c != (vspace, aligned));
        }
        true
    }
}

impl Backend for Sim {
    type Frame = SimFrame;
    type Structure = SimStructure;
    type VSpace = SimVSpace;

    /// The simulated records grow as they go (the host has the memory).
    fn reserve_mappings(
        &mut self,
        _: crate::ids::SpaceId,
        _: impl Iterator<Item = SimFrame>,
    ) -> Result<(), BackendError> {
        Ok(())
    }

    fn reserve_new_mappings(&mut self, _: impl Iterator<Item = SimFrame>, _: usize) -> Result<(), BackendError> {
        Ok(())
    }

    /// The simulation's records live in the host's memory.
    fn heap_short(&self) -> bool {
        false
    }

    fn alloc_frame(&mut self, size: PageSize, _: FrameFor) -> Result<SimFrame, BackendError> {
        self.creating_op(OpKind::AllocFrame)?;
        let bytes = self.frame_bytes + size.bytes();
        if self.memory_limit.is_some_and(|limit| bytes > limit) || (self.no_huge_frames && size == PageSize::Huge) {
            return Err(BackendError::OutOfMemory);
        }
        let f = SimFrame(self.fresh_id());
        self.frames.insert(f, FrameState { size, copies: Vec::new() });
        self.frame_bytes = bytes;
        Ok(f)
    }

    fn free_frame(&mut self, frame: SimFrame) {
        self.counts.record(OpKind::FreeFrame);
        let state = self.frames.remove(&frame).expect("sim: free of an unknown frame");
        assert!(state.copies.is_empty(), "sim: free of {frame:?} with copies {:?}", state.copies);
        self.frame_bytes -= state.size.bytes();
    }

    /// A frame given back must be a client's, and once no lend of it is
    /// left (one frame may be borrowed for two areas) it must be mapped
    /// nowhere. (Tests may also hand client frames to `MemServer::vmap`
    /// directly, with no borrow.)
    fn return_frame(&mut self, frame: SimFrame) {
        let state = self.client_frames.get(&frame).expect("sim: return of a frame no client supplied");
        let last = match self.lent.get_mut(&frame) {
            Some(lends) => {
                *lends -= 1;
                *lends == 0
            }
            None => true,
        };
        if last {
            assert!(state.copies.is_empty(), "sim: {frame:?} given back with copies {:?}", state.copies);
            self.lent.remove(&frame);
        }
        self.returned += 1;
    }

    fn unmap_everywhere(&mut self, frame: SimFrame) {
        self.counts.record(OpKind::UnmapEverywhere);
        let copies = self.frames.get(&frame).expect("sim: unmap_everywhere of an unknown frame").copies.clone();
        let size = self.frames.get(&frame).map_or(PageSize::Small, |f| f.size);
        for (vspace, addr) in copies {
            assert!(self.remove_leaf(vspace, addr, size, frame), "sim: copy of {frame:?} not mapped");
        }
    }

    fn create_structure(
        &mut self,
        space: SpaceRef<SimVSpace>,
        level: Level,
        addr: RegionAddr,
    ) -> Result<SimStructure, BackendError> {
        self.creating_op(OpKind::CreateStructure)?;
        let s = SimStructure(self.fresh_id());
        let raw = addr.get();
        let parent_level = match level {
            Level::Pdpt => Level::Pml4,
            Level::Pd => Level::Pdpt,
            Level::Pt => Level::Pd,
            Level::Pml4 => panic!("sim: a VSpace root cannot be created"),
        };
        let root = self.vspaces.get_mut(&space.vspace).expect("sim: unknown VSpace");
        let parent = root.descend(raw, parent_level).expect("sim: structure without its parent");
        let slot = parent.level.index(raw);
        assert!(!parent.entries.contains_key(&slot), "sim: {level:?} slot at {raw:#x} is not empty");
        parent.entries.insert(slot, SimEntry::Table(s, Box::new(SimNode::new(level))));
        self.structures.insert(s, (space.vspace, level, raw & !(level.span() - 1)));
        Ok(s)
    }

    fn delete_structure(&mut self, space: SpaceRef<SimVSpace>, structure: SimStructure) {
        self.counts.record(OpKind::DeleteStructure);
        let (vspace, level, base) = self.structures.remove(&structure).expect("sim: unknown structure");
        assert_eq!(vspace, space.vspace, "sim: structure deleted through another space");
        let parent_level = Level::CREATED_TOP_DOWN
            .into_iter()
            .chain([Level::Pml4])
            .find(|l| l.below() == Some(level))
            .expect("sim: level has a parent");
        let root = self.vspaces.get_mut(&vspace).expect("sim: unknown VSpace");
        let parent = root.descend(base, parent_level).expect("sim: structure's parent is gone");
        let slot = parent.level.index(base);
        match parent.entries.remove(&slot) {
            Some(SimEntry::Table(s, node)) if s == structure => {
                assert!(node.entries.is_empty(), "sim: delete of non-empty {level:?} at {base:#x}");
            }
            _ => panic!("sim: {structure:?} is not where it was created"),
        }
    }

    fn map_frame(
        &mut self,
        space: SpaceRef<SimVSpace>,
        addr: RegionAddr,
        frame: SimFrame,
        size: PageSize,
        rights: Rights,
    ) -> Result<(), BackendError> {
        self.creating_op(OpKind::MapFrame)?;
        let raw = addr.get();
        assert_eq!(raw % size.bytes(), 0, "sim: misaligned map");
        let root = self.vspaces.get_mut(&space.vspace).expect("sim: unknown VSpace");
        let node = root.descend(raw, size.leaf_level()).expect("sim: map without its structure");
        let slot = node.level.index(raw);
        if node.entries.contains_key(&slot) {
            // Not a server bug: a fault at a mapped address asks for it.
            return Err(BackendError::Occupied);
        }
        let writable = rights == Rights::ReadWrite;
        node.entries.insert(slot, SimEntry::Leaf(SimMapping { frame, size, writable }));
        let state = self.frames.get_mut(&frame).or_else(|| self.client_frames.get_mut(&frame));
        state.expect("sim: map of an unknown frame").copies.push((space.vspace, raw));
        Ok(())
    }

    fn unmap_frame(&mut self, space: SpaceRef<SimVSpace>, addr: RegionAddr, frame: SimFrame) {
        self.counts.record(OpKind::UnmapFrame);
        let size = self.translate(space.vspace, addr.get()).map_or(PageSize::Small, |m| m.size);
        assert!(self.remove_leaf(space.vspace, addr.get(), size, frame), "sim: unmap of a missing copy");
    }

    /// Zeroing part of a frame can fail on seL4 (the server maps a copy of
    /// it to write there): here it fails where a failure is injected.
    fn zero_part(&mut self, frame: SimFrame, offset: u64, bytes: u64) -> Result<(), BackendError> {
        self.creating_op(OpKind::ZeroPart)?;
        let state = self.frames.get(&frame).expect("sim: zeroing an unknown frame");
        assert!(offset.checked_add(bytes).is_some_and(|end| end <= state.size.bytes()), "sim: zeroing past {frame:?}");
        Ok(())
    }

    fn remap_frame(
        &mut self,
        space: SpaceRef<SimVSpace>,
        addr: RegionAddr,
        frame: SimFrame,
        rights: Rights,
    ) -> Result<(), BackendError> {
        self.creating_op(OpKind::RemapFrame)?;
        let raw = addr.get();
        let size = self.translate(space.vspace, raw).map(|m| m.size).expect("sim: remap of an unmapped address");
        let root = self.vspaces.get_mut(&space.vspace).expect("sim: unknown VSpace");
        let node = root.descend(raw, size.leaf_level()).expect("sim: remap without its structure");
        match node.entries.get_mut(&node.level.index(raw)) {
            Some(SimEntry::Leaf(m)) if m.frame == frame => m.writable = rights == Rights::ReadWrite,
            _ => panic!("sim: remap of {frame:?} at {raw:#x}, which it does not map"),
        }
        Ok(())
    }
}

/// What a test does to the simulator besides what the server does through
/// the backend: the root task's and the clients' part (VSpaces, frames),
/// failure injection, and a lost mapping. Reached through
/// [`Region::sim_hooks`](crate::Region::sim_hooks) and the server's and
/// dispatcher's methods of that name; it offers no backend operation.
pub struct SimHooks<'a> {
    sim: &'a mut Sim,
}

impl<'a> SimHooks<'a> {
    pub(crate) fn new(sim: &'a mut Sim) -> Self {
        Self { sim }
    }

    /// Create a VSpace, as the root task would for a new program.
    pub fn new_vspace(&mut self) -> SimVSpace {
        let v = SimVSpace(self.sim.fresh_id());
        self.sim.vspaces.insert(v, SimNode::new(Level::Pml4));
        v
    }

    /// A frame owned by a client (for vmap); not counted as a server op.
    pub fn client_frame(&mut self) -> SimFrame {
        let f = SimFrame(self.sim.fresh_id());
        self.sim.client_frames.insert(f, FrameState { size: PageSize::Small, copies: Vec::new() });
        f
    }

    /// A CNode of 2^`radix` slots holding `frames` from slot 0 (the rest
    /// empty), as a client passes it with a vmap; its handle stands for
    /// the capability that arrives.
    pub fn frame_cnode(&mut self, radix: u8, frames: &[Option<SimFrame>]) -> SimVSpace {
        let handle = SimVSpace(self.sim.fresh_id());
        let mut slots = frames.to_vec();
        slots.resize(1 << radix, None);
        self.sim.frame_cnodes.insert(handle, (radix, slots));
        handle
    }

    /// The physical address the simulation gives `frame`.
    pub fn frame_address(&self, frame: SimFrame) -> u64 {
        frame.0 << 12
    }

    /// Client frames the server borrowed and holds now, and the times it
    /// gave one back.
    pub fn lent_frames(&self) -> (u64, u64) {
        (self.sim.lent.values().map(|&n| u64::from(n)).sum(), self.sim.returned)
    }

    /// Make the creating operation `k` operations from now (0 = the next)
    /// fail; `None` clears the injection.
    pub fn fail_after(&mut self, k: Option<u64>) {
        self.sim.fail_after(k);
    }

    /// Cap the bytes the server's frames may hold at once (out-of-memory
    /// tests): a frame that would pass it is refused for lack of memory.
    pub fn set_memory_limit(&mut self, bytes: Option<u64>) {
        self.sim.memory_limit = bytes;
    }

    /// Refuse every 1 GiB frame for lack of memory (a server whose
    /// untyped memory has no 1 GiB block free of objects in use).
    pub fn refuse_huge_frames(&mut self) {
        self.sim.no_huge_frames = true;
    }

    /// Make `vspace` lose its mapping at `raw` behind the server's back (as
    /// if a sync had been missed). Returns whether one was there.
    pub fn drop_mapping(&mut self, vspace: SimVSpace, raw: u64) -> bool {
        let mapping = self.sim.translate(vspace, raw);
        mapping.is_some_and(|m| self.sim.remove_leaf(vspace, raw, m.size, m.frame))
    }
}

impl crate::backend::Platform for Sim {
    /// The simulation needs nothing to start.
    type Start<'a> = ();

    fn start(&mut self, (): ()) -> Result<(), BackendError> {
        Ok(())
    }

    fn frame_address(&mut self, frame: SimFrame) -> u64 {
        SimHooks::new(self).frame_address(frame)
    }

    /// The simulation makes no kernel invocations (its own operation
    /// counts are [`Sim::counts`]).
    fn invocations(&self) -> memserver_protocol::InvocationCounts {
        memserver_protocol::InvocationCounts::new()
    }

    fn untyped_free(&self) -> u64 {
        self.memory_limit.map_or(u64::MAX, |limit| limit.saturating_sub(self.frame_bytes))
    }

    /// The simulation holds no capability for a space: the VSpace stays
    /// with whoever created it, as on seL4 the root task keeps its own.
    fn release_vspace(&mut self, _id: crate::ids::SpaceId, _vspace: SimVSpace) {}

    /// The simulation has no capability slots to run out of.
    fn slots(&self) -> u64 {
        0
    }

    fn free_slots(&self) -> u64 {
        0
    }

    /// The simulation keeps nothing for reuse.
    fn spares(&self) -> (u64, u64) {
        (0, 0)
    }

    /// Every kind of failure point is the simulation's `nth` creating
    /// operation (frame allocation, structure creation or frame map).
    fn inject_failure(
        &mut self,
        _point: memserver_protocol::FailurePoint,
        nth: u32,
    ) -> Result<(), memserver_protocol::ErrorCode> {
        self.fail_after(nth.checked_sub(1).map(u64::from));
        Ok(())
    }

    /// The simulation receives no capability in a slot: a test hands the
    /// dispatcher the VSpace itself.
    fn take_receive_slot(&mut self) -> Option<SimVSpace> {
        None
    }

    /// With no receive slot, there is nothing to empty.
    fn empty_receive_slot(&mut self, _slot: SimVSpace) {}

    /// The frame in slot `index` of a CNode made by
    /// [`SimHooks::frame_cnode`], resolved
    /// as seL4 resolves it: `depth` must be its radix.
    fn borrow_frame(
        &mut self,
        cnode: SimVSpace,
        index: u64,
        depth: u8,
        _rights: crate::backend::Rights,
    ) -> Result<(SimFrame, u64), crate::error::Error> {
        let (radix, slots) = self.frame_cnodes.get(&cnode).ok_or(crate::error::Error::NotAFrame)?;
        let slot = (depth == *radix).then(|| usize::try_from(index).ok()).flatten();
        let frame = slot.and_then(|i| slots.get(i).copied().flatten()).ok_or(crate::error::Error::NotAFrame)?;
        *self.lent.entry(frame).or_default() += 1;
        Ok((frame, self.frame_address(frame)))
    }

    /// The simulation's heap is the host's: it cannot be grown here.
    fn grow_heap(&mut self, _bytes: u64) -> Result<(), BackendError> {
        Err(BackendError::OutOfMemory)
    }

    fn own_use(&self) -> (u64, u64) {
        (0, 0)
    }

    /// The simulation's records live in the host's heap, not counted.
    fn heap_in_use(&self) -> u64 {
        0
    }
}

/// The simulator in the host tests: a VSpace is a new id; its part of a
/// failed request's unchanged state is its live frames and structures; at
/// the baseline none of its structures is alive and its frames are those
/// the server held after start.
impl crate::host_backend::HostBackend for Sim {
    type Rig = ();
    type SpaceViolation = crate::invariant::SimViolation;
    /// Live frames by size, live structures, and client frames lent.
    type Held = (FrameTally, usize, u64);
    type Frames = SimVSpace;

    fn started(cpus: usize) -> (Box<crate::dispatch::Dispatcher<Sim>>, ()) {
        (crate::harness::dispatcher(cpus), ())
    }

    fn new_vspace(d: &mut crate::dispatch::Dispatcher<Sim>, _rig: &mut ()) -> SimVSpace {
        d.sim_hooks().new_vspace()
    }

    /// The simulation holds no capability for a VSpace.
    fn not_kept(_d: &mut crate::dispatch::Dispatcher<Sim>, _rig: &mut (), _vspace: SimVSpace) {}

    /// Frames made one after another have consecutive addresses.
    fn client_frames(
        d: &mut crate::dispatch::Dispatcher<Sim>,
        _rig: &mut (),
        count: u64,
        radix: u8,
    ) -> (SimVSpace, u64, u64) {
        let mut hooks = d.sim_hooks();
        let frames: Vec<Option<SimFrame>> = (0..count).map(|_| Some(hooks.client_frame())).collect();
        let start = frames.first().copied().flatten().map_or(0, |f| hooks.frame_address(f));
        (hooks.frame_cnode(radix, &frames), start, count * crate::layout::PAGE_SIZE)
    }

    /// The handle stands for the capability.
    fn frames_arrive(_d: &mut crate::dispatch::Dispatcher<Sim>, _rig: &mut (), frames: &SimVSpace) -> SimVSpace {
        *frames
    }

    fn failures_injected(&self) -> u64 {
        self.injected
    }

    fn held(&self) -> Self::Held {
        (self.live_frames(), self.live_structures(), self.lent.values().map(|&n| u64::from(n)).sum())
    }

    fn sparing((frames, structures, lent): Self::Held, kept: u64) -> Self::Held {
        (frames, structures - kept as usize, lent)
    }

    fn check_spaces(server: &crate::server::MemServer<Sim>) -> Result<(), crate::invariant::SimViolation> {
        crate::invariant::check_sim_spaces(server)
    }

    fn check_baseline(&self, baseline: &Self::Held) -> Result<(), String> {
        let now = self.held();
        if now == *baseline {
            Ok(())
        } else {
            Err(format!("live frames, structures and lent frames {now:?}, at start {baseline:?}"))
        }
    }
}
