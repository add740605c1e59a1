//! The typed client API: `MemClient` for programs whose address space is
//! registered with the server, `AdminClient` for the root task. Each typed
//! call takes what it returns from the one kind of reply its request gets
//! (a [`Pick`]); any other kind is [`ClientError::WrongReply`].

use crate::error::{wire_code, ClientError};
use crate::transport;
use memserver_protocol::batch::{Batch, BatchReply};
use memserver_protocol::registers;
use memserver_protocol::{
    FailurePoint, FaultReport, Protection, Quota, Realloc, RegionInfo, Registration, Reply, Request, Stats,
    Translation, VmallocOptions, Words, PROTOCOL_VERSION,
};
use sel4_layer::abi::CPtr;

/// What a typed call takes from its reply: `None` for a reply of any other
/// kind.
type Pick<T> = fn(Reply) -> Option<T>;

/// The picks of the typed calls, one per kind of reply they expect.
mod pick {
    use super::*;

    /// `Reply::Hello`: the server's version and the layout.
    pub fn hello(reply: Reply) -> Option<(u16, RegionInfo)> {
        match reply {
            Reply::Hello { version, region } => Some((version, region)),
            _ => None,
        }
    }

    /// `Reply::Done`.
    pub fn done(reply: Reply) -> Option<()> {
        matches!(reply, Reply::Done).then_some(())
    }

    /// `Reply::Address`.
    pub fn address(reply: Reply) -> Option<u64> {
        match reply {
            Reply::Address(addr) => Some(addr),
            _ => None,
        }
    }

    /// `Reply::Offset`.
    pub fn offset(reply: Reply) -> Option<u32> {
        match reply {
            Reply::Offset(offset) => Some(offset),
            _ => None,
        }
    }

    /// `Reply::Translation`.
    pub fn translation(reply: Reply) -> Option<Option<Translation>> {
        match reply {
            Reply::Translation(t) => Some(t),
            _ => None,
        }
    }

    /// `Reply::Stats`.
    pub fn stats(reply: Reply) -> Option<Stats> {
        match reply {
            Reply::Stats(stats) => Some(stats),
            _ => None,
        }
    }

    /// `Reply::Space`.
    pub fn space(reply: Reply) -> Option<Registration> {
        match reply {
            Reply::Space(registration) => Some(registration),
            _ => None,
        }
    }

    /// `Reply::Realloc`.
    pub fn realloc(reply: Reply) -> Option<Realloc> {
        match reply {
            Reply::Realloc(realloc) => Some(realloc),
            _ => None,
        }
    }

    /// `Reply::Fault`.
    pub fn fault(reply: Reply) -> Option<Option<FaultReport>> {
        match reply {
            Reply::Fault(report) => Some(report),
            _ => None,
        }
    }
}

/// Sends `request` (with `cap`, if any) and returns what `take` makes of
/// the reply of whatever kind, or the server's refusal, or why there is
/// no reply.
#[inline]
fn call<T>(
    endpoint: CPtr,
    request: &Request,
    cap: Option<CPtr>,
    take: impl FnOnce(Reply) -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    if let (Some(message), None) = (registers::request(request), cap) {
        return transport::call_registers(endpoint, &message, take);
    }
    let words = Words::encode(request).ok_or(ClientError::TooLarge)?;
    take(transport::call_words(endpoint, &words, cap)?)
}

/// What `pick` takes from `reply` to `request`, or `WrongReply`.
fn expect<T>(request: &Request, reply: Reply, pick: Pick<T>) -> Result<T, ClientError> {
    pick(reply).ok_or_else(|| ClientError::WrongReply { request: wire_code(request), reply: wire_code(&reply) })
}

/// Sends `request` (with `cap`, if any) and returns what `pick` takes from
/// the reply.
#[inline]
fn ask<T>(endpoint: CPtr, request: Request, cap: Option<CPtr>, pick: Pick<T>) -> Result<T, ClientError> {
    call(endpoint, &request, cap, |reply| expect(&request, reply, pick))
}

/// A connection to the memory server through a badged endpoint.
///
/// ```ignore
/// let mem = MemClient::connect(MEMSERVER_ENDPOINT)?;
/// let addr = mem.vmalloc(1 << 20, false)?;   // 1 MiB, zeroed, in every space
/// unsafe { (addr as *mut u64).write(42) };
/// mem.vfree(addr)?;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MemClient {
    endpoint: CPtr,
    region: RegionInfo,
}

