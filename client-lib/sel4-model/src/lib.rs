//! A host model of seL4 5.0.0 (x86-64, non-MCS, as `images` configures it:
//! SMP, huge pages, no IOMMU, no VT-x) for the invocations on memory
//! objects: Untyped Retype, CNode Copy/Mint/Move/Delete/Revoke, frame and
//! paging-structure Map/Unmap, ASID pools. It implements client-lib's
//! [`Kernel`](sel4_layer::kernel::Kernel) trait, so code written
//! against that trait (the memory server's seL4 backend) runs on the host
//! under the kernel's own rules, each taken from the 5.0.0 source (the
//! module docs name the kernel functions):
//!
//! - CSpaces: CNodes of 2^radix slots with guards, CPtrs resolved as
//!   `resolveAddressBits` does, the kernel's errors for bad slots;
//! - the capability derivation tree as the kernel's list, with finality
//!   judged from a slot's neighbours; deleting an object's last capability
//!   destroys the object (and unmaps what its capability mapped), deleting
//!   any other capability does nothing else;
//! - untyped watermarks, alignment, the 256-object limit, reset only when
//!   an untyped has no children;
//! - frames map once per capability; paging structures once, into one
//!   VSpace, below a present parent level; ASIDs before any mapping;
//! - frame contents as written or zeroed, stores through a thread's
//!   VSpace (through no writable mapping: a fault).
//!
//! Objects have physical addresses and entries point to physical
//! addresses, as in the kernel: a mapping left behind by a deleted copy
//! maps whatever the memory becomes next. What a caller can do that 5.0.0
//! would answer with a fault, a halt or a corruption instead of an error
//! is recorded as a [`Hazard`]. Tests set the system up as a root task
//! does ([`RootTask`]), inspect capabilities, translations and
//! [`Accounting`], and check the model's own consistency
//! ([`Model::check`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod asid;
mod boot;
mod cap;
mod check;
mod cnode;
mod cspace;
mod delete;
mod frame;
mod hazard;
mod inspect;
mod invoke;
mod mdb;
mod memory;
mod model;
mod object;
mod paging;
mod root_task;
mod thread;
mod untyped;
mod vspace;

pub use boot::{BootConfig, BootInfo, UntypedInfo};
pub use cap::{Cap, Mapping, VmRights, ZombieKind};
pub use hazard::Hazard;
pub use inspect::{Accounting, UntypedUse};
pub use model::{Model, SlotId};
pub use object::{FrameSize, ObjectId, ObjectType};
pub use root_task::{MemoryServer, Process, RootTask};
pub use untyped::RETYPE_FAN_OUT_LIMIT;
pub use vspace::Leaf;
