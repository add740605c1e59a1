//! The seL4 backend on the host, over the model of seL4 (feature `model`):
//! the system set up as the root task sets it up (the server's process
//! with its untyped memory and the capabilities of the bootstrap contract,
//! [`RootTask::memory_server`]), the server's thread running, and the
//! [`HostBackend`] through which the core's harness, the host tests and
//! the fuzzer drive it. VSpaces to register are made by the root task and
//! copied into a slot the server hands out, as a capability arrives with a
//! message.
//!
//! Its part of the invariant reads the model, not the server: every
//! registered VSpace translates the kernel region exactly as the canonical
//! table says (the same frame object, size and rights; nothing extra) and
//! holds exactly its structures; every other VSpace holds nothing of the
//! region; every mapping has the capability that made it (none was left
//! behind by a deleted copy) and no hazard happened; and the server's own
//! records of its CNode's empty slots, of the objects it made and of the
//! untyped memory they take are what the model holds. So when the
//! server's resources not in use come back to their value after start
//! ([`HostBackend::check_baseline`]), the capabilities, slots and untyped
//! memory in use in the model do too.

#![allow(clippy::expect_used, clippy::panic, reason = "the rig stops a test on a broken setup; it never runs on seL4")]

use crate::cspace::own;
use crate::granules::ObjectKind;
use crate::sel4_backend::{Sel4Backend, Start};
use memserver_core::dispatch::{Dispatcher, Platform};
use memserver_core::harness::{built, ADMIN};
use memserver_core::host_backend::HostBackend;
use memserver_core::ids::SpaceId;
use memserver_core::invariant::first_difference;
use memserver_core::layout::{Level, PageSize, PAGE_SIZE, REGION_END, REGION_START};
use memserver_core::limits::STRUCTURE_BYTES;
use memserver_core::server::{Config, MemServer};
use memserver_core::Rights;
use memserver_protocol::bootstrap::{cspace, server_slot, SERVER_CNODE_BITS};
use sel4_layer::abi::{init_cap, object_type, CPtr};
use sel4_layer::injecting::Injecting;
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, CapRights};
use sel4_model::{BootConfig, Cap, FrameSize, Hazard, Leaf, MemoryServer, Model, ObjectId, ObjectType, RootTask};
use std::collections::{BTreeMap, BTreeSet};

/// The backend over the model.
pub type ModelBackend = Sel4Backend<Injecting<Model>>;

/// Untyped capabilities the root task gives the server, and their size
/// (unless [`started_with`] says otherwise).
const UNTYPEDS: u64 = 2;
const UNTYPED_BITS: u64 = 24;
/// The untyped memory at boot, in 16 MiB pieces: one for the server's
/// CNode 0 (2^16 slots, 2 MiB) and its other objects, two for the server
/// to use, and the others for the VSpaces the root task makes.
const BOOT_UNTYPEDS: usize = 5;
/// VSpaces the root task keeps before it deletes those no longer
/// registered (the initial ASID pool has 512 ASIDs).
const KEPT_VSPACES: usize = 64;

/// The rest of the system: the root task.
pub struct Rig {
    root: RootTask,
    root_thread: ObjectId,
    server: MemoryServer,
    /// The VSpaces the root task made (in its own CSpace).
    vspaces: Vec<CPtr>,
}

impl Rig {
    /// How the root task names the server's slot `slot` (a CPtr of the
    /// server's) in a CNode operation: from its capability to the server's
    /// CNode 0, unguarded as the server's own.
    fn server_slot(&self, slot: CPtr) -> (CNode, u64) {
        let (index, depth) = cspace::address(slot);
        (CNode { cap: self.server.process.cnode, depth: depth as u8 }, index)
    }