impl MemClient {
    /// Checks protocol versions with the server behind `endpoint` and
    /// learns the region layout.
    pub fn connect(endpoint: CPtr) -> Result<MemClient, ClientError> {
        match ask(endpoint, Request::Hello { version: PROTOCOL_VERSION }, None, pick::hello)? {
            (PROTOCOL_VERSION, region) => Ok(MemClient { endpoint, region }),
            (server, _) => Err(ClientError::VersionMismatch { client: PROTOCOL_VERSION, server }),
        }
    }

    /// The region layout the server announced.
    pub fn region(&self) -> &RegionInfo {
        &self.region
    }

    /// Sends any request; for requests without a typed method.
    pub fn request(&self, request: &Request) -> Result<Reply, ClientError> {
        call(self.endpoint, request, None, Ok)
    }

    /// Sends `request` and returns what `pick` takes from the reply.
    fn ask<T>(&self, request: Request, pick: Pick<T>) -> Result<T, ClientError> {
        ask(self.endpoint, request, None, pick)
    }

    /// Allocates `size` bytes of zeroed memory mapped in every registered
    /// space; `large_pages` uses 1 GiB pages for a multiple of 1 GiB, else
    /// 2 MiB pages from 2 MiB on.
    pub fn vmalloc(&self, size: u64, large_pages: bool) -> Result<u64, ClientError> {
        self.ask(Request::Vmalloc { size, large_pages }, pick::address)
    }

    /// [`MemClient::vmalloc`] with Linux's `__vmalloc_node_range` options
    /// (alignment, guard pages, 2 MiB and 1 GiB pages, no purge): see
    /// [`VmallocOptions`].
    pub fn vmalloc_with(&self, size: u64, options: VmallocOptions) -> Result<u64, ClientError> {
        self.ask(Request::VmallocWith { size, options }, pick::address)
    }

    /// Resizes this client's vmalloc area at `addr` to `size` bytes,
    /// contents kept: in place when it can, else moved (Linux's
    /// `vrealloc`); says where it is now and whether it moved.
    pub fn vrealloc(&self, addr: u64, size: u64) -> Result<Realloc, ClientError> {
        self.ask(Request::Vrealloc { addr, size }, pick::realloc)
    }

    /// Gives this client's vmalloc area at `addr` `protection` in every
    /// space at once (Linux's `set_memory_ro` / `set_memory_rw`); a write
    /// to it while read-only faults, reported to the administrator.
    pub fn protect(&self, addr: u64, protection: Protection) -> Result<(), ClientError> {
        self.ask(Request::Protect { addr, protection }, pick::done)
    }

    /// Maps `pages` of this client's frames, whose capabilities are in
    /// slots `first..` of the CNode `frames` (of 2^`bits` slots, no
    /// guard), contiguously in the vmalloc area of every space, with one
    /// guard page after them (Linux's `vmap`); returns the area's address,
    /// freed with [`MemClient::vfree`]. The frames stay the client's: the
    /// server never frees or zeroes them. Each must lie in the memory the
    /// system granted this client (`ForeignFrame` otherwise); a slot that
    /// holds no 4 KiB frame is `NotAFrame`.
    pub fn vmap(
        &self,
        frames: CPtr,
        bits: u8,
        first: u64,
        pages: u32,
        protection: Protection,
    ) -> Result<u64, ClientError> {
        let request = Request::Vmap { first, pages, depth: bits, protection };
        ask(self.endpoint, request, Some(frames), pick::address)
    }

    /// Backs the page descriptors of `nr_pages` pfns from `start_pfn`
    /// (both multiples of 64) with this client's own frames, one per 64
    /// pfns, from slot `first` of the CNode `frames` (of 2^`bits` slots):
    /// hot-added memory whose descriptors live in it (Linux's
    /// memmap_on_memory). Each frame must lie in the range it describes
    /// and in the memory granted to this client. Undone with
    /// [`MemClient::vmemmap_depopulate`]; the frames stay the client's.
    pub fn vmemmap_populate_from(
        &self,
        frames: CPtr,
        bits: u8,
        first: u64,
        start_pfn: u64,
        nr_pages: u64,
    ) -> Result<(), ClientError> {
        let request = Request::VmemmapPopulateFrom { start_pfn, nr_pages, first, depth: bits };
        ask(self.endpoint, request, Some(frames), pick::done)
    }

