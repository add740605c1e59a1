//! The boot self-test: the hello child, loaded into its own VSpace, calls
//! the root task with a challenge and checks the computed answer.

use memserver_protocol::fault;
use root_task::hello_protocol;
use sel4_launch::allocator::Allocator;
use sel4_launch::process::{Process, ProcessSpec};
use sel4_launch::vspace::VSpace;
use sel4_layer::abi::ObjectType;
use sel4_layer::println;
use sel4_layer::{syscall, CapRights, MessageInfo};

/// The hello child's ELF image, built by `images` before this program.
static HELLO_CHILD: &[u8] = include_bytes!(env!("ROOT_TASK_HELLO_CHILD_ELF"));

/// Badge of the hello child's calls.
const CHILD_BADGE: u64 = 0x100;
/// Badge of the hello child's faults.
const CHILD_FAULT_BADGE: u64 = 0x101;
/// The hello child's thread priority (below the root task's 255).
const CHILD_PRIORITY: u8 = 200;
/// The challenge the child sends back.
const CHALLENGE: u64 = 0xc0ffee;

/// Runs the exchange; panics (ending the system with failure) if the
/// child faults or rejects the answer.
pub fn run(alloc: &mut Allocator, root: &mut VSpace) {
    let endpoint = alloc.retype(ObjectType::Endpoint, 0);
    let spec = ProcessSpec {
        name: "hello-child",
        image: HELLO_CHILD,
        priority: CHILD_PRIORITY,
        cnode_bits: 12,
        fault_slot: hello_protocol::slot::FAULT,
    };
    let child = Process::load(alloc, root, &spec);
    child.give(hello_protocol::slot::ENDPOINT, endpoint, CapRights::ALL, CHILD_BADGE);
    child.give(hello_protocol::slot::FAULT, endpoint, CapRights::ALL, CHILD_FAULT_BADGE);
    child.start(&child.main, [CHALLENGE, 0, 0]);
    loop {
        let msg = syscall::recv(endpoint);
        match (msg.badge, msg.info.label()) {
            (CHILD_FAULT_BADGE, kind) => {
                let what = if kind == fault::VM_FAULT { "VM fault" } else { "fault" };
                panic!("hello-child: {what} (type {kind}), message registers {:x?}", msg.mrs)
            }
            (CHILD_BADGE, hello_protocol::CHALLENGE) => {
                let answer = hello_protocol::answer(msg.mrs[0]);
                syscall::reply(MessageInfo::new(0, 0, 0, 1), [answer, 0, 0, 0]);
            }
            (CHILD_BADGE, hello_protocol::VERDICT) if msg.mrs[0] == 1 => {
                syscall::reply(MessageInfo::new(0, 0, 0, 0), [0; 4]);
                // Its work is done; it cannot end itself.
                child.main.tcb.suspend().unwrap_or_else(|e| panic!("suspending hello-child: {e:?}"));
                println!("root-task: hello-child exchange ok");
                return;
            }
            (CHILD_BADGE, hello_protocol::VERDICT) => panic!("hello-child rejected the root task's answer"),
            (badge, label) => panic!("unexpected message: badge {badge:#x}, label {label}"),
        }
    }
}
