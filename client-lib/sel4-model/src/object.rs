//! Kernel objects: their identity, type, place in physical memory, and the
//! state the model keeps in them (paging-structure entries, ASID pool
//! entries). CNode and TCB slots live in the model's slot table.

use crate::vspace::Entry;
use sel4_layer::abi::{object_type, size};
use std::collections::BTreeMap;

/// A kernel object, unique over the model's whole run (never reused, even
/// when the same memory is retyped again).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(pub(crate) u64);

/// The size of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FrameSize {
    /// 4 KiB (`seL4_X86_4K`).
    Small,
    /// 2 MiB (`seL4_X86_LargePageObject`).
    Large,
    /// 1 GiB (`seL4_X64_HugePageObject`).
    Huge,
}

impl FrameSize {
    /// `pageBitsForSize`.
    pub const fn bits(self) -> u32 {
        match self {
            FrameSize::Small => size::PAGE_BITS as u32,
            FrameSize::Large => size::LARGE_PAGE_BITS as u32,
            FrameSize::Huge => HUGE_PAGE_BITS,
        }
    }

    /// Bytes in a frame of this size.
    pub const fn bytes(self) -> u64 {
        1 << self.bits()
    }
}

/// `seL4_HugePageBits`.
pub const HUGE_PAGE_BITS: u32 = 30;

/// The type of a kernel object (untyped memory is not an object: it is
/// capabilities to a region).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectType {
    /// A thread control block.
    Tcb,
    /// An endpoint.
    Endpoint,
    /// A notification.
    Notification,
    /// A CNode (`seL4_CapTableObject`).
    CNode,
    /// A frame.
    Frame(FrameSize),
    /// A page table.
    PageTable,
    /// A page directory.
    PageDirectory,
    /// A page-directory-pointer table.
    Pdpt,
    /// A PML4, the root of a VSpace.
    Pml4,
    /// An ASID pool (made by ASIDControl MakePool).
    AsidPool,
}

/// What Untyped Retype makes of an `object_type` number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retyped {
    /// Smaller untyped memory.
    Untyped,
    /// A kernel object.
    Object(ObjectType),
}

/// `seL4_MaxUntypedBits`.
pub(crate) const MAX_UNTYPED_BITS: u64 = 47;
/// `seL4_MinUntypedBits`.
pub(crate) const MIN_UNTYPED_BITS: u64 = 4;
/// `seL4_TCBBits`, `seL4_EndpointBits`, `seL4_NotificationBits`,
/// `seL4_SlotBits` and the paging structures' bits (all 4 KiB on x86-64).
pub(crate) const TCB_BITS: u32 = size::TCB_BITS as u32;
const ENDPOINT_BITS: u32 = size::ENDPOINT_BITS as u32;
const NOTIFICATION_BITS: u32 = 5;
pub(crate) const SLOT_BITS: u32 = size::SLOT_BITS as u32;
pub(crate) const TABLE_BITS: u32 = 12;
/// `tcbCNodeEntries`: the slots inside a TCB (CTable, VTable, Reply,
/// Caller, Buffer).
pub(crate) const TCB_SLOTS: u64 = 5;
/// The TCB slot of the thread's CSpace root (`tcbCTable`).
pub(crate) const TCB_CTABLE: u64 = 0;
/// The TCB slot of the thread's VSpace root (`tcbVTable`).
pub(crate) const TCB_VTABLE: u64 = 1;

impl Retyped {
    /// The type `object_type` names (`None`: at or past
    /// `seL4_ObjectTypeCount`, 12 in the `images` build: huge pages, no
    /// IOMMU, no VT-x).
    pub(crate) fn from_number(number: u64) -> Option<Retyped> {
        Some(match number {
            object_type::UNTYPED => Retyped::Untyped,
            object_type::TCB => Retyped::Object(ObjectType::Tcb),
            object_type::ENDPOINT => Retyped::Object(ObjectType::Endpoint),
            object_type::NOTIFICATION => Retyped::Object(ObjectType::Notification),
            object_type::CAP_TABLE => Retyped::Object(ObjectType::CNode),
            object_type::X86_PDPT => Retyped::Object(ObjectType::Pdpt),
            object_type::X64_PML4 => Retyped::Object(ObjectType::Pml4),
            object_type::X64_HUGE_PAGE => Retyped::Object(ObjectType::Frame(FrameSize::Huge)),
            object_type::X86_4K => Retyped::Object(ObjectType::Frame(FrameSize::Small)),
            object_type::X86_LARGE_PAGE => Retyped::Object(ObjectType::Frame(FrameSize::Large)),
            object_type::X86_PAGE_TABLE => Retyped::Object(ObjectType::PageTable),
            object_type::X86_PAGE_DIRECTORY => Retyped::Object(ObjectType::PageDirectory),
            _ => return None,
        })
    }

    /// `getObjectSize`: log2 of the bytes one object takes (`user_size`
    /// is the size argument of Retype). Can exceed the word for a huge
    /// CNode; the caller checks.
    pub(crate) fn size_bits(self, user_size: u64) -> u64 {
        match self {
            Retyped::Untyped => user_size,
            Retyped::Object(ObjectType::CNode) => SLOT_BITS as u64 + user_size,
            Retyped::Object(t) => t.fixed_bits() as u64,
        }
    }
}

impl ObjectType {
    /// The size of every type but CNodes, which have a radix.
    pub(crate) const fn fixed_bits(self) -> u32 {
        match self {
            ObjectType::Tcb => TCB_BITS,
            ObjectType::Endpoint => ENDPOINT_BITS,
            ObjectType::Notification => NOTIFICATION_BITS,
            ObjectType::Frame(size) => size.bits(),
            ObjectType::CNode => SLOT_BITS,
            ObjectType::PageTable
            | ObjectType::PageDirectory
            | ObjectType::Pdpt
            | ObjectType::Pml4
            | ObjectType::AsidPool => TABLE_BITS,
        }
    }
}

/// A live object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Object {
    pub otype: ObjectType,
    pub paddr: u64,
    pub size_bits: u32,
    /// Capabilities (zombies included) that refer to it; it dies at 0.
    pub refs: usize,
    pub body: Body,
}

/// The state inside an object that the model keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// Nothing (endpoints, notifications, frames; TCB and CNode slots are
    /// in the slot table).
    Plain,
    /// A CNode of 2^radix slots.
    CNode { radix: u32 },
    /// A paging structure's present entries, by index.
    Table(BTreeMap<u16, Entry>),
    /// An ASID pool's VSpaces (PML4 physical addresses), by ASID low bits.
    AsidPool(BTreeMap<u16, u64>),
}