    /// [`MemClient::vmap`] of the frames the launcher gave this program
    /// (`frames` in its description; the boot contract's `FRAMES` slot),
    /// from its `first` frame on.
    pub fn vmap_given(&self, first: u64, pages: u32, protection: Protection) -> Result<u64, ClientError> {
        use crate::boot_contract::{slot, FRAMES_BITS};
        self.vmap(slot::FRAMES, FRAMES_BITS, first, pages, protection)
    }

    /// [`MemClient::vmemmap_populate_from`] with the frames the launcher
    /// gave this program, from its `first` frame on.
    pub fn vmemmap_populate_given(&self, first: u64, start_pfn: u64, nr_pages: u64) -> Result<(), ClientError> {
        use crate::boot_contract::{slot, FRAMES_BITS};
        self.vmemmap_populate_from(slot::FRAMES, FRAMES_BITS, first, start_pfn, nr_pages)
    }

    /// Makes the operations of `batch` in one IPC, in order, each as the
    /// request alone would be made: one reply per operation
    /// (`Reply::Error` for one that failed and changed nothing; the others
    /// go on). `Server(code)` if the server refused the whole batch
    /// (undecodable, or from a client with no registered space).
    pub fn batch(&self, batch: &Batch) -> Result<BatchReply, ClientError> {
        transport::call_batch(self.endpoint, batch)
    }

    /// Frees this client's vmalloc area at `addr`.
    pub fn vfree(&self, addr: u64) -> Result<(), ClientError> {
        self.ask(Request::Vfree { addr }, pick::done)
    }

    /// Allocates `size` bytes aligned to `align` in every CPU's unit,
    /// zeros in each; returns the offset, valid in each unit.
    pub fn percpu_alloc(&self, size: u32, align: u32) -> Result<u32, ClientError> {
        self.ask(Request::PercpuAlloc { size, align }, pick::offset)
    }

    /// Frees the percpu allocation at `offset`.
    pub fn percpu_free(&self, offset: u32) -> Result<(), ClientError> {
        self.ask(Request::PercpuFree { offset }, pick::done)
    }

    /// The address of percpu `offset` in CPU `cpu`'s unit, `None` if
    /// `cpu` has no unit (see [`memserver_protocol::PercpuLayout::address`]).
    pub fn percpu_address(&self, offset: u32, cpu: u16) -> Option<u64> {
        self.region.percpu_address(offset, cpu)
    }

    /// How the canonical table maps `addr`.
    pub fn translate(&self, addr: u64) -> Result<Option<Translation>, ClientError> {
        self.ask(Request::Translate { addr }, pick::translation)
    }

    /// Backs the descriptors of `nr_pages` pfns from `start_pfn`, with the
    /// compound-page optimisation for `compound_order` > 0.
    pub fn vmemmap_populate(&self, start_pfn: u64, nr_pages: u64, compound_order: u8) -> Result<(), ClientError> {
        self.ask(Request::VmemmapPopulate { start_pfn, nr_pages, compound_order, huge: false }, pick::done)
    }

    /// [`MemClient::vmemmap_populate`] (no compound pages) with 2 MiB
    /// descriptor frames wherever a whole 2 MiB of descriptors (32,768
    /// pfns) lies in the range, 4 KiB frames at its ends.
    pub fn vmemmap_populate_huge(&self, start_pfn: u64, nr_pages: u64) -> Result<(), ClientError> {
        self.ask(Request::VmemmapPopulate { start_pfn, nr_pages, compound_order: 0, huge: true }, pick::done)
    }

    /// Frees the descriptor frames of a pfn range.
    pub fn vmemmap_depopulate(&self, start_pfn: u64, nr_pages: u64) -> Result<(), ClientError> {
        self.ask(Request::VmemmapDepopulate { start_pfn, nr_pages }, pick::done)
    }

    /// Server statistics.
    pub fn stats(&self) -> Result<Stats, ClientError> {
        self.ask(Request::Stats, pick::stats)
    }
}

/// The administrator's connection (the root task's badge).
#[derive(Clone, Copy, Debug)]
pub struct AdminClient {
    endpoint: CPtr,
}

impl AdminClient {
    /// The administrator endpoint.
    pub const fn new(endpoint: CPtr) -> AdminClient {
        AdminClient { endpoint }
    }

    /// Sends `request` and returns what `pick` takes from the reply.
    fn ask<T>(&self, request: Request, pick: Pick<T>) -> Result<T, ClientError> {
        ask(self.endpoint, request, None, pick)
    }

