//! Links the seL4 server program as `sel4_layer::build` says: a static
//! executable with no C runtime, which the root task loads at its link
//! addresses.

fn main() {
    sel4_layer::build::DIRECTIVES.iter().for_each(|d| println!("{d}"));
}
