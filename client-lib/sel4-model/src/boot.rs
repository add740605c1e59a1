//! The state seL4 5.0.0 hands its initial thread (`kernel/boot.c`,
//! `create_it_address_space`): a root CNode whose guard makes CPtrs
//! resolve with the full word, the thread's TCB, its VSpace with ASID 1
//! from the initial ASID pool, the ASID control capability, and untyped
//! memory of the sizes asked for. The initial thread runs.
//!
//! Not modelled: the IRQ, I/O port, I/O space and domain capabilities,
//! the bootinfo and IPC buffer frames, and the root task's image mappings.

use crate::cap::Cap;
use crate::model::{Mdb, Model, SlotId};
use crate::object::{Body, ObjectId, ObjectType, SLOT_BITS, TABLE_BITS, TCB_BITS, TCB_CTABLE, TCB_VTABLE};
use sel4_layer::abi::{init_cap, CPtr, WORD_BITS};
use std::collections::BTreeMap;
use std::ops::Range;

/// `IT_ASID`: the initial thread's ASID.
const IT_ASID: u16 = 1;
/// `seL4_NumInitialCaps`: the first slot after the initial capabilities.
const NUM_INITIAL_CAPS: u64 = 12;
/// Where the kernel's boot objects are (below every untyped).
const BOOT_OBJECTS: u64 = 0x10_0000;
/// Where untyped memory starts.
const UNTYPED_BASE: u64 = 0x4000_0000;

/// What to boot with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootConfig {
    /// log2 of the root CNode's slots (`CONFIG_ROOT_CNODE_SIZE_BITS`).
    pub root_cnode_bits: u32,
    /// The size in bits of each untyped capability, in slot order.
    pub untyped_bits: Vec<u32>,
}

impl Default for BootConfig {
    /// The `images` build's root CNode (2^16 slots) and 64 MiB of untyped
    /// memory in 16 MiB pieces.
    fn default() -> BootConfig {
        BootConfig { root_cnode_bits: 16, untyped_bits: vec![24; 4] }
    }
}

/// An untyped capability the initial thread holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UntypedInfo {
    /// Its slot.
    pub cptr: CPtr,
    /// log2 of its size.
    pub size_bits: u32,
    /// Its physical address.
    pub paddr: u64,
}

/// What bootinfo tells the initial thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// The initial thread.
    pub thread: ObjectId,
    /// Its empty slots.
    pub empty: Range<CPtr>,
    /// Its untyped memory.
    pub untypeds: Vec<UntypedInfo>,
}

impl Model {
    /// A kernel just booted with `config`, its initial thread running.
    pub fn boot(config: &BootConfig) -> (Model, BootInfo) {
        let mut m = Model::empty();
        let radix = config.root_cnode_bits;
        let mut next = BOOT_OBJECTS;
        let mut place = |bits: u32| {
            let paddr = next.next_multiple_of(1 << bits);
            next = paddr + (1 << bits);
            paddr
        };
        let (cnode_at, tcb_at, pml4_at, pool_at) =
            (place(radix + SLOT_BITS), place(TCB_BITS), place(TABLE_BITS), place(TABLE_BITS));
        let cnode = m.new_object(ObjectType::CNode, cnode_at, radix + SLOT_BITS, Body::CNode { radix });
        let tcb = m.new_object(ObjectType::Tcb, tcb_at, TCB_BITS, Body::Plain);
        let pml4 = m.new_object(ObjectType::Pml4, pml4_at, TABLE_BITS, Body::pml4());
        let pool = m.new_object(
            ObjectType::AsidPool,
            pool_at,
            TABLE_BITS,
            Body::AsidPool(BTreeMap::from([(IT_ASID, pml4_at)])),
        );
        m.asid_table[0] = Some(pool_at);
        let root = |index| SlotId { object: cnode, index };
        let cnode_cap = Cap::CNode { object: cnode, radix, guard: 0, guard_size: WORD_BITS as u32 - radix };
        let vspace_cap = Cap::Pml4 { object: pml4, asid: Some(IT_ASID) };
        m.write_slot(root(init_cap::TCB), Cap::Thread { object: tcb });
        m.write_slot(root(init_cap::CNODE), cnode_cap);
        m.write_slot(root(init_cap::VSPACE), vspace_cap);
        m.write_slot(root(init_cap::ASID_CONTROL), Cap::AsidControl);
        m.write_slot(root(init_cap::ASID_POOL), Cap::AsidPool { object: pool, base: 0 });
        m.cte_insert(cnode_cap, root(init_cap::CNODE), SlotId { object: tcb, index: TCB_CTABLE });
        m.cte_insert(vspace_cap, root(init_cap::VSPACE), SlotId { object: tcb, index: TCB_VTABLE });
        let mut paddr = UNTYPED_BASE;
        let untypeds = (NUM_INITIAL_CAPS..)
            .zip(&config.untyped_bits)
            .map(|(cptr, &size_bits)| {
                let base = paddr.next_multiple_of(1 << size_bits);
                paddr = base + (1 << size_bits);
                m.write_slot(root(cptr), Cap::Untyped { paddr: base, size_bits, free_offset: 0 });
                UntypedInfo { cptr, size_bits, paddr: base }
            })
            .collect::<Vec<_>>();
        m.current = tcb;
        let first_empty = NUM_INITIAL_CAPS + untypeds.len() as u64;
        (m, BootInfo { thread: tcb, empty: first_empty..1 << radix, untypeds })
    }

    /// `write_slot`: a boot capability, revocable, with no parent.
    fn write_slot(&mut self, slot: SlotId, cap: Cap) {
        self.set_cap(slot, cap);
        self.set_mdb(slot, Mdb { revocable: true, first_badged: true, ..Mdb::default() });
    }
}