    /// Registers the VSpace `vspace` for client `client` (its endpoint
    /// badge) with a quota of `quota_bytes` and the server's default share
    /// of frames, structures and areas; returns the space id and its fault
    /// badge. The space holds the whole region when this returns.
    pub fn register(&self, client: u64, quota_bytes: u64, vspace: CPtr) -> Result<Registration, ClientError> {
        self.register_with_quota(client, Quota::bytes(quota_bytes), vspace)
    }

    /// Registers the VSpace `vspace` for client `client` with limits on
    /// bytes, frames, structures and areas; returns the space id and its
    /// fault badge.
    pub fn register_with_quota(&self, client: u64, quota: Quota, vspace: CPtr) -> Result<Registration, ClientError> {
        ask(self.endpoint, Request::Register { client, quota }, Some(vspace), pick::space)
    }

    /// Lets client `client` vmap the frames in the `bytes` of physical
    /// memory from `start` (frames the system gave it and keeps the
    /// originals of, so the client cannot revoke the server's copies);
    /// the grant lasts until the client's last space is unregistered.
    pub fn grant_frames(&self, client: u64, start: u64, bytes: u64) -> Result<(), ClientError> {
        self.ask(Request::GrantFrames { client, start, bytes }, pick::done)
    }

    /// Takes the oldest pending fault report, if any.
    pub fn take_fault(&self) -> Result<Option<FaultReport>, ClientError> {
        self.ask(Request::TakeFault, pick::fault)
    }

    /// Makes the `nth` server invocation of kind `point` from now fail
    /// (`nth` = 0 disarms).
    pub fn inject_failure(&self, point: FailurePoint, nth: u32) -> Result<(), ClientError> {
        self.ask(Request::InjectFailure { point, nth }, pick::done)
    }

    /// Unregisters space `space` and reclaims what its client owned.
    pub fn unregister(&self, space: u16) -> Result<(), ClientError> {
        self.ask(Request::Unregister { space }, pick::done)
    }

    /// Unmaps lazily freed vmalloc areas now.
    pub fn purge(&self) -> Result<(), ClientError> {
        self.ask(Request::Purge, pick::done)
    }

    /// Server statistics.
    pub fn stats(&self) -> Result<Stats, ClientError> {
        self.ask(Request::Stats, pick::stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{every_reply, every_request};

    /// Whether `pick` takes something from `reply`.
    fn takes<T>(pick: Pick<T>) -> impl Fn(Reply) -> bool {
        move |reply| pick(reply).is_some()
    }

    #[test]
    fn each_typed_call_takes_its_kind_of_reply_and_no_other() {
        type Kind = fn(&Reply) -> bool;
        let picks: [(&dyn Fn(Reply) -> bool, Kind); 9] = [
            (&takes(pick::hello), |r| matches!(r, Reply::Hello { .. })),
            (&takes(pick::done), |r| matches!(r, Reply::Done)),
            (&takes(pick::address), |r| matches!(r, Reply::Address(_))),
            (&takes(pick::offset), |r| matches!(r, Reply::Offset(_))),
            (&takes(pick::translation), |r| matches!(r, Reply::Translation(_))),
            (&takes(pick::stats), |r| matches!(r, Reply::Stats(_))),
            (&takes(pick::space), |r| matches!(r, Reply::Space(_))),
            (&takes(pick::fault), |r| matches!(r, Reply::Fault(_))),
            (&takes(pick::realloc), |r| matches!(r, Reply::Realloc(_))),
        ];
        for (takes, kind) in picks {
            assert_eq!(every_reply().filter(kind).count(), 1);
            for reply in every_reply() {
                assert_eq!(takes(reply), kind(&reply), "{reply:?}");
            }
        }
    }

    #[test]
    fn a_reply_of_the_wrong_kind_is_a_wrong_reply_naming_both_kinds_not_the_servers_malformed() {
        for request in every_request() {
            for reply in every_reply().filter(|r| !matches!(r, Reply::Address(_))) {
                let got = expect(&request, reply, pick::address);
                let expected = ClientError::WrongReply { request: wire_code(&request), reply: wire_code(&reply) };
                assert_eq!(got, Err(expected), "{request:?} answered by {reply:?}");
            }
        }
        assert_eq!(expect(&Request::Stats, Reply::Address(5), pick::address), Ok(5));
    }
}