    /// The root task makes a VSpace and copies its capability into slot
    /// `slot` of the server's CNode, first deleting those it made that
    /// are none of `registered` (objects) when it holds many.
    fn vspace_into(&mut self, model: &mut Model, slot: CPtr, registered: &BTreeSet<ObjectId>) {
        model.run_as(self.root_thread);
        let root_cnode = CNode::root_task(init_cap::CNODE);
        if self.vspaces.len() >= KEPT_VSPACES {
            self.vspaces.retain(|&pml4| {
                let keep = model.object_of(pml4).is_some_and(|o| registered.contains(&o));
                if !keep {
                    model.cnode_delete(root_cnode, pml4).expect("the root task deletes its VSpace");
                }
                keep
            });
        }
        let pml4 = self.root.vspace(model).expect("the root task makes a VSpace");
        let (server_cnode, index) = self.server_slot(slot);
        model.cnode_copy(server_cnode, index, root_cnode, pml4, CapRights::ALL).expect("the VSpace arrives");
        model.run_as(self.server.process.thread);
        self.vspaces.push(pml4);
    }
}

/// Frames the root task made for a client, in a CNode of the client's.
#[derive(Clone, Copy, Debug)]
pub struct ClientFrames {
    /// The CNode (in the root task's CSpace) whose slots from 0 hold them.
    pub cnode: CNode,
    /// The physical address of the first; the others follow.
    pub start: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Rig {
    /// `count` 4 KiB frames at consecutive physical addresses, as a
    /// launcher gives a client frames: the root task keeps their original
    /// capabilities and puts copies in slots from 0 of a new CNode of
    /// 2^`radix` slots.
    pub fn client_frames(&mut self, model: &mut Model, count: u64, radix: u8) -> ClientFrames {
        model.run_as(self.root_thread);
        let cnode_cap = self.root.retype(model, object_type::CAP_TABLE, radix.into()).expect("a CNode");
        let cnode = CNode { cap: cnode_cap, depth: radix };
        let root_cnode = CNode::root_task(init_cap::CNODE);
        let mut addresses = Vec::new();
        for i in 0..count {
            let frame = self.root.retype(model, object_type::X86_4K, 0).expect("a frame");
            model.cnode_copy(cnode, i, root_cnode, frame, CapRights::ALL).expect("the client's copy");
            addresses.push(model.page_get_address(frame).expect("a frame's address"));
        }
        model.run_as(self.server.process.thread);
        let start = *addresses.first().expect("at least one frame");
        let consecutive = (0..).zip(&addresses).all(|(i, &a)| a == start + i * PAGE_SIZE);
        assert!(consecutive, "the client's frames are consecutive: {addresses:x?}");
        ClientFrames { cnode, start, bytes: count * PAGE_SIZE }
    }

    /// The root task puts a new endpoint's capability in slot `index` of
    /// `frames`' CNode: a slot that holds no frame.
    pub fn endpoint_among(&mut self, model: &mut Model, frames: &ClientFrames, index: u64) {
        model.run_as(self.root_thread);
        let endpoint = self.root.retype(model, object_type::ENDPOINT, 0).expect("an endpoint");
        let root_cnode = CNode::root_task(init_cap::CNODE);
        model.cnode_copy(frames.cnode, index, root_cnode, endpoint, CapRights::ALL).expect("the endpoint's copy");
        model.run_as(self.server.process.thread);
    }

    /// The capability of `frames`' CNode arrives in slot `slot` of the
    /// server's CNode, as with a vmap request.
    pub fn cnode_arrives(&mut self, model: &mut Model, frames: &ClientFrames, slot: CPtr) {
        model.run_as(self.root_thread);
        let (server_cnode, index) = self.server_slot(slot);
        let root_cnode = CNode::root_task(init_cap::CNODE);
        model.cnode_copy(server_cnode, index, root_cnode, frames.cnode.cap, CapRights::ALL).expect("the CNode arrives");
        model.run_as(self.server.process.thread);
    }
}

/// How the registered spaces, as the model holds them, or the server's
/// records of its own capabilities disagree with the canonical table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelViolation {
    /// A registered space has no VSpace handle.
    NoHandle {
        /// The space.
        space: SpaceId,
    },
    /// A registered space's handle names no VSpace in the model.
    NotAVSpace {
        /// The space.
        space: SpaceId,
        /// The server's slot for it.
        slot: CPtr,
    },
    /// A canonical leaf names no live frame object.
    DeadFrame {
        /// The leaf's address.
        addr: u64,
    },
    /// A VSpace translates the region otherwise than expected (the
    /// canonical table if registered, nothing otherwise): the first
    /// difference.
    Translation {
        /// The VSpace's ASID.
        asid: u16,
        /// Whether it is registered.
        registered: bool,
        /// The address.
        addr: u64,
        /// What was expected there.
        expected: Option<Mapping>,
        /// What the model has there.
        found: Option<Mapping>,
    },
    /// A VSpace holds other region structures than expected.
    Structures {
        /// The VSpace's ASID.
        asid: u16,
        /// Whether it is registered.
        registered: bool,
        /// The canonical structures (none if not registered).
        expected: Vec<(u64, ObjectType)>,
        /// The model's.
        found: Vec<(u64, ObjectType)>,
    },
    /// A mapping no capability made (a deleted copy's), in a VSpace.
    UnownedLeaf {
        /// The VSpace's ASID.
        asid: u16,
        /// The mapping.
        leaf: Leaf,
    },
    /// The server did what seL4 5.0.0 answers with a fault, a halt or a
    /// corruption.
    Hazard(Hazard),
    /// The server's CNode is not in the model.
    NoServerCNode,
    /// The empty slots of the server's CNode: the model's and the server's
    /// count.
    EmptySlots {
        /// The model's.
        model: u64,
        /// The server's.
        server: u64,
    },
    /// Live objects of a type: the model's and how many the server made.
    LiveObjects {
        /// The type.
        object: ObjectType,
        /// The model's.
        model: u64,
        /// The server's.
        server: u64,
    },
    /// Untyped bytes in use: the model's and what the server retyped.
    UntypedInUse {
        /// The model's.
        model: u64,
        /// The server's.
        server: u64,
    },
}

