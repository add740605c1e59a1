//! The benchmark root task: starts the memory server, registers bare
//! address spaces, and measures what the server's operations cost in seL4
//! invocations (counted by the server) and guest cycles (the time stamp
//! counter, which under QEMU's `-icount` counts executed instructions).
//! Prints one `bench <table> key=value ...` line per measurement; `images
//! bench` turns them into tables, files and a plot.
#![no_std]
#![no_main]

mod measure;
mod tables;
mod throughput;

use measure::Bench;
use sel4_launch::allocator::Allocator;
use sel4_launch::memserver_process::{MemServerProcess, UntypedGrant};
use sel4_launch::vspace::VSpace;
use sel4_layer::abi::{init_cap, ObjectType};
use sel4_layer::bootinfo::BootInfo;
use sel4_layer::println;
use sel4_layer::runtime::{self, StartRegs};

/// The memory server's ELF image, built by `images` before this program.
static MEMSERVER: &[u8] = include_bytes!(env!("ROOT_TASK_MEMSERVER_ELF"));

/// Registered spaces for the replication table, chosen by `images bench`
/// for each boot (a fresh boot per N keeps "cold" frames truly fresh); 0
/// for the boot of the throughput table (on 4 CPUs).
const SPACES: &str = env!("BENCH_SPACES");

/// The server's untyped memory for benchmarks: 2 GiB in two 1 GiB pieces,
/// for a 1 GiB area on a 1 GiB page (a piece none of whose objects is in
/// use) and on 2 MiB pages, and for the late registration over 65,536
/// mapped pages (256 MiB of frames) and what the server keeps beside them.
const GRANT: UntypedGrant = UntypedGrant { count: 2, bits: 30 };

fn bootinfo(regs: StartRegs) -> &'static BootInfo {
    // SAFETY: seL4 starts the root task with rdi pointing at the bootinfo
    // frame, mapped read-only for the task's whole life.
    unsafe { &*(regs.rdi as *const BootInfo) }
}

sel4_layer::sel4_program!(main, ipc_buffer = |regs| bootinfo(regs).ipc_buffer);

fn main(regs: StartRegs) -> ! {
    runtime::set_exit_capability(init_cap::IO_PORT);
    let spaces: usize = SPACES.parse().unwrap_or_else(|_| panic!("BENCH_SPACES={SPACES} is not a number"));
    let mut alloc = Allocator::new(bootinfo(regs));
    let mut root_vspace = VSpace::root_task();
    let root_endpoint = alloc.retype(ObjectType::Endpoint, 0);
    let server = MemServerProcess::launch(&mut alloc, &mut root_vspace, MEMSERVER, root_endpoint, GRANT);
    if spaces == 0 {
        throughput::run(&mut alloc, &mut root_vspace, server.endpoint, server.admin, root_endpoint);
        println!("bench done");
        runtime::exit(true)
    }
    let mut bench = Bench::new(&mut alloc, &server);
    tables::replication(&mut bench, spaces);
    if spaces == 1 {
        tables::request_cost(&mut bench);
        tables::work_profile(&mut bench);
        tables::large_pages(&mut bench);
        tables::huge_pages(&mut bench);
        tables::late_registration(&mut bench);
        tables::vmemmap(&mut bench);
        tables::batch(&mut bench);
    }
    println!("bench done");
    runtime::exit(true)
}
