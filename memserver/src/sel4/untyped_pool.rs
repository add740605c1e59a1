//! The untyped memory the root task gave the server: objects are retyped
//! from it one at a time, moving to the next untyped when one is full.

use client_lib::bootstrap::server_slot;
use client_lib::invocation_counts::{Invocation, InvocationCounts};
use client_lib::sel4::abi::CPtr;
use client_lib::sel4::{Sel4Error, Slot, Untyped};

/// Untyped capabilities the server can hold.
const MAX_UNTYPEDS: usize = 64;

/// The server's untyped memory.
#[derive(Default)]
pub struct UntypedPool {
    /// (slot, size in bytes) of each untyped.
    untypeds: heapless::Vec<(CPtr, u64), MAX_UNTYPEDS>,
    /// The untyped currently retyped from.
    current: usize,
    /// Bytes handed out as objects (alignment padding and the unusable
    /// tail of a full untyped not counted).
    used: u64,
}

impl UntypedPool {
    /// An empty pool.
    pub const fn new() -> UntypedPool {
        UntypedPool { untypeds: heapless::Vec::new(), current: 0, used: 0 }
    }

    /// Adds the untyped in `slot` of `size_bits`.
    pub fn add(&mut self, slot: CPtr, size_bits: u8) {
        // Start-up hands over at most MAX_UNTYPEDS; extra ones are unused.
        let _ = self.untypeds.push((slot, 1u64 << size_bits));
    }

    /// Bytes not yet retyped.
    pub fn free_bytes(&self) -> u64 {
        self.untypeds.iter().map(|(_, size)| size).sum::<u64>().saturating_sub(self.used)
    }

    /// Retypes `count` objects of `object_type` (`size_bits` for
    /// variable-size types, `bytes` big each) into the empty slots
    /// `dest..dest + count`, with one invocation.
    pub fn retype(
        &mut self,
        counts: &mut InvocationCounts,
        (object_type, size_bits, bytes): (u64, u64, u64),
        dest: CPtr,
        count: u64,
    ) -> Result<(), Sel4Error> {
        while let Some(&(untyped, _)) = self.untypeds.get(self.current) {
            counts.record(Invocation::Retype);
            let target = Slot { root: server_slot::CNODE, node_index: 0, node_depth: 0, offset: dest };
            match Untyped(untyped).retype(object_type, size_bits, target, count) {
                Ok(()) => {
                    self.used += bytes * count;
                    return Ok(());
                }
                Err(Sel4Error::NotEnoughMemory) => self.current += 1,
                Err(e) => return Err(e),
            }
        }
        Err(Sel4Error::NotEnoughMemory)
    }
}