/// The objects of the VSpaces registered now (read as the server).
fn registered(server: &MemServer<ModelBackend>) -> Result<BTreeSet<ObjectId>, ModelViolation> {
    let region = server.region();
    let model = region.backend().kernel().inner();
    let space = |id| {
        let slot = region.vspace(id).ok_or(ModelViolation::NoHandle { space: id })?;
        let pml4 = model.object_of(slot).filter(|&o| model.object_type(o) == Some(ObjectType::Pml4));
        pml4.ok_or(ModelViolation::NotAVSpace { space: id, slot })
    };
    region.space_ids().map(space).collect()
}

fn frame_size(size: PageSize) -> FrameSize {
    match size {
        PageSize::Small => FrameSize::Small,
        PageSize::Large => FrameSize::Large,
        PageSize::Huge => FrameSize::Huge,
    }
}

fn structure_type(level: Level) -> ObjectType {
    match level {
        Level::Pdpt => ObjectType::Pdpt,
        Level::Pd => ObjectType::PageDirectory,
        Level::Pt => ObjectType::PageTable,
        Level::Pml4 => ObjectType::Pml4,
    }
}

const REGION: core::ops::Range<u64> = REGION_START..REGION_END;

/// A mapping at an address: frame object, size, writable.
pub type Mapping = (Option<ObjectId>, FrameSize, bool);

/// A server for `cpus` CPUs over the model, given its untypeds of 2^`bits`
/// bytes each (the root task's boot untypeds for them sized to match).
pub fn started_with(cpus: usize, bits: u64) -> (Box<Dispatcher<ModelBackend>>, Rig) {
    // The root task takes from its largest untypeds first: one more of the
    // server's size holds the root task's own objects.
    let mut untyped_bits = vec![UNTYPED_BITS as u32; BOOT_UNTYPEDS];
    for piece in untyped_bits.iter_mut().take(UNTYPEDS as usize + 1) {
        *piece = bits.max(UNTYPED_BITS) as u32;
    }
    let (mut model, info) = Model::boot(&BootConfig { untyped_bits, ..BootConfig::default() });
    let mut root = RootTask::new(&info);
    let server = root.memory_server(&mut model, UNTYPEDS, bits).expect("the server's process");
    model.run_as(server.process.thread);
    let start = server.start;
    let d = built(move || {
        let backend = Sel4Backend::new(Injecting::new(model));
        let mut d = Box::new(Dispatcher::new(backend, Config { admin: ADMIN, cpus }));
        let untypeds: Vec<(CPtr, u8)> = (0..start.untypeds)
            .map(|i| (cspace::cptr(server_slot::UNTYPED_START + u64::from(i)), start.untyped_bits as u8))
            .collect();
        let first_free_slot = start.first_free_slot;
        d.start(Start { first_free_slot, untypeds: &untypeds }).expect("the server starts");
        d
    });
    (d, Rig { root, root_thread: info.thread, server, vspaces: Vec::new() })
}

