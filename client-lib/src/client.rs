//! The typed client API: `MemClient` for programs whose address space is
//! registered with the server, `AdminClient` for the root task.

use crate::transport;
use memserver_protocol::{
    ErrorCode, FailurePoint, FaultReport, Quota, RegionInfo, Registration, Reply, Request, Stats, Translation, Words,
    PROTOCOL_VERSION,
};
use sel4_layer::abi::CPtr;

/// Sends `request` and returns the reply, or the server's error.
fn call(endpoint: CPtr, request: &Request, cap: Option<CPtr>) -> Result<Reply, ErrorCode> {
    let words = Words::encode(request).ok_or(ErrorCode::Malformed)?;
    transport::call_words(endpoint, &words, cap)
}

/// Expects `Reply::Done`.
fn done(reply: Reply) -> Result<(), ErrorCode> {
    match reply {
        Reply::Done => Ok(()),
        _ => Err(ErrorCode::Malformed),
    }
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
    pub fn connect(endpoint: CPtr) -> Result<MemClient, ErrorCode> {
        match call(endpoint, &Request::Hello { version: PROTOCOL_VERSION }, None)? {
            Reply::Hello { version: PROTOCOL_VERSION, region } => Ok(MemClient { endpoint, region }),
            Reply::Hello { .. } => Err(ErrorCode::VersionMismatch),
            _ => Err(ErrorCode::Malformed),
        }
    }

    /// The region layout the server announced.
    pub fn region(&self) -> &RegionInfo {
        &self.region
    }

    /// Sends any request; for requests without a typed method.
    pub fn request(&self, request: &Request) -> Result<Reply, ErrorCode> {
        call(self.endpoint, request, None)
    }

    /// Allocates `size` bytes of zeroed memory mapped in every registered
    /// space; `large_pages` uses 2 MiB pages where possible.
    pub fn vmalloc(&self, size: u64, large_pages: bool) -> Result<u64, ErrorCode> {
        match self.request(&Request::Vmalloc { size, large_pages })? {
            Reply::Address(addr) => Ok(addr),
            _ => Err(ErrorCode::Malformed),
        }
    }

    /// Frees this client's vmalloc area at `addr`.
    pub fn vfree(&self, addr: u64) -> Result<(), ErrorCode> {
        done(self.request(&Request::Vfree { addr })?)
    }

    /// Allocates `size` bytes aligned to `align` in every CPU's unit;
    /// returns the offset, valid in each unit.
    pub fn percpu_alloc(&self, size: u32, align: u32) -> Result<u32, ErrorCode> {
        match self.request(&Request::PercpuAlloc { size, align })? {
            Reply::Offset(offset) => Ok(offset),
            _ => Err(ErrorCode::Malformed),
        }
    }

    /// Frees the percpu allocation at `offset`.
    pub fn percpu_free(&self, offset: u32) -> Result<(), ErrorCode> {
        done(self.request(&Request::PercpuFree { offset })?)
    }

    /// The address of percpu `offset` in CPU `cpu`'s unit, `None` if
    /// `cpu` has no unit (see [`memserver_protocol::PercpuLayout::address`]).
    pub fn percpu_address(&self, offset: u32, cpu: u16) -> Option<u64> {
        self.region.percpu_address(offset, cpu)
    }

    /// How the canonical table maps `addr`.
    pub fn translate(&self, addr: u64) -> Result<Option<Translation>, ErrorCode> {
        match self.request(&Request::Translate { addr })? {
            Reply::Translation(t) => Ok(t),
            _ => Err(ErrorCode::Malformed),
        }
    }

    /// Backs the descriptors of `nr_pages` pfns from `start_pfn`, with the
    /// compound-page optimisation for `compound_order` > 0.
    pub fn vmemmap_populate(&self, start_pfn: u64, nr_pages: u64, compound_order: u8) -> Result<(), ErrorCode> {
        done(self.request(&Request::VmemmapPopulate { start_pfn, nr_pages, compound_order })?)
    }

    /// Frees the descriptor frames of a pfn range.
    pub fn vmemmap_depopulate(&self, start_pfn: u64, nr_pages: u64) -> Result<(), ErrorCode> {
        done(self.request(&Request::VmemmapDepopulate { start_pfn, nr_pages })?)
    }

    /// Server statistics.
    pub fn stats(&self) -> Result<Stats, ErrorCode> {
        match self.request(&Request::Stats)? {
            Reply::Stats(stats) => Ok(stats),
            _ => Err(ErrorCode::Malformed),
        }
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

    /// Registers the VSpace `vspace` for client `client` (its endpoint
    /// badge) with a quota of `quota_bytes`; returns the space id and its
    /// fault badge. The space holds the whole region when this returns.
    pub fn register(&self, client: u64, quota_bytes: u64, vspace: CPtr) -> Result<Registration, ErrorCode> {
        self.register_with_quota(client, Quota::bytes(quota_bytes), vspace)
    }

    /// Registers the VSpace `vspace` for client `client` with limits on
    /// bytes, frames, structures and areas; returns the space id and its
    /// fault badge.
    pub fn register_with_quota(&self, client: u64, quota: Quota, vspace: CPtr) -> Result<Registration, ErrorCode> {
        match call(self.endpoint, &Request::Register { client, quota }, Some(vspace))? {
            Reply::Space(registration) => Ok(registration),
            _ => Err(ErrorCode::Malformed),
        }
    }

    /// Takes the oldest pending fault report, if any.
    pub fn take_fault(&self) -> Result<Option<FaultReport>, ErrorCode> {
        match call(self.endpoint, &Request::TakeFault, None)? {
            Reply::Fault(report) => Ok(report),
            _ => Err(ErrorCode::Malformed),
        }
    }

    /// Makes the `nth` server invocation of kind `point` from now fail
    /// (`nth` = 0 disarms).
    pub fn inject_failure(&self, point: FailurePoint, nth: u32) -> Result<(), ErrorCode> {
        done(call(self.endpoint, &Request::InjectFailure { point, nth }, None)?)
    }

    /// Unregisters space `space` and reclaims what its client owned.
    pub fn unregister(&self, space: u8) -> Result<(), ErrorCode> {
        done(call(self.endpoint, &Request::Unregister { space }, None)?)
    }

    /// Unmaps lazily freed vmalloc areas now.
    pub fn purge(&self) -> Result<(), ErrorCode> {
        done(call(self.endpoint, &Request::Purge, None)?)
    }

    /// Server statistics.
    pub fn stats(&self) -> Result<Stats, ErrorCode> {
        match call(self.endpoint, &Request::Stats, None)? {
            Reply::Stats(stats) => Ok(stats),
            _ => Err(ErrorCode::Malformed),
        }
    }
}
