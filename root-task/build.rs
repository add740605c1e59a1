//! Links the seL4 programs as static executables with no C runtime: the
//! kernel (for the root task) or the root task (for the others) loads them
//! at their link addresses, and `client_lib::sel4_program!` provides the
//! entry point and the memory functions.

fn main() {
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
