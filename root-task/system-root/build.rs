//! Links the seL4 programs as `sel4_layer::build` says: static executables
//! with no C runtime, which the kernel (for the root task) or the root task
//! (for the others) loads at their link addresses.

fn main() {
    sel4_layer::build::DIRECTIVES.iter().for_each(|d| println!("{d}"));
}
