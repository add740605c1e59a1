//! Packing a root task with a system image, checked with the `elf` crate
//! as the kernel reads the result: it parses, every original segment is
//! as it was, and the blob lies at the page after `_end`, right after the
//! image, where `system_image::locate` and `decode` find it.

mod common;

use common::{root_like, scratch};
use elf::abi::{PF_R, PT_LOAD, PT_PHDR};
use elf::endian::LittleEndian;
use elf::segment::ProgramHeader;
use elf::ElfBytes;
use images::system_image::{pack, write, PackError};
use system_image::header::HEADER_LEN;
use system_image::{decode, encode, locate, MemServer, Program, Quota, RootKind, System, SystemImage};

const PAGE: u64 = 4096;

fn segments(bytes: &[u8]) -> Vec<ProgramHeader> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(bytes).unwrap();
    file.segments().unwrap().iter().collect()
}

fn end_symbol(bytes: &[u8]) -> u64 {
    let file = ElfBytes::<LittleEndian>::minimal_parse(bytes).unwrap();
    let (symbols, names) = file.symbol_table().unwrap().unwrap();
    symbols.iter().find(|s| names.get(s.st_name as usize).unwrap() == "_end").unwrap().st_value
}

/// A system image as large as the demo's: a server file of 8.4 MB and a
/// client file shared by 21 programs.
fn demo_sized_blob() -> Vec<u8> {
    let server: Vec<u8> = (0..8_444_104u32).map(|i| (i % 251) as u8).collect();
    let client: Vec<u8> = (0..69_384u32).map(|i| (i % 241) as u8).collect();
    let names: Vec<String> = (0..21).map(|i| format!("agent{i}")).collect();
    let quota = Some(Quota { bytes: 16 << 20, frames: u32::MAX, structures: u32::MAX, areas: u32::MAX });
    let image: SystemImage<'_> = System {
        root: RootKind::Demo,
        root_priority: 255,
        cpus: 4,
        memserver: Some(MemServer { memory: 64 << 20, priority: 200, cpu: 0, elf: &server }),
        endpoints: vec![],
        programs: names
            .iter()
            .map(|name| Program {
                name: name.as_str(),
                priority: 150,
                cpu: 0,
                stack: 128 << 10,
                heap: 0,
                frames: 0,
                quota,
                endpoints: vec![],
                elf: &client[..],
            })
            .collect(),
    };
    encode(&image).unwrap()
}

#[test]
fn the_blob_follows_the_image_at_the_page_after_end() {
    let original = std::fs::read(root_like(true)).unwrap();
    let blob = demo_sized_blob();
    let packed = pack(&original, &blob).unwrap();
    let old = segments(&original);
    let new = segments(&packed.bytes);
    let end = end_symbol(&original);
    let highest = old.iter().filter(|s| s.p_type == PT_LOAD).map(|s| s.p_vaddr + s.p_memsz).max().unwrap();
    assert_eq!(end, highest);
    assert_eq!(packed.blob_address, end.next_multiple_of(PAGE));
    assert!(packed.blob_address - highest < PAGE, "the image and the blob are one range of frames");

    // Every original program header is kept, in order; PT_PHDR now
    // describes the new table; one read-only PT_LOAD is added last.
    assert_eq!(new.len(), old.len() + 1);
    for (o, n) in old.iter().zip(&new) {
        if o.p_type != PT_PHDR {
            assert_eq!(o, n);
        }
    }
    let added = new.last().unwrap();
    assert_eq!((added.p_type, added.p_flags, added.p_align), (PT_LOAD, PF_R, PAGE));
    assert_eq!(
        (added.p_vaddr, added.p_paddr, added.p_offset),
        (packed.blob_address, packed.blob_address, packed.blob_offset)
    );
    assert_eq!(added.p_filesz, added.p_memsz);
    assert_eq!(added.p_offset % PAGE, 0);
    let loads: Vec<u64> = new.iter().filter(|s| s.p_type == PT_LOAD).map(|s| s.p_vaddr).collect();
    assert!(loads.windows(2).all(|w| w[0] < w[1]), "PT_LOAD entries ascend: {loads:x?}");

    // The file's bytes are the original's but for e_phoff and e_phnum.
    let mut unchanged = packed.bytes[..original.len()].to_vec();
    unchanged[32..40].copy_from_slice(&original[32..40]);
    unchanged[56..58].copy_from_slice(&original[56..58]);
    assert!(unchanged == original, "bytes of the original file changed");
    // So every original segment is byte-identical, but for those two
    // fields in a segment that holds the ELF header (lld puts it in the
    // first).
    let header = 0..64u64;
    for s in old.iter().filter(|s| s.p_type == PT_LOAD && s.p_offset >= header.end) {
        let range = s.p_offset as usize..(s.p_offset + s.p_filesz) as usize;
        assert!(packed.bytes[range.clone()] == original[range], "segment {s:?} changed");
    }
    let holding_header = old.iter().filter(|s| s.p_type == PT_LOAD && s.p_offset < header.end).count();
    assert!(holding_header <= 1);

    // The table PT_PHDR points at is the one e_phoff points at, inside the
    // new segment, at the matching address.
    let file = ElfBytes::<LittleEndian>::minimal_parse(&packed.bytes).unwrap();
    let phdr = new.iter().find(|s| s.p_type == PT_PHDR).unwrap();
    assert_eq!(phdr.p_offset, file.ehdr.e_phoff);
    assert_eq!(phdr.p_filesz, 56 * new.len() as u64);
    assert_eq!(phdr.p_vaddr - added.p_vaddr, phdr.p_offset - added.p_offset);
    assert!(phdr.p_offset + phdr.p_filesz <= added.p_offset + added.p_filesz);

    // The root task finds the blob as it will: the page after `_end`,
    // mapped from the file as the kernel's loader copies it.
    let memory = |address: u64, len: usize| {
        let s = new.iter().find(|s| s.p_type == PT_LOAD && s.p_vaddr <= address && address < s.p_vaddr + s.p_filesz);
        let s = s.unwrap_or_else(|| panic!("{address:#x} is not loaded"));
        let offset = (s.p_offset + address - s.p_vaddr) as usize;
        &packed.bytes[offset..offset + len]
    };
    let start = system_image::blob_start(end).unwrap();
    let range = locate(start, memory(start, HEADER_LEN)).unwrap();
    assert_eq!(range, start..start + blob.len() as u64);
    let found = memory(start, blob.len());
    assert!(found == &blob[..]);
    let image = decode(found).unwrap();
    assert_eq!(image.programs.len(), 21);
    assert_eq!(image.memserver.unwrap().elf.len(), 8_444_104);
}

