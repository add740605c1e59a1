//! A program's ELF image as the loader sees it: the pages its loadable
//! segments cover, in address order, each with the segments that overlap
//! it.

use elf::abi::{PF_W, PT_LOAD};
use elf::endian::LittleEndian;
use elf::segment::{ProgramHeader, SegmentTable};
use elf::ElfBytes;
use sel4_layer::abi::size;

const PAGE: u64 = 1 << size::PAGE_BITS;

/// A parsed ELF image.
pub(crate) struct ElfImage<'a> {
    /// The program's name, for messages.
    name: &'static str,
    /// The file.
    pub(crate) bytes: &'a [u8],
    /// Its entry point.
    pub(crate) entry: u64,
    segments: SegmentTable<'a, LittleEndian>,
}

impl<'a> ElfImage<'a> {
    /// Parses `bytes`, the image of program `name`.
    pub(crate) fn parse(name: &'static str, bytes: &'a [u8]) -> ElfImage<'a> {
        let file = ElfBytes::<LittleEndian>::minimal_parse(bytes).unwrap_or_else(|e| panic!("{name}: bad ELF: {e}"));
        let segments = file.segments().unwrap_or_else(|| panic!("{name}: ELF without program headers"));
        ElfImage { name, bytes, entry: file.ehdr.e_entry, segments }
    }

    /// The loadable segments with memory.
    fn loads(&self) -> impl Iterator<Item = ProgramHeader> + '_ {
        self.segments.iter().filter(|s| s.p_type == PT_LOAD && s.p_memsz > 0)
    }

    /// The address of every page a loadable segment overlaps, in order.
    pub(crate) fn pages(&self) -> impl Iterator<Item = u64> + '_ {
        let name = self.name;
        let start = self.loads().map(|s| s.p_vaddr).min().unwrap_or_else(|| panic!("{name}: nothing to load"));
        let start = start & !(PAGE - 1);
        let end = self.loads().map(|s| s.p_vaddr + s.p_memsz).max().unwrap_or(start);
        (start..end).step_by(PAGE as usize).filter(|&page| self.overlapping(page).next().is_some())
    }

    /// The loadable segments that overlap the page at `page`.
    pub(crate) fn overlapping(&self, page: u64) -> impl Iterator<Item = ProgramHeader> + '_ {
        self.loads().filter(move |s| s.p_vaddr < page + PAGE && s.p_vaddr + s.p_memsz > page)
    }

    /// Whether a segment that overlaps the page at `page` is writable.
    pub(crate) fn writable(&self, page: u64) -> bool {
        self.overlapping(page).any(|s| s.p_flags & PF_W != 0)
    }
}
