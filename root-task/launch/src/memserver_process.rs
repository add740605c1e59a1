//! Starting the memory server: its process, its endpoint, a pool of
//! untyped memory, and the capabilities the bootstrap contract names,
//! among them the notification by which the server tells the starting
//! thread that fault reports wait.

use crate::allocator::Allocator;
use crate::process::{Process, ProcessSpec};
use crate::vspace::VSpace;
use client_lib::AdminClient;
use memserver_protocol::bootstrap::{badge, cspace, server_slot, ServerStart, READY_LABEL, SERVER_CNODE_BITS};
use sel4_layer::abi::{init_cap, CPtr, ObjectType};
use sel4_layer::{syscall, CNode, CapRights, Tcb};

/// Where the server's thread runs.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    /// Its priority: above its clients', at most the root task's.
    pub priority: u8,
    /// Its CPU.
    pub cpu: u64,
}

impl Placement {
    /// The demo system's: priority 200 (above its clients, below the root
    /// task), CPU 0.
    pub const DEMO: Placement = Placement { priority: 200, cpu: 0 };
}

/// Untyped memory for the server: `count` pieces of 2^`bits` bytes.
#[derive(Clone, Copy, Debug)]
pub struct UntypedGrant {
    /// How many pieces.
    pub count: u64,
    /// The size of each, in bits.
    pub bits: u64,
}

impl UntypedGrant {
    /// What the demo system gives the server: 64 MiB.
    pub const DEMO: UntypedGrant = UntypedGrant { count: 4, bits: 24 };
}

/// The running memory server, as the root task holds it.
pub struct MemServerProcess {
    /// The server's endpoint (unbadged; minted for each client).
    pub endpoint: CPtr,
    /// The administrator's connection.
    pub admin: AdminClient,
    admin_endpoint: CPtr,
}

impl MemServerProcess {
    /// Loads the server from `image`, hands it its capabilities and the
    /// untyped memory of `grant`, and starts it; returns once it serves (a
    /// start that failed ends the root task with the server's fault).
    /// `root_endpoint` receives its own faults. The notification it signals while fault reports
    /// wait is bound to the calling thread (the root task's): a receive of
    /// that thread on any endpoint then returns for it too, with badge
    /// `badge::REPORT_NOTICE`.
    pub fn launch(
        alloc: &mut Allocator,
        root: &mut VSpace,
        image: &[u8],
        root_endpoint: CPtr,
        grant: UntypedGrant,
    ) -> Self {
        Self::launch_placed(alloc, root, image, root_endpoint, grant, Placement::DEMO)
    }

    /// [`MemServerProcess::launch`] with the server's thread at `placement`.
    pub fn launch_placed(
        alloc: &mut Allocator,
        root: &mut VSpace,
        image: &[u8],
        root_endpoint: CPtr,
        grant: UntypedGrant,
        placement: Placement,
    ) -> Self {
        let spec = ProcessSpec {
            name: "memserver",
            image,
            priority: placement.priority,
            cnode_bits: SERVER_CNODE_BITS,
            fault_slot: server_slot::FAULT,
        };
        let process = Process::load(alloc, root, &spec);
        root_the_cspace(&process);
        let endpoint = alloc.retype(ObjectType::Endpoint, 0);
        process.give(server_slot::ENDPOINT, endpoint, CapRights::ALL, 0);
        process.give(server_slot::CNODE, process.cnode.cap, CapRights::ALL, 0);
        process.give(server_slot::VSPACE, process.vspace.pml4, CapRights::ALL, 0);
        let notice = alloc.retype(ObjectType::Notification, 0);
        process.give(server_slot::REPORT, notice, CapRights::SEND, badge::REPORT_NOTICE);
        Tcb(init_cap::TCB).bind_notification(notice).unwrap_or_else(|e| panic!("binding the report notice: {e:?}"));
        process.give(server_slot::FAULT, root_endpoint, CapRights::ALL, badge::SERVER_FAULT);
        for i in 0..grant.count {
            let untyped = alloc.retype(ObjectType::Untyped, grant.bits);
            process.give(server_slot::UNTYPED_START + i, untyped, CapRights::ALL, 0);
        }
        let first_free = server_slot::UNTYPED_START + grant.count;
        let start = ServerStart {
            untypeds: grant.count as u32,
            untyped_bits: grant.bits as u32,
            first_free_slot: first_free,
            cpus: alloc.cpus() as u32,
        };
        let cpu = placement.cpu;
        process.main.tcb.set_affinity(cpu).unwrap_or_else(|e| panic!("memserver: affinity {cpu}: {e:?}"));
        process.start(&process.main, start.to_args());
        await_ready(root_endpoint);
        let admin = mint_badged(alloc, endpoint, badge::ADMIN);
        MemServerProcess { endpoint, admin: AdminClient::new(admin), admin_endpoint: admin }
    }

    /// A new endpoint capability of the root task's own to the server, with
    /// `badge` (for calling the server as a client).
    pub fn endpoint_with_badge(&self, alloc: &mut Allocator, badge: u64) -> CPtr {
        mint_badged(alloc, self.endpoint, badge)
    }

    /// The administrator's badged endpoint, for requests any client may
    /// make (such as learning the region layout).
    pub fn admin_endpoint(&self) -> CPtr {
        self.admin_endpoint
    }
}

/// Makes the process's CNode the root of the server's CSpace as
/// [`cspace`] has it: guarded so that the CNodes the server puts in its
/// slots are a second level.
fn root_the_cspace(process: &Process) {
    let guard = CNode::guard_data(0, cspace::ROOT_GUARD_SIZE);
    let fault = cspace::cptr(server_slot::FAULT);
    let tcb = process.main.tcb;
    tcb.set_space(fault, process.cnode.cap, guard, process.vspace.pml4)
        .unwrap_or_else(|e| panic!("memserver: its CSpace root: {e:?}"));
}

/// Waits on `root_endpoint` for the server's start to end: its
/// [`READY_LABEL`] message, or the fault of a start that failed, which
/// ends the root task with the fault (the server printed why before it).
/// Nothing else can arrive there before the server serves but the report
/// notice bound to this thread, which no report can have raised yet.
fn await_ready(root_endpoint: CPtr) {
    loop {
        let msg = syscall::recv(root_endpoint);
        if msg.badge != badge::SERVER_FAULT {
            continue;
        }
        let label = msg.info.label();
        if label != READY_LABEL {
            panic!(
                "memserver: failed to start (its fault: label {label:#x}, words {:x?}; its message, if any, is above)",
                msg.mrs
            );
        }
        return;
    }
}

/// Mints `endpoint` with `badge` into a new slot of the root task's CNode.
fn mint_badged(alloc: &mut Allocator, endpoint: CPtr, badge: u64) -> CPtr {
    let slot = alloc.slot();
    CNode::root_task(init_cap::CNODE)
        .mint(slot, CNode::root_task(init_cap::CNODE), endpoint, CapRights::ALL, badge)
        .unwrap_or_else(|e| panic!("minting an endpoint with badge {badge:#x} failed: {e:?}"));
    slot
}