#[test]
fn write_puts_the_packed_root_task_in_a_file() {
    let out = scratch("packed").join("root-task.elf");
    let blob = demo_sized_blob();
    let packed = write(root_like(true), &blob, &out).unwrap();
    assert!(std::fs::read(&out).unwrap() == packed.bytes);
}

#[test]
fn a_root_task_that_does_not_refer_to_end_is_refused() {
    let elf = std::fs::read(root_like(false)).unwrap();
    let error = pack(&elf, &demo_sized_blob()).err().unwrap();
    assert!(matches!(error, PackError::NoEnd), "{error}");
    assert!(error.to_string().contains("no `_end` symbol"), "{error}");
}

#[test]
fn an_end_that_is_not_the_image_end_is_refused() {
    let original = std::fs::read(root_like(true)).unwrap();
    // Move `_end` a page up in the symbol table.
    let file = ElfBytes::<LittleEndian>::minimal_parse(&original).unwrap();
    let symtab = file.section_header_by_name(".symtab").unwrap().unwrap();
    let (symbols, names) = file.symbol_table().unwrap().unwrap();
    let index = symbols.iter().position(|s| names.get(s.st_name as usize).unwrap() == "_end").unwrap();
    let value_at = symtab.sh_offset as usize + index * 24 + 8;
    let end = end_symbol(&original);
    let mut moved = original.clone();
    moved[value_at..value_at + 8].copy_from_slice(&(end + PAGE).to_le_bytes());
    match pack(&moved, &[0; 100]) {
        Err(PackError::EndMismatch { end: e, highest }) => assert_eq!((e, highest), (end + PAGE, end)),
        other => panic!("{:?}", other.err()),
    }
    // A root task packed once ends after its blob, no longer at `_end`.
    let packed = pack(&original, &[0; 100]).unwrap();
    assert!(matches!(pack(&packed.bytes, &[0; 100]), Err(PackError::EndMismatch { .. })));
}

#[test]
fn a_root_task_without_symbols_or_not_static_is_refused() {
    let mut stripped = std::fs::read(root_like(true)).unwrap();
    stripped[60..62].copy_from_slice(&0u16.to_le_bytes()); // e_shnum: no sections
    assert!(matches!(pack(&stripped, &[1; 10]), Err(PackError::NoSymbolTable)));
    let pie = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let error = pack(&pie, &[1; 10]).err().unwrap();
    assert!(matches!(error, PackError::NotStatic(_)), "{error}");
    assert!(error.to_string().contains("not a non-PIE executable"), "{error}");
}
