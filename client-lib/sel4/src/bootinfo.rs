//! `seL4_BootInfo`: what the kernel tells the root task at start (its
//! free slots, untyped memory, CPUs and IPC buffer). Laid out exactly as
//! the packed C struct; the `images` ABI test checks every offset.

use super::abi::{size, Word};

/// A range of slots in the root CNode: `start..end`.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug)]
pub struct SlotRegion {
    /// `start`.
    pub start: Word,
    /// `end`.
    pub end: Word,
}

/// One untyped memory capability's description.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug)]
pub struct UntypedDesc {
    /// `paddr`.
    pub paddr: Word,
    /// `padding1`.
    pub padding1: u8,
    /// `padding2`.
    pub padding2: u8,
    /// `sizeBits`.
    pub size_bits: u8,
    /// `isDevice`.
    pub is_device: u8,
}

/// `seL4_BootInfo`.
#[repr(C, packed)]
pub struct BootInfo {
    /// `extraLen`.
    pub extra_len: Word,
    /// `nodeID`.
    pub node_id: Word,
    /// `numNodes`.
    pub num_nodes: Word,
    /// `numIOPTLevels`.
    pub num_io_pt_levels: Word,
    /// `ipcBuffer`.
    pub ipc_buffer: Word,
    /// `empty`.
    pub empty: SlotRegion,
    /// `sharedFrames`.
    pub shared_frames: SlotRegion,
    /// `userImageFrames`.
    pub user_image_frames: SlotRegion,
    /// `userImagePaging`.
    pub user_image_paging: SlotRegion,
    /// `ioSpaceCaps`.
    pub io_space_caps: SlotRegion,
    /// `extraBIPages`.
    pub extra_bi_pages: SlotRegion,
    /// `initThreadCNodeSizeBits`.
    pub init_thread_cnode_size_bits: u8,
    /// `initThreadDomain`.
    pub init_thread_domain: Word,
    /// `archInfo`: on x86, the time stamp counter's frequency in MHz.
    pub arch_info: Word,
    /// `untyped`.
    pub untyped: SlotRegion,
    /// `untypedList`.
    pub untyped_list: [UntypedDesc; size::MAX_BOOTINFO_UNTYPED],
}

/// One untyped capability with its slot.
#[derive(Clone, Copy, Debug)]
pub struct UntypedCap {
    /// Slot of the cap in the root CNode.
    pub slot: Word,
    /// Its description.
    pub desc: UntypedDesc,
}

impl BootInfo {
    /// Every untyped capability, device memory included.
    pub fn untypeds(&self) -> impl Iterator<Item = UntypedCap> + '_ {
        let (start, end) = (self.untyped.start, self.untyped.end);
        let list = self.untyped_list;
        (start..end).zip(list).map(|(slot, desc)| UntypedCap { slot, desc })
    }

    /// Bytes of untyped RAM (not device memory) handed to the root task.
    pub fn ram_bytes(&self) -> u64 {
        self.untypeds().filter(|u| u.desc.is_device == 0).map(|u| 1u64 << u.desc.size_bits).sum()
    }
}