impl HostBackend for ModelBackend {
    type Rig = Rig;
    type SpaceViolation = ModelViolation;
    type Frames = ClientFrames;
    /// Untyped bytes no client holds (never retyped, or held by spare
    /// objects or the server's own), and slots clients hold (all but the
    /// empty ones, those of spare objects and the server's own): what the
    /// fault-injection scenario compares.
    type Held = (u64, u64);

    fn started(cpus: usize) -> (Box<Dispatcher<ModelBackend>>, Rig) {
        started_with(cpus, UNTYPED_BITS)
    }

    fn new_vspace(d: &mut Dispatcher<ModelBackend>, rig: &mut Rig) -> CPtr {
        let registered = registered(d.server()).expect("registered spaces hold VSpaces");
        let slot = d.rig_backend().take_slot().expect("the server has a free slot");
        rig.vspace_into(d.rig_backend().kernel_mut().inner_mut(), slot, &registered);
        slot
    }

    fn not_kept(d: &mut Dispatcher<ModelBackend>, _rig: &mut Rig, vspace: CPtr) {
        let model = d.rig_backend().kernel_mut().inner_mut();
        let (cnode, index) = own(vspace);
        model.cnode_delete(cnode, index).expect("the loop deletes what arrived");
        d.rig_backend().give_back_slot(vspace);
    }

    fn client_frames(
        d: &mut Dispatcher<ModelBackend>,
        rig: &mut Rig,
        count: u64,
        radix: u8,
    ) -> (ClientFrames, u64, u64) {
        let frames = rig.client_frames(d.rig_backend().kernel_mut().inner_mut(), count, radix);
        (frames, frames.start, frames.bytes)
    }

    fn frames_arrive(d: &mut Dispatcher<ModelBackend>, rig: &mut Rig, frames: &ClientFrames) -> CPtr {
        let slot = d.rig_backend().take_slot().expect("the server has a free slot");
        rig.cnode_arrives(d.rig_backend().kernel_mut().inner_mut(), frames, slot);
        slot
    }

    fn failures_injected(&self) -> u64 {
        self.kernel().failures()
    }

    fn held(&self) -> (u64, u64) {
        let (objects, bytes) = self.spares();
        let (own_objects, own_bytes) = self.own_use();
        (
            self.untyped_free() + bytes + own_bytes,
            self.slots().saturating_sub(self.free_slots() + objects + own_objects),
        )
    }

    fn sparing((bytes, slots): (u64, u64), kept: u64) -> (u64, u64) {
        (bytes + kept * STRUCTURE_BYTES, slots.saturating_sub(kept))
    }

    fn check_spaces(server: &MemServer<ModelBackend>) -> Result<(), ModelViolation> {
        let region = server.region();
        let backend = region.backend();
        let model = backend.kernel().inner();
        let canonical = region.canonical();
        let expected: Vec<(u64, Mapping)> = canonical
            .leaves()
            .map(|l| {
                let frame = model.object_of(l.frame.cap);
                (l.addr.get(), (frame, frame_size(l.size), l.rights == Rights::ReadWrite))
            })
            .collect();
        if let Some(&(addr, _)) = expected.iter().find(|(_, (frame, _, _))| frame.is_none()) {
            return Err(ModelViolation::DeadFrame { addr });
        }
        let structures: Vec<(u64, ObjectType)> =
            canonical.structures().map(|s| (s.base, structure_type(s.level))).collect();
        let registered = registered(server)?;
        for (asid, pml4) in model.assigned_vspaces() {
            let leaves: Vec<(u64, Mapping)> =
                model.leaves(pml4, REGION).iter().map(|l| (l.vaddr, (l.frame, l.size, l.writable()))).collect();
            let mut held = model.structures(pml4, REGION);
            held.sort_unstable();
            let is_registered = registered.contains(&pml4);
            let (want_leaves, want_structures) = if is_registered {
                let mut want = structures.clone();
                want.sort_unstable();
                (expected.clone(), want)
            } else {
                (Vec::new(), Vec::new())
            };
            if let Some((addr, expected, found)) = first_difference(&leaves, &want_leaves) {
                return Err(ModelViolation::Translation { asid, registered: is_registered, addr, expected, found });
            }
            if held != want_structures {
                return Err(ModelViolation::Structures {
                    asid,
                    registered: is_registered,
                    expected: want_structures,
                    found: held,
                });
            }
        }
        if let Some(&(asid, leaf)) = model.unowned_leaves().first() {
            return Err(ModelViolation::UnownedLeaf { asid, leaf });
        }
        if let Some(hazard) = model.hazards().first() {
            return Err(ModelViolation::Hazard(*hazard));
        }
        check_records(backend)
    }

