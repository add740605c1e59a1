//! Links the seL4 server program as a static executable with no C runtime
//! (`client_lib::sel4_program!` provides the entry point and the memory
//! functions); the root task loads it at its link addresses.

fn main() {
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
