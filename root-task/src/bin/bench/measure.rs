//! Measuring: the server's invocation counter and statistics around an
//! operation, bare address spaces to register, the root task's own
//! client connection, and the cost of raw invocations in the same boot.

use client_lib::{AdminClient, ClientError, MemClient};
use memserver_protocol::bootstrap::badge;
use memserver_protocol::PING_LABEL;
use memserver_protocol::{Quota, Reply, Request, Stats, VmallocOptions};
use sel4_launch::allocator::Allocator;
use sel4_launch::memserver_process::MemServerProcess;
use sel4_launch::vspace::VSpace;
use sel4_layer::abi::{init_cap, CPtr, ObjectType};
use sel4_layer::time_stamp::cycles;
use sel4_layer::{syscall, CNode, CapRights, MessageInfo, Page, Sel4Error};

/// The badge the benchmark calls the server with as a client.
const CLIENT: u64 = badge::CLIENT_BASE;
/// The benchmark's quota: more than any table needs, of every kind.
const QUOTA: Quota = Quota::bytes_only(1 << 34);

/// The address the no-op request translates: outside the region.
const NOOP_ADDRESS: u64 = 0x1000;
/// The no-op request.
pub const NOOP: Request = Request::Translate { addr: NOOP_ADDRESS };

/// Guest cycles (instructions under `-icount`) of one of `ops` runs of
/// `f`, which is given the run's number.
pub fn per_op(ops: u64, mut f: impl FnMut(u64)) -> u64 {
    let start = cycles();
    for i in 0..ops {
        f(i);
    }
    (cycles() - start) / ops
}

/// Raw invocations [`Bench::raw_costs`] times in a loop.
const RAW_OPS: u64 = 256;
/// Where the raw loop maps its frames in its own VSpace.
const RAW_BASE: u64 = 0x4000_0000;

/// Guest instructions of raw invocations and of a raw IPC round trip.
#[derive(Clone, Copy, Debug)]
pub struct RawCosts {
    pub map: u64,
    pub unmap: u64,
    pub copy: u64,
    pub ipc: u64,
}

/// What the benchmark works with.
pub struct Bench<'a> {
    alloc: &'a mut Allocator,
    pub admin: AdminClient,
    pub client: MemClient,
    /// The client endpoint, for raw calls.
    pub endpoint: CPtr,
    /// Bare spaces registered and not unregistered.
    pub spaces: usize,
}

impl<'a> Bench<'a> {
    pub fn new(alloc: &'a mut Allocator, server: &MemServerProcess) -> Bench<'a> {
        let endpoint = server.endpoint_with_badge(alloc, CLIENT);
        let client = MemClient::connect(endpoint).unwrap_or_else(|e| panic!("connect: {e:?}"));
        Bench { alloc, admin: server.admin, client, endpoint, spaces: 0 }
    }

    /// Creates and registers one more bare address space.
    pub fn add_space(&mut self) -> u16 {
        let vspace = VSpace::new(self.alloc);
        let space = self
            .admin
            .register_with_quota(CLIENT, QUOTA, vspace.pml4)
            .unwrap_or_else(|e| panic!("register: {e:?}"))
            .space;
        self.spaces += 1;
        space
    }

    /// Unregisters bare space `space`.
    pub fn remove_space(&mut self, space: u16) {
        self.admin.unregister(space).unwrap_or_else(|e| panic!("unregister: {e:?}"));
        self.spaces -= 1;
    }

    /// Bytes of untyped memory the root task has retyped so far (its
    /// VSpaces' PML4s and ASID pools among them).
    pub fn root_untyped(&self) -> u64 {
        self.alloc.untyped_used()
    }

    /// The server's statistics.
    pub fn stats(&self) -> Stats {
        self.admin.stats().unwrap_or_else(|e| panic!("stats: {e:?}"))
    }

    /// Invocations the server made for `f`, and what `f` returned.
    pub fn invocations<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> (u64, T) {
        let before = self.stats().invocations.total();
        let out = f(self);
        (self.stats().invocations.total() - before, out)
    }

    /// A vmalloc that must succeed.
    pub fn vmalloc(&self, pages: u64, large: bool) -> u64 {
        self.client.vmalloc(pages << 12, large).unwrap_or_else(|e| panic!("vmalloc of {pages} pages: {e:?}"))
    }

    /// A vmalloc of `bytes` with `options` that must succeed.
    pub fn vmalloc_with(&self, bytes: u64, options: VmallocOptions) -> u64 {
        self.client.vmalloc_with(bytes, options).unwrap_or_else(|e| panic!("vmalloc of {bytes} bytes: {e:?}"))
    }

    /// A vfree and the purge that unmaps it.
    pub fn vfree(&self, addr: u64) {
        self.client.vfree(addr).unwrap_or_else(|e| panic!("vfree: {e:?}"));
        self.admin.purge().unwrap_or_else(|e| panic!("purge: {e:?}"));
    }

    /// A request that must succeed with `Reply::Done`.
    pub fn done(&self, request: Request) {
        match self.client.request(&request) {
            Ok(Reply::Done) => {}
            other => panic!("{request:?}: {other:?}"),
        }
    }

    /// Guest instructions of one Page Map, one Page Unmap and one CNode
    /// Copy, each issued raw by this task (averaged over a loop of
    /// [`RAW_OPS`] of them, into a bare VSpace of its own whose paging
    /// structures exist already, as a purge keeps the server's), and of one
    /// raw Call/ReplyRecv round trip to the server.
    pub fn raw_costs(&mut self) -> RawCosts {
        let frames = self.alloc.retype_run(ObjectType::SmallPage, 0, RAW_OPS);
        let copies = self.alloc.slot();
        for _ in 1..RAW_OPS {
            self.alloc.slot();
        }
        let mut vspace = VSpace::new(self.alloc);
        let at = |i: u64| RAW_BASE + i * 4096;
        vspace.map(self.alloc, frames, at(0), CapRights::READ_WRITE);
        let ok = |r: Result<(), Sel4Error>| r.unwrap_or_else(|e| panic!("raw invocation: {e:?}"));
        ok(Page(frames).unmap());
        let map = per_op(RAW_OPS, |i| ok(Page(frames + i).map(vspace.pml4, at(i), CapRights::READ_WRITE)));
        let unmap = per_op(RAW_OPS, |i| ok(Page(frames + i).unmap()));
        let root = CNode::root_task(init_cap::CNODE);
        let copy = per_op(RAW_OPS, |i| ok(root.copy(copies + i, root, frames + i, CapRights::READ_WRITE)));
        for i in 0..RAW_OPS {
            ok(root.delete(copies + i));
        }
        let ipc = per_op(RAW_OPS, |_| self.ping());
        RawCosts { map, unmap, copy, ipc }
    }

    /// A raw Call/ReplyRecv round trip to the server: a ping, which it
    /// answers at once.
    pub fn ping(&self) {
        syscall::call(self.endpoint, MessageInfo::new(PING_LABEL, 0, 0, 0), [0; 4]);
    }

    /// A translate of an address nothing maps (a request that does no
    /// kernel work): [`NOOP`].
    pub fn noop(&self) -> Result<(), ClientError> {
        self.client.translate(NOOP_ADDRESS).map(drop)
    }
}
