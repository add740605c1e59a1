//! Links the owner and the viewers as seL4 programs: static executables
//! with no C runtime, loaded at their link addresses (`sel4_layer::build`).

fn main() {
    sel4_layer::build::DIRECTIVES.iter().for_each(|d| println!("{d}"));
}
