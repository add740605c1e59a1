//! The visitor: a small program whose one thread the root task moves
//! through many address spaces (mirrors of the visitor's own VSpace,
//! registered with the memory server), reading and writing memory in
//! whichever it runs in (`root_task::visitor_protocol`). It is small, and
//! keeps its state in registers and its stack, so a mirror of it takes
//! few frames.
#![no_std]
#![no_main]

use root_task::visitor_protocol::{label, slot};
use sel4_layer::runtime::{self, StartRegs};
use sel4_layer::{syscall, MessageInfo};

/// Bytes of the static stack.
const STACK_BYTES: usize = 4 << 10;

sel4_layer::sel4_program!(main, ipc_buffer = |regs| regs.rdi, stack = STACK_BYTES);

fn main(_: StartRegs) -> ! {
    let mut answer = (MessageInfo::new(label::READY, 0, 0, 0), [0; 4]);
    loop {
        syscall::send(slot::ANSWER, answer.0, answer.1);
        let command = syscall::recv(slot::COMMAND);
        let [addr, first, second, _] = command.mrs;
        let words = addr as *mut u64;
        answer = match command.info.label() {
            label::READ => {
                // SAFETY: the root task names two words of memory mapped in
                // the space this thread runs in; any other address faults to
                // the root task, which stops this thread.
                let read = unsafe { [words.read_volatile(), words.add(1).read_volatile(), 0, 0] };
                (MessageInfo::new(label::READ, 0, 0, 2), read)
            }
            label::WRITE => {
                // SAFETY: as for READ.
                unsafe {
                    words.write_volatile(first);
                    words.add(1).write_volatile(second);
                }
                (MessageInfo::new(label::WRITE, 0, 0, 0), [0; 4])
            }
            _ => runtime::exit(false),
        };
    }
}
