//! The link arguments of an seL4 program of this project, for its crate's
//! build script (a build-dependency on this crate): a static, non-PIE
//! executable with no C runtime, which the kernel (for the root task) or
//! the root task (for the others) loads at its link addresses;
//! [`sel4_program!`](crate::sel4_program) provides the entry point and the
//! memory functions.
//!
//! ```ignore
//! fn main() {
//!     sel4_layer::build::DIRECTIVES.iter().for_each(|d| println!("{d}"));
//! }
//! ```

/// The cargo directives a build script prints.
pub const DIRECTIVES: [&str; 4] = [
    "cargo:rustc-link-arg-bins=-nostartfiles",
    "cargo:rustc-link-arg-bins=-nostdlib",
    "cargo:rustc-link-arg-bins=-static",
    "cargo:rustc-link-arg-bins=-no-pie",
];
