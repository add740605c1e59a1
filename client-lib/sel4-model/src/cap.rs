//! Capabilities as seL4 5.0.0 stores them in a slot (the fields the rules
//! read), and the pure functions of `objecttype.c` on them: `maskCapRights`,
//! `updateCapData`, and the physical region a capability covers.

use crate::object::{FrameSize, ObjectId};
use sel4_layer::abi::Word;
use sel4_layer::CapRights;

/// Where a frame or paging-structure capability is mapped: the ASID of
/// the VSpace and the virtual address (its `MappedASID`/`MappedAddress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mapping {
    /// The VSpace's ASID.
    pub asid: u16,
    /// The (first) virtual address covered.
    pub vaddr: u64,
}

/// The rights of a frame capability or a page mapping (`vm_rights_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VmRights {
    /// Mapped for the kernel only: user access faults.
    KernelOnly,
    /// Readable.
    ReadOnly,
    /// Readable and writable.
    ReadWrite,
}

impl VmRights {
    /// `maskVMRights`: the rights left after the mask `rights`.
    pub const fn mask(self, rights: CapRights) -> VmRights {
        match self {
            VmRights::ReadOnly if rights.read => VmRights::ReadOnly,
            VmRights::ReadWrite if rights.read && !rights.write => VmRights::ReadOnly,
            VmRights::ReadWrite if rights.read => VmRights::ReadWrite,
            _ => VmRights::KernelOnly,
        }
    }
}

/// Which object a zombie capability is finishing (`capZombieType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ZombieKind {
    /// A CNode of 2^radix slots.
    CNode {
        /// Its radix.
        radix: u32,
    },
    /// A TCB (its five slots).
    Tcb,
}

/// A capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// An empty slot.
    Null,
    /// Untyped memory: a region and its watermark (`capFreeIndex`, here in
    /// bytes from the region's start).
    Untyped {
        /// Start of the region.
        paddr: u64,
        /// log2 of its size.
        size_bits: u32,
        /// Bytes from `paddr` up to which the region has been retyped.
        free_offset: u64,
    },
    /// An endpoint.
    Endpoint {
        /// The endpoint.
        object: ObjectId,
        /// Its badge.
        badge: Word,
        /// Send, receive and grant rights.
        rights: CapRights,
    },
    /// A notification.
    Notification {
        /// The notification.
        object: ObjectId,
        /// Its badge.
        badge: Word,
        /// Send (write) and receive (read) rights.
        rights: CapRights,
    },
    /// A CNode, with the guard its lookups must match.
    CNode {
        /// The CNode.
        object: ObjectId,
        /// log2 of its slots.
        radix: u32,
        /// The guard value.
        guard: Word,
        /// Bits of the guard.
        guard_size: u32,
    },
    /// A thread.
    Thread {
        /// The TCB.
        object: ObjectId,
    },
    /// A CNode or TCB being deleted: `number` of its first slots are still
    /// to be emptied.
    Zombie {
        /// The object.
        object: ObjectId,
        /// What it is.
        kind: ZombieKind,
        /// Slots left.
        number: u64,
    },
    /// A frame.
    Frame {
        /// The frame.
        object: ObjectId,
        /// Its size.
        size: FrameSize,
        /// Its rights.
        rights: VmRights,
        /// Where this capability mapped it.
        mapping: Option<Mapping>,
    },
    /// A page table.
    PageTable {
        /// The table.
        object: ObjectId,
        /// Where it is mapped.
        mapping: Option<Mapping>,
    },
    /// A page directory.
    PageDirectory {
        /// The directory.
        object: ObjectId,
        /// Where it is mapped.
        mapping: Option<Mapping>,
    },
    /// A PDPT.
    Pdpt {
        /// The table.
        object: ObjectId,
        /// Where it is mapped.
        mapping: Option<Mapping>,
    },
    /// A PML4 (VSpace root).
    Pml4 {
        /// The PML4.
        object: ObjectId,
        /// Its ASID, once assigned.
        asid: Option<u16>,
    },
    /// The ASID control capability.
    AsidControl,
    /// An ASID pool.
    AsidPool {
        /// The pool.
        object: ObjectId,
        /// Its first ASID.
        base: u16,
    },
}

impl Cap {
    /// The object the capability refers to (keeping it alive).
    pub fn object(&self) -> Option<ObjectId> {
        match *self {
            Cap::Endpoint { object, .. }
            | Cap::Notification { object, .. }
            | Cap::CNode { object, .. }
            | Cap::Thread { object }
            | Cap::Zombie { object, .. }
            | Cap::Frame { object, .. }
            | Cap::PageTable { object, .. }
            | Cap::PageDirectory { object, .. }
            | Cap::Pdpt { object, .. }
            | Cap::Pml4 { object, .. }
            | Cap::AsidPool { object, .. } => Some(object),
            Cap::Null | Cap::Untyped { .. } | Cap::AsidControl => None,
        }
    }

    /// `maskCapRights`: only endpoints, notifications and frames have
    /// rights to lose.
    pub(crate) fn mask_rights(self, mask: CapRights) -> Cap {
        let and = |r: CapRights| CapRights {
            grant: r.grant && mask.grant,
            read: r.read && mask.read,
            write: r.write && mask.write,
        };
        match self {
            Cap::Endpoint { object, badge, rights } => Cap::Endpoint { object, badge, rights: and(rights) },
            Cap::Notification { object, badge, rights } => {
                Cap::Notification { object, badge, rights: CapRights { grant: false, ..and(rights) } }
            }
            Cap::Frame { object, size, rights, mapping } => {
                Cap::Frame { object, size, rights: rights.mask(mask), mapping }
            }
            other => other,
        }
    }

    /// `updateCapData` with `preserve` false (CNode Mint): a badge for an
    /// unbadged endpoint or notification, guard data for a CNode; `Null`
    /// when the data cannot apply.
    pub(crate) fn with_data(self, data: Word) -> Cap {
        match self {
            Cap::Endpoint { object, badge: 0, rights } => Cap::Endpoint { object, badge: data, rights },
            Cap::Notification { object, badge: 0, rights } => Cap::Notification { object, badge: data, rights },
            Cap::Endpoint { .. } | Cap::Notification { .. } => Cap::Null,
            Cap::CNode { object, radix, .. } => {
                // cnode_capdata: guardSize in bits 2..8, guard in bits 8..26.
                let guard_size = ((data >> 2) & 0x3f) as u32;
                if guard_size + radix > 64 {
                    return Cap::Null;
                }
                let guard = ((data >> 8) & 0x3_ffff) & mask(guard_size);
                Cap::CNode { object, radix, guard, guard_size }
            }
            other => other,
        }
    }

    /// The badge that makes a copy revocable when it differs (`cteInsert`).
    pub(crate) fn badge(&self) -> Option<Word> {
        match *self {
            Cap::Endpoint { badge, .. } | Cap::Notification { badge, .. } => Some(badge),
            _ => None,
        }
    }
}

/// `MASK(bits)`, for any bits up to the word.
pub(crate) const fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}
