//! The launcher: a root task that boots the system its image carries.
//! It finds the system image after its own image, starts the memory
//! server with the description's memory, priority and CPU, loads every
//! program with its stack, heap, endpoints and (for a client) a registered
//! space, starts them, and waits for each program's verdict or death
//! (reclaiming it), as the boot contract (`client_lib::boot_contract`)
//! says. It then prints the summary and ends QEMU with success only if
//! every program succeeded.
#![no_std]
#![no_main]

extern crate alloc;

mod heap;
mod image;
mod launch;
mod supervise;

use sel4_launch::allocator::Allocator;
use sel4_launch::vspace::VSpace;
use sel4_layer::abi::{init_cap, ObjectType};
use sel4_layer::bootinfo::BootInfo;
use sel4_layer::runtime::{self, StartRegs};
use sel4_layer::{println, Tcb};

fn bootinfo(regs: StartRegs) -> &'static BootInfo {
    // SAFETY: seL4 starts the root task with rdi pointing at the bootinfo
    // frame, mapped read-only for the task's whole life.
    unsafe { &*(regs.rdi as *const BootInfo) }
}

sel4_layer::sel4_program!(main, ipc_buffer = |regs| bootinfo(regs).ipc_buffer);

fn main(regs: StartRegs) -> ! {
    runtime::set_exit_capability(init_cap::IO_PORT);
    heap::init();
    let bootinfo = bootinfo(regs);
    let system = image::system();
    println!(
        "launcher: {} program(s), {} endpoint(s), memory server: {}, {} CPU(s) booted of {}",
        system.programs.len(),
        system.endpoints.len(),
        system.memserver.as_ref().map_or("none", |_| "yes"),
        { bootinfo.num_nodes },
        system.cpus,
    );
    Tcb(init_cap::TCB)
        .set_priority(system.root_priority)
        .unwrap_or_else(|e| panic!("launcher: priority {}: {e:?}", system.root_priority));
    let mut alloc = Allocator::new(bootinfo);
    let mut root_vspace = VSpace::root_task();
    let endpoint = alloc.retype(ObjectType::Endpoint, 0);
    let mut running = launch::boot(&mut alloc, &mut root_vspace, &system, endpoint);
    let all_ok = supervise::until_all_ended(&mut running);
    runtime::exit(all_ok)
}
