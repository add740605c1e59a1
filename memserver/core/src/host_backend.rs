//! What the host tests, the invariant checker and the fuzzing harness need
//! of a backend besides the [`Platform`] (host only, `sim` feature): a
//! started server over a fresh one, a VSpace made as the root task makes
//! one, a client's frames given as a launcher gives them, whether an injected failure is pending, the backend's part of the
//! state a failed request must leave as it was, and the backend's part of
//! the invariant (every registered space maps exactly what the canonical
//! table maps). Implemented by the simulated MMU ([`Sim`](crate::sim::Sim))
//! and by the memory server's seL4 backend over the model of seL4 (crate
//! `memserver`, feature `model`), so the same harness drives both.

use core::fmt::Debug;
use std::boxed::Box;
use std::string::String;

use crate::dispatch::{Dispatcher, Platform};
use crate::server::MemServer;

/// A backend the host tests can drive.
pub trait HostBackend: Platform + Sized {
    /// What a test keeps beside the server to act as the rest of the
    /// system (on the model: the root task, which makes VSpaces).
    type Rig;
    /// The backend's part of the state a failed request leaves as it was.
    type Held: PartialEq + Debug;
    /// How the backend's spaces can disagree with the canonical table.
    type SpaceViolation: Debug;
    /// A CNode of a client's frames, as the rig holds it.
    type Frames: Copy;

    /// A started dispatcher for `cpus` CPUs over a fresh backend, on the
    /// heap, and its rig.
    fn started(cpus: usize) -> (Box<Dispatcher<Self>>, Self::Rig);

    /// A new VSpace, made as the root task makes one, as it arrives with a
    /// registration.
    fn new_vspace(d: &mut Dispatcher<Self>, rig: &mut Self::Rig) -> Self::VSpace;

    /// What the server's loop does with `vspace`, which came with a
    /// message and was not kept: it is deleted, and its slot is free again.
    fn not_kept(d: &mut Dispatcher<Self>, rig: &mut Self::Rig, vspace: Self::VSpace);

    /// `count` frames of a client at consecutive physical addresses, their
    /// capabilities in slots from 0 of a CNode of 2^`radix` slots, as a
    /// launcher gives a program its frames: the CNode's handle (to pass
    /// with [`HostBackend::frames_arrive`]) and the frames' memory (first
    /// address, bytes).
    fn client_frames(d: &mut Dispatcher<Self>, rig: &mut Self::Rig, count: u64, radix: u8) -> (Self::Frames, u64, u64);

    /// The capability of the CNode `frames`, as it arrives with a vmap;
    /// [`HostBackend::not_kept`] deletes it after the request.
    fn frames_arrive(d: &mut Dispatcher<Self>, rig: &mut Self::Rig, frames: &Self::Frames) -> Self::VSpace;

    /// Failures injected so far (armed ones that happened).
    fn failures_injected(&self) -> u64;

    /// The backend's part of the state now.
    fn held(&self) -> Self::Held;

    /// `held` with `structures` of its paging structures counted as spare
    /// objects: those a purge kept empty, which hold no mapping and go
    /// when memory runs out, so that a state differs from another by them
    /// alone only where its cache does.
    fn sparing(held: Self::Held, structures: u64) -> Self::Held;

    /// The backend's part of the invariant: every registered space maps
    /// exactly the canonical table's leaves and structures, the others
    /// nothing of the region, and the backend's own records agree with
    /// what it holds.
    fn check_spaces(server: &MemServer<Self>) -> Result<(), Self::SpaceViolation>;

    /// Once every space is unregistered (and everything purged), the
    /// backend holds no more than `started` left it holding, `baseline`
    /// being [`HostBackend::held`] then.
    fn check_baseline(&self, baseline: &Self::Held) -> Result<(), String>;
}
