//! Encoding and decoding systems as a root task sees them: what goes in
//! comes back, ELF files sit page-aligned and shared, the blob is found
//! after `_end`, and blobs that break the format's rules are refused.

use proptest::prelude::*;
use system_image::header::{Header, HEADER_LEN, MAGIC};
use system_image::{
    blob_start, decode, encode, locate, DecodeError, ElfRef, EncodeError, MemServer, Part, Program, Quota, RootKind,
    System, SystemImage, PAGE_SIZE,
};

const MIB: u64 = 1 << 20;

/// Pseudo-ELF bytes of `len`, distinct per `seed`.
fn file(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn quota(bytes: u64) -> Quota {
    Quota { bytes, frames: 1024, structures: 4096, areas: 16 }
}

fn program<'a>(name: &'a str, elf: &'a [u8], cpu: u32, endpoints: Vec<u32>) -> Program<&'a str, &'a [u8]> {
    Program {
        name,
        priority: 150,
        cpu,
        stack: 128 << 10,
        heap: 0,
        frames: 0,
        quota: Some(quota(16 * MIB)),
        endpoints,
        elf,
    }
}

/// The demo's shape: a server and 23 programs, 22 of them sharing one file.
fn demo<'a>(server: &'a [u8], client: &'a [u8], hello: &'a [u8], names: &'a [String]) -> SystemImage<'a> {
    let mut programs = vec![Program { quota: None, priority: 200, ..program("hello-child", hello, 0, vec![]) }];
    programs.extend(names.iter().enumerate().map(|(i, n)| program(n, client, (i % 4 == 1) as u32, vec![])));
    System {
        root: RootKind::Demo,
        root_priority: 255,
        cpus: 4,
        memserver: Some(MemServer { memory: 64 * MIB, priority: 200, cpu: 0, elf: server }),
        endpoints: vec![],
        programs,
    }
}

#[test]
fn the_demo_round_trips_and_shares_the_client_file() {
    let (server, client, hello) = (file(1, 8_444_104), file(2, 69_384), file(3, 9_840));
    let names: Vec<String> = ["A", "B", "C", "D"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..16).map(|i| format!("S{i}")))
        .chain(["E".to_string()])
        .collect();
    let image = demo(&server, &client, &hello, &names);
    let blob = encode(&image).unwrap();
    assert_eq!(decode(&blob).unwrap(), image);
    let files = server.len() + client.len() + hello.len();
    assert!(blob.len() < files + 4 * PAGE_SIZE as usize, "{} bytes for {files} bytes of files", blob.len());
    let back = decode(&blob).unwrap();
    let base = blob.as_ptr() as usize;
    let offset = |elf: &[u8]| elf.as_ptr() as usize - base;
    let shared = offset(back.programs[1].elf);
    for p in &back.programs[1..] {
        assert_eq!(offset(p.elf), shared, "{} has a copy of its own", p.name);
    }
    for elf in [back.memserver.unwrap().elf, back.programs[0].elf, back.programs[1].elf] {
        assert_eq!(offset(elf) as u64 % PAGE_SIZE, 0);
    }
}

#[test]
fn a_tiny_system_round_trips_with_its_endpoints() {
    let (writer, reader) = (file(4, 5000), file(5, 12_288));
    let image = System {
        root: RootKind::Launcher,
        root_priority: 254,
        cpus: 2,
        memserver: None,
        endpoints: vec!["pipe", "log"],
        programs: vec![
            Program { quota: None, ..program("writer", &writer, 0, vec![0, 1]) },
            Program { quota: None, heap: 64 << 10, ..program("reader", &reader, 1, vec![0]) },
        ],
    };
    let blob = encode(&image).unwrap();
    let back = decode(&blob).unwrap();
    assert_eq!(back, image);
    assert_eq!(
        back.programs[0].endpoints.iter().map(|&e| back.endpoints[e as usize]).collect::<Vec<_>>(),
        ["pipe", "log"]
    );
}

#[test]
fn a_system_without_programs_round_trips() {
    let server = file(6, 4096);
    let image = System {
        root: RootKind::Bench,
        root_priority: 255,
        cpus: 1,
        memserver: Some(MemServer { memory: 256 * MIB, priority: 200, cpu: 0, elf: &server[..] }),
        endpoints: vec![],
        programs: vec![],
    };
    assert_eq!(decode(&encode(&image).unwrap()).unwrap(), image);
}

