//! Objects retyped ahead in batches: one Untyped Retype creates up to 256
//! objects of a kind, so frames and paging structures cost a fraction of an
//! invocation each to create. Pooled objects are fresh (zeroed, never used);
//! the memory they hold counts as free in the server's statistics.

use super::cspace::Slots;
use super::untyped_pool::UntypedPool;
use client_lib::invocation_counts::InvocationCounts;
use client_lib::sel4::abi::{size, CPtr};
use client_lib::sel4::Sel4Error;

/// Most objects one batch creates (`seL4_UntypedRetypeMaxObjects`).
pub const BATCH: usize = size::RETYPE_MAX_OBJECTS as usize;

/// Fresh objects of one kind.
pub struct ObjectPool {
    /// (object type, size bits, bytes per object).
    kind: (u64, u64, u64),
    /// Objects retyped at once when the pool runs dry.
    batch: u64,
    fresh: heapless::Vec<u32, BATCH>,
}

impl ObjectPool {
    /// An empty pool of objects of `kind` = (type, size bits, bytes),
    /// refilled `batch` at a time.
    pub const fn new(kind: (u64, u64, u64), batch: u64) -> ObjectPool {
        ObjectPool { kind, batch, fresh: heapless::Vec::new() }
    }

    /// A fresh object's slot, retyping a batch first if the pool is empty.
    /// With too little memory (or too few consecutive slots) for a batch it
    /// retypes one object at a time.
    pub fn take(
        &mut self,
        untyped: &mut UntypedPool,
        slots: &mut Slots,
        counts: &mut InvocationCounts,
    ) -> Result<CPtr, Sel4Error> {
        if let Some(slot) = self.fresh.pop() {
            return Ok(slot.into());
        }
        if let Some(first) = slots.take_run(self.batch) {
            if untyped.retype(counts, self.kind, first, self.batch).is_ok() {
                // Hand out the lowest slot last: the run is consumed in order.
                for slot in (first + 1..first + self.batch).rev() {
                    // Capacity is BATCH >= batch.
                    let _ = self.fresh.push(slot as u32);
                }
                return Ok(first);
            }
            for slot in first..first + self.batch {
                slots.give_back(slot);
            }
        }
        let slot = slots.take().ok_or(Sel4Error::NotEnoughMemory)?;
        match untyped.retype(counts, self.kind, slot, 1) {
            Ok(()) => Ok(slot),
            Err(e) => {
                slots.give_back(slot);
                Err(e)
            }
        }
    }

    /// Fresh objects held.
    pub fn fresh_count(&self) -> u64 {
        self.fresh.len() as u64
    }

    /// Bytes held by fresh objects.
    pub fn fresh_bytes(&self) -> u64 {
        self.fresh.len() as u64 * self.kind.2
    }
}
