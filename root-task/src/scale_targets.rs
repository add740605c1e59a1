//! What the `scale` scenario reaches, each a constant the scenario and its
//! boot test read: spaces registered at once, and vmalloc areas and percpu
//! allocations held at once. They are the memory server's limits of today;
//! issue 12's targets are 1,024 spaces (4,093 is the ceiling: seL4 x86-64
//! has 4,095 ASIDs to give, and the root task and the memory server hold
//! two), 100,000 areas and 10,000 allocations.

/// Registered spaces at the scenario's height, the agents' included.
pub const SPACES: u32 = 32;
/// vmalloc areas (of one 4 KiB page each) held at once.
pub const AREAS: u32 = 128;
/// percpu allocations (of 16 bytes each) held at once.
pub const PERCPU_ALLOCS: u32 = 256;