#[test]
fn encode_refuses_what_decode_would() {
    let elf = file(7, 100);
    let mut image = System {
        root: RootKind::Launcher,
        root_priority: 255,
        cpus: 2,
        memserver: None,
        endpoints: vec!["pipe"],
        programs: vec![Program { quota: None, ..program("p", &elf, 2, vec![]) }],
    };
    let cpu = DecodeError::CpuOutOfRange { part: Part::Program(0), cpu: 2, cpus: 2 };
    assert_eq!(encode(&image), Err(EncodeError::Invalid(cpu)));
    image.programs[0].cpu = 1;
    image.programs[0].endpoints = vec![0, 1];
    let endpoint = DecodeError::EndpointOutOfRange { program: 0, endpoint: 1, endpoints: 1 };
    assert_eq!(encode(&image), Err(EncodeError::Invalid(endpoint)));
    image.programs[0].endpoints = vec![0];
    image.cpus = 0;
    image.programs[0].cpu = 0;
    assert_eq!(encode(&image), Err(EncodeError::Invalid(DecodeError::NoCpus)));
}

/// A blob holding `wire` as its description, followed by `files_len`
/// bytes of files from the first page boundary after it.
fn blob_with(wire: &System<&str, ElfRef>, files_len: usize) -> Vec<u8> {
    let description = postcard::to_allocvec(wire).unwrap();
    let files_start = ((HEADER_LEN + description.len()) as u64).next_multiple_of(PAGE_SIZE) as usize;
    let total = files_start + files_len;
    let mut blob = Header { total_len: total as u64, description_len: description.len() as u64 }.to_bytes().to_vec();
    blob.extend_from_slice(&description);
    blob.resize(total, 0xab);
    blob
}

fn one_program(elf: ElfRef) -> System<&'static str, ElfRef> {
    System {
        root: RootKind::Launcher,
        root_priority: 255,
        cpus: 1,
        memserver: None,
        endpoints: vec![],
        programs: vec![Program {
            name: "p",
            priority: 1,
            cpu: 0,
            stack: 4096,
            heap: 0,
            frames: 0,
            quota: None,
            endpoints: vec![],
            elf,
        }],
    }
}

#[test]
fn elf_files_outside_the_files_or_unaligned_are_refused() {
    let page = PAGE_SIZE;
    let ok = blob_with(&one_program(ElfRef { offset: page, len: 100 }), 100);
    assert_eq!(decode(&ok).unwrap().programs[0].elf, &[0xab; 100][..]);
    for elf in [
        ElfRef { offset: page, len: 101 },      // past the end
        ElfRef { offset: page + 8, len: 10 },   // unaligned
        ElfRef { offset: 0, len: 10 },          // over the header and description
        ElfRef { offset: page, len: u64::MAX }, // overflows
        ElfRef { offset: !(page - 1), len: 1 }, // far past the end
    ] {
        let blob = blob_with(&one_program(elf), 100);
        let refused = DecodeError::ElfOutOfBounds { part: Part::Program(0), offset: elf.offset, len: elf.len };
        assert_eq!(decode(&blob), Err(refused), "{elf:?}");
    }
}

#[test]
fn broken_headers_are_refused() {
    let elf = file(8, 3000);
    let image = System { memserver: None, ..demo(&elf, &elf, &elf, &[]) };
    let blob = encode(&image).unwrap();
    assert_eq!(decode(&blob[..10]), Err(DecodeError::TooShort { len: 10 }));
    let mut bad = blob.clone();
    bad[0] ^= 1;
    assert_eq!(decode(&bad), Err(DecodeError::BadMagic));
    let total = blob.len() as u64;
    assert_eq!(decode(&blob[..blob.len() - 1]), Err(DecodeError::LengthMismatch { header: total, actual: total - 1 }));
    let mut long = blob.clone();
    long[16..24].copy_from_slice(&(total).to_le_bytes());
    assert_eq!(decode(&long), Err(DecodeError::DescriptionOutOfBounds { len: total }));
    let description_len = u64::from_le_bytes(blob[16..24].try_into().unwrap());
    let mut trailing = blob.clone();
    trailing[16..24].copy_from_slice(&(description_len + 1).to_le_bytes());
    assert_eq!(decode(&trailing), Err(DecodeError::TrailingBytes(1)));
    let mut short = blob;
    short[16..24].copy_from_slice(&(description_len - 1).to_le_bytes());
    assert!(matches!(decode(&short), Err(DecodeError::Malformed(_))));
}

