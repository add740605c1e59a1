//! The system image: what a root task reads at run time to boot a system
//! (the memory server's settings, the programs with their priorities,
//! CPUs, memory, client quotas and endpoints, and every program's ELF
//! file), packed by the host tool into one blob that follows the root
//! task's own image in memory.
//!
//! The blob is a [`header`] (magic, total length, description length),
//! the description encoded with postcard, then the ELF files, each at a
//! page-aligned offset of the blob and referenced from the description by
//! offset and length. [`decode`] borrows names and ELF bytes from the blob
//! and never panics, whatever the bytes; [`locate`] finds the blob after
//! the root task's image. The crate has no unsafe code: a root task builds
//! the slices from the addresses it knows.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod decode;
#[cfg(feature = "encode")]
mod encode;
pub mod header;
mod image;

pub use decode::{decode, DecodeError};
#[cfg(feature = "encode")]
pub use encode::{encode, EncodeError};
pub use header::{blob_start, locate, PAGE_SIZE};
pub use image::{ElfRef, MemServer, Part, Program, Quota, RootKind, System, SystemImage};