    fn check_baseline(&self, baseline: &(u64, u64)) -> Result<(), String> {
        let now = self.held();
        if now == *baseline {
            Ok(())
        } else {
            Err(format!("(untyped bytes, slots) not in use {now:?}, after start {baseline:?}"))
        }
    }
}

/// The server's records of its CNode's empty slots, of the objects it
/// made and of the untyped memory they take agree with the model.
fn check_records(backend: &ModelBackend) -> Result<(), ModelViolation> {
    let model = backend.kernel().inner();
    let root = model.object_of(cspace::ROOT).ok_or(ModelViolation::NoServerCNode)?;
    // The slots below the first free one are the bootstrap contract's,
    // the empty ones set aside for CNodes are not yet the server's to
    // hand out, nor is slot 0 of each CNode it made.
    let first_free = server_slot::UNTYPED_START + UNTYPEDS;
    let contract = (0..first_free).filter(|&i| model.cap_in(root, i) == Cap::Null).count() as u64;
    let cnodes: BTreeSet<ObjectId> = model.cnodes_in(root).into_iter().chain([root]).collect();
    let in_use = cnodes.iter().map(|&cnode| model.slots_in_use(cnode) as u64).sum::<u64>();
    let not_the_servers = contract + backend.cspace().set_aside() + (cnodes.len() as u64 - 1);
    let empty = ((cnodes.len() as u64) << SERVER_CNODE_BITS) - in_use - not_the_servers;
    if empty != backend.free_slots() {
        return Err(ModelViolation::EmptySlots { model: empty, server: backend.free_slots() });
    }
    // Objects in the server's untyped memory: the root task's (clients'
    // frames among them) are not the server's.
    let mut objects = BTreeMap::new();
    for untyped in (0..UNTYPEDS).filter_map(|i| model.untyped_at(cspace::cptr(server_slot::UNTYPED_START + i))) {
        for (otype, n) in model.objects_within(untyped.paddr, 1 << untyped.size_bits) {
            *objects.entry(otype).or_insert(0) += n;
        }
    }
    let granules = &backend.pool().granules;
    for (kind, otype) in [
        (ObjectKind::SmallFrame, ObjectType::Frame(FrameSize::Small)),
        (ObjectKind::LargeFrame, ObjectType::Frame(FrameSize::Large)),
        (ObjectKind::Pdpt, ObjectType::Pdpt),
        (ObjectKind::Pd, ObjectType::PageDirectory),
        (ObjectKind::Pt, ObjectType::PageTable),
    ] {
        let live = objects.get(&otype).copied().unwrap_or(0) as u64;
        if live != granules.count_made(kind) {
            return Err(ModelViolation::LiveObjects { object: otype, model: live, server: granules.count_made(kind) });
        }
    }
    let huge = objects.get(&ObjectType::Frame(FrameSize::Huge)).copied().unwrap_or(0) as u64;
    let blocks = backend.pool().huge_blocks().count() as u64;
    if huge != blocks {
        return Err(ModelViolation::LiveObjects {
            object: ObjectType::Frame(FrameSize::Huge),
            model: huge,
            server: blocks,
        });
    }
    let caps = backend.pool().granule_caps().iter().copied().chain(backend.pool().huge_blocks());
    let in_use: u64 = caps.map(|cap| model.untyped_at(cap).map_or(0, |u| u.in_use())).sum();
    let retyped = granules.bytes() - granules.untyped_free();
    if in_use != retyped {
        return Err(ModelViolation::UntypedInUse { model: in_use, server: retyped });
    }
    Ok(())
}
