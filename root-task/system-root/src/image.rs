//! Where the system image is: at the first page boundary after the
//! launcher's own image (`_end`), where `images` appends it as a
//! read-only segment that seL4 maps with the rest of the image.

use system_image::header::HEADER_LEN;
use system_image::SystemImage;

extern "C" {
    /// The end of the launcher's image, defined by the linker.
    static _end: u8;
}

/// The system this launcher boots; a missing or bad image is a panic
/// (there is nothing else to boot).
pub fn system() -> SystemImage<'static> {
    // Only the address of the linker's symbol is taken, never its value.
    let end = core::ptr::addr_of!(_end) as u64;
    let start = system_image::blob_start(end).unwrap_or_else(|| panic!("launcher: no room after the image"));
    // SAFETY: `images` packs the launcher with a system image from
    // `start`, mapped read-only for the launcher's life; it is at least
    // the header long.
    let header = unsafe { core::slice::from_raw_parts(start as *const u8, HEADER_LEN) };
    let range = system_image::locate(start, header).unwrap_or_else(|e| panic!("launcher: no system image: {e}"));
    // SAFETY: as above; `locate` read the blob's length from its header,
    // and the segment `images` adds covers that many bytes.
    let blob = unsafe { core::slice::from_raw_parts(start as *const u8, (range.end - range.start) as usize) };
    system_image::decode(blob).unwrap_or_else(|e| panic!("launcher: the system image does not decode: {e}"))
}
