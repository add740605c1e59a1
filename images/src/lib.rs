//! Host tool library: builds the seL4 kernel from the `sel4-sys` crate's
//! source, builds the seL4 programs, boots them in QEMU and turns the
//! guest's serial log and exit port into a status.

pub mod abi_probe;
pub mod bench;
pub mod bench_report;
pub mod described;
pub mod description;
pub mod disassembly;
pub mod fpu_free;
pub mod host_deps;
pub mod iso;
pub mod kernel;
pub mod panic_sites;
pub mod profile;
pub mod programs;
pub mod progress;
pub mod qemu;
pub mod static_elf;
pub mod system;
pub mod system_image;
pub mod workspace;
