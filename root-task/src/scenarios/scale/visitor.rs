//! The visitor as the `scale` scenario drives it: loaded once, its one
//! thread moved through mirrors of its VSpace, reading and writing memory
//! in whichever it runs in (`root_task::visitor_protocol`).

use core::fmt;
use root_task::visitor_protocol::{label, slot, ANSWER_BADGE, CNODE_BITS, FAULT_BADGE};
use sel4_launch::allocator::Allocator;
use sel4_launch::process::{Process, ProcessSpec};
use sel4_launch::vspace::VSpace;
use sel4_layer::abi::{CPtr, ObjectType};
use sel4_layer::{syscall, CapRights, MessageInfo, Sel4Error};

/// The visitor's ELF image, built by `images` before this program.
static VISITOR: &[u8] = include_bytes!(env!("ROOT_TASK_VISITOR_ELF"));

/// The visitor's priority: below the memory server's and the root task's.
const PRIORITY: u8 = 150;

/// Why the visitor did not answer.
pub enum Trouble {
    /// It faulted (the kernel's fault type and first message registers);
    /// it was restarted where it was.
    Faulted {
        /// The fault type (the message label).
        kind: u64,
        /// The first message registers of the fault message.
        mrs: [u64; 4],
    },
    /// Something else arrived on its endpoint.
    Unexpected {
        /// The badge it came with.
        badge: u64,
        /// Its label.
        label: u64,
    },
}

impl fmt::Debug for Trouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trouble::Faulted { kind, mrs } => write!(f, "the visitor faulted (type {kind}, registers {mrs:x?})"),
            Trouble::Unexpected { badge, label } => {
                write!(f, "unexpected message to the root task (badge {badge:#x}, label {label})")
            }
        }
    }
}

/// The visitor, loaded and ready.
pub struct Visitor {
    process: Process,
    /// Where it receives commands.
    command: CPtr,
    /// Where it answers and faults.
    endpoint: CPtr,
}

impl Visitor {
    /// Loads the visitor into a VSpace of its own and starts it.
    pub fn load(alloc: &mut Allocator, root: &mut VSpace) -> Result<Visitor, Trouble> {
        let spec = ProcessSpec {
            name: "visitor",
            image: VISITOR,
            priority: PRIORITY,
            cnode_bits: CNODE_BITS,
            fault_slot: slot::FAULT,
        };
        let process = Process::load(alloc, root, &spec);
        let (command, endpoint) = (alloc.retype(ObjectType::Endpoint, 0), alloc.retype(ObjectType::Endpoint, 0));
        process.give(slot::COMMAND, command, CapRights::ALL, 0);
        process.give(slot::ANSWER, endpoint, CapRights::SEND, ANSWER_BADGE);
        process.give(slot::FAULT, endpoint, CapRights::SEND_GRANT, FAULT_BADGE);
        let visitor = Visitor { process, command, endpoint };
        visitor.start()?;
        Ok(visitor)
    }

    /// (Re)starts the visitor where it is and waits until it is ready.
    fn start(&self) -> Result<(), Trouble> {
        self.process.start(&self.process.main, [0; 3]);
        self.answer(label::READY).map(drop)
    }

    /// A new VSpace that mirrors the visitor's: the visitor can enter it.
    pub fn mirror(&self, alloc: &mut Allocator) -> VSpace {
        self.process.mirror(alloc, VISITOR)
    }

    /// Moves the visitor into the VSpace of PML4 `vspace_root` (a mirror
    /// of its own, or its own).
    pub fn enter(&self, vspace_root: CPtr) -> Result<(), Sel4Error> {
        self.process.move_main_thread(vspace_root)
    }

    /// The two words at `addr`, as the visitor reads them where it is.
    pub fn read(&self, addr: u64) -> Result<[u64; 2], Trouble> {
        syscall::send(self.command, MessageInfo::new(label::READ, 0, 0, 1), [addr, 0, 0, 0]);
        self.answer(label::READ).map(|mrs| [mrs[0], mrs[1]])
    }

    /// Has the visitor write `words` at `addr` where it is.
    pub fn write(&self, addr: u64, words: [u64; 2]) -> Result<(), Trouble> {
        syscall::send(self.command, MessageInfo::new(label::WRITE, 0, 0, 3), [addr, words[0], words[1], 0]);
        self.answer(label::WRITE).map(drop)
    }

    /// Stops the visitor for good.
    pub fn stop(&self) -> Result<(), Sel4Error> {
        self.process.main.tcb.suspend()
    }

    /// Waits for the visitor's answer of `expected`; after a fault it is
    /// restarted.
    fn answer(&self, expected: u64) -> Result<[u64; 4], Trouble> {
        let msg = syscall::recv(self.endpoint);
        match (msg.badge, msg.info.label()) {
            (ANSWER_BADGE, label) if label == expected => Ok(msg.mrs),
            (FAULT_BADGE, kind) => {
                self.start()?;
                Err(Trouble::Faulted { kind, mrs: msg.mrs })
            }
            (badge, label) => Err(Trouble::Unexpected { badge, label }),
        }
    }
}