#[test]
fn the_blob_is_found_after_end() {
    assert_eq!(blob_start(0xa7_1320), Some(0xa7_2000));
    assert_eq!(blob_start(0xa7_2000), Some(0xa7_2000));
    assert_eq!(blob_start(u64::MAX - 5), None);
    let elf = file(9, 5000);
    let blob = encode(&System { memserver: None, ..demo(&elf, &elf, &elf, &[]) }).unwrap();
    let start = 0xa7_2000;
    assert_eq!(locate(start, &blob[..HEADER_LEN]), Ok(start..start + blob.len() as u64));
    assert_eq!(locate(start + 8, &blob), Err(DecodeError::Unaligned { start: start + 8 }));
    assert_eq!(locate(start, &blob[..HEADER_LEN - 1]), Err(DecodeError::TooShort { len: HEADER_LEN - 1 }));
    assert_eq!(locate(start, &[0; HEADER_LEN]), Err(DecodeError::BadMagic));
    let mut huge = Header { total_len: u64::MAX, description_len: 0 }.to_bytes();
    assert_eq!(locate(start, &huge), Err(DecodeError::PastAddressSpace { start, len: u64::MAX }));
    huge[8..16].copy_from_slice(&3u64.to_le_bytes());
    assert_eq!(locate(start, &huge), Err(DecodeError::LengthMismatch { header: 3, actual: HEADER_LEN as u64 }));
    assert_eq!(&huge[..8], &MAGIC);
}

/// A program of [`Owned`]: name, priority, CPU, stack, heap, quota,
/// endpoints and the index of its file.
type OwnedProgram = (String, u8, u32, u64, u64, Option<Quota>, Vec<u32>, usize);

/// Any system, owning its names and files.
#[derive(Clone, Debug)]
struct Owned {
    files: Vec<Vec<u8>>,
    endpoints: Vec<String>,
    cpus: u32,
    root_priority: u8,
    /// Memory, priority, CPU and file index.
    server: Option<(u64, u8, u32, usize)>,
    programs: Vec<OwnedProgram>,
}

impl Owned {
    fn image(&self) -> SystemImage<'_> {
        System {
            root: RootKind::Launcher,
            root_priority: self.root_priority,
            cpus: self.cpus,
            memserver: self.server.map(|(memory, priority, cpu, f)| MemServer {
                memory,
                priority,
                cpu,
                elf: &self.files[f][..],
            }),
            endpoints: self.endpoints.iter().map(String::as_str).collect(),
            programs: self
                .programs
                .iter()
                .map(|(name, priority, cpu, stack, heap, quota, endpoints, f)| Program {
                    name: name.as_str(),
                    priority: *priority,
                    cpu: *cpu,
                    stack: *stack,
                    heap: *heap,
                    frames: 0,
                    quota: *quota,
                    endpoints: endpoints.clone(),
                    elf: &self.files[*f][..],
                })
                .collect(),
        }
    }
}

fn systems() -> impl Strategy<Value = Owned> {
    (1usize..5, 0u32..6, 1u32..5).prop_flat_map(|(nfiles, nendpoints, cpus)| {
        let quota = (any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(bytes, frames, structures, areas)| Quota { bytes, frames, structures, areas });
        let program = (
            "[a-zA-Z0-9_. -]{0,16}",
            any::<u8>(),
            0..cpus,
            any::<u64>(),
            any::<u64>(),
            prop::option::of(quota),
            prop::collection::vec(0..nendpoints.max(1), 0..=nendpoints.min(4) as usize),
            0..nfiles,
        );
        (
            prop::collection::vec(prop::collection::vec(any::<u8>(), 0..9000), nfiles),
            prop::collection::vec("[a-z]{1,8}", nendpoints as usize),
            any::<u8>(),
            prop::option::of((any::<u64>(), any::<u8>(), 0..cpus, 0..nfiles)),
            prop::collection::vec(program, 0..30),
        )
            .prop_map(move |(files, endpoints, root_priority, server, programs)| Owned {
                files,
                endpoints,
                cpus,
                root_priority,
                server,
                programs,
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_system_round_trips_with_each_file_once(owned in systems()) {
        let image = owned.image();
        let blob = encode(&image).unwrap();
        prop_assert_eq!(decode(&blob).unwrap(), image);
        let distinct: std::collections::BTreeSet<&Vec<u8>> = owned.files.iter().collect();
        let files: u64 = distinct.iter().map(|f| (f.len() as u64).next_multiple_of(PAGE_SIZE)).sum();
        let description = u64::from_le_bytes(blob[16..24].try_into().unwrap());
        prop_assert!(blob.len() as u64 <= HEADER_LEN as u64 + description + PAGE_SIZE + files);
    }
}
