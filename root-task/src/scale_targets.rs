//! What the `scale` scenario reaches, each a constant the scenario and its
//! boot test read: spaces registered at once, and vmalloc areas and percpu
//! allocations held at once: 1,024 spaces, 100,000 areas and 10,000
//! allocations. seL4 x86-64 has 4,095 ASIDs to give; in the scale boot the
//! root task, the memory server, the hello child, the demo's 21 agents and
//! the visitor hold 25 of them, so at most 4,070 mirrors can be made and
//! [`SPACES`] can be at most 4,073 (A, B and C's spaces with them).

/// Registered spaces at the scenario's height, the agents' included.
pub const SPACES: u32 = 1024;
/// vmalloc areas (of one 4 KiB page each) held at once.
pub const AREAS: u32 = 100_000;
/// percpu allocations (of 16 bytes each) held at once.
pub const PERCPU_ALLOCS: u32 = 10_000;
/// GiB of memory whose descriptors are populated on 2 MiB frames (1 GiB
/// of descriptor frames).
pub const VMEMMAP_BASE_GIB: u64 = 64;
/// GiB of memory in order-18 (1 GiB) compound pages whose descriptors are
/// populated, their tail frames shared (4,096 descriptor pages each).
pub const VMEMMAP_COMPOUND_GIB: u64 = 1024;
