//! System descriptions from the user's side: every file in systems/
//! resolves into the system it describes, every bad description is
//! refused with an error of its own kind that names the file, line,
//! column and field, and the memory a system needs adds up.

mod common;

use common::{cases, root_like, scratch, write};
use images::description::resolve::{resolve, Resolved, IPC_BUFFER, KERNEL_RESERVE};
use images::description::{BinarySource, Description, DescriptionError};
use images::static_elf::StaticElf;
use images::workspace::Workspace;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use system_image::RootKind;

fn workspace() -> &'static Workspace {
    static WS: OnceLock<Workspace> = OnceLock::new();
    WS.get_or_init(|| Workspace::load().unwrap())
}

fn check(path: &Path) -> Result<Resolved, DescriptionError> {
    resolve(Description::load(path)?, workspace())
}

fn systems() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systems");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_system_in_the_repository_resolves_and_packs() {
    let files = systems();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let resolved = check(&file).unwrap_or_else(|e| panic!("{e}"));
        let blob = resolved.blob();
        let image = system_image::decode(&blob).unwrap();
        assert_eq!(image, resolved.image(), "{}", file.display());
        let summary = resolved.to_string();
        assert!(summary.contains(&format!("programs: {}", resolved.description.system.programs.len())), "{summary}");
    }
}

#[test]
fn the_demo_system_is_todays_demo() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systems/demo.toml");
    let resolved = check(&file).unwrap_or_else(|e| panic!("{e}"));
    let (d, memory) = (&resolved.description.system, resolved.description.memory);
    assert_eq!((d.root, d.cpus, memory), (RootKind::Demo, 4, 512 << 20));
    let server = d.memserver.as_ref().unwrap();
    assert_eq!((server.memory, server.priority, server.cpu), (64 << 20, 200, 0));
    let names: Vec<&str> = d.programs.iter().map(|p| p.name.as_str()).collect();
    let mut expected = vec!["hello-child".to_string(), "A".into(), "B".into(), "C".into(), "D".into()];
    expected.extend((0..16).map(|i| format!("S{i}")));
    expected.push("E".into());
    assert_eq!(names, expected);
    for p in &d.programs[1..] {
        assert_eq!(p.priority, 150, "{}", p.name);
        let quota = p.quota.unwrap_or_else(|| panic!("{} is not a client", p.name));
        assert_eq!(quota.bytes, 16 << 20);
    }
    let on_cpu_1: Vec<&str> = d.programs.iter().filter(|p| p.cpu == 1).map(|p| p.name.as_str()).collect();
    assert_eq!(on_cpu_1, ["S1", "S5", "S9", "S13", "E"]);
    assert_eq!(d.programs[20].quota.unwrap().frames, 24, "S15 is the greedy one");
    // One copy of the client's file serves all 21 agents.
    let blob = resolved.blob();
    let client = &resolved.programs[1].bytes;
    assert!(blob.len() < resolved.memserver.as_ref().unwrap().bytes.len() + client.len() * 2 + (64 << 10));
}

#[test]
fn every_bad_description_names_its_place_and_field() {
    for case in cases() {
        let (path, at) = write(&case);
        let error = match check(&path) {
            Ok(_) => panic!("case {}: accepted", case.name),
            Err(e) => e,
        };
        let message = error.to_string();
        assert!((case.is)(&error), "case {}: {error:?}", case.name);
        assert!(message.starts_with(&format!("{at}: ")), "case {}: {message}\nexpected at {at}", case.name);
        assert!(message.contains(case.field), "case {}: {message}\nexpected field {}", case.name, case.field);
    }
}

#[test]
fn a_description_that_cannot_be_read_is_named() {
    let missing = scratch("descriptions").join("no-such-description.toml");
    let error = check(&missing).unwrap_err();
    assert!(matches!(error, DescriptionError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains(&missing.display().to_string()), "{error}");
}

/// Bytes of the pages `elf`'s loadable segments touch, counted from the
/// `elf` crate's view of the file.
fn pages_loaded(bytes: &[u8]) -> u64 {
    let file = elf::ElfBytes::<elf::endian::LittleEndian>::minimal_parse(bytes).unwrap();
    let mut pages = std::collections::BTreeSet::new();
    for s in file.segments().unwrap().iter().filter(|s| s.p_type == elf::abi::PT_LOAD && s.p_memsz > 0) {
        pages.extend((s.p_vaddr >> 12)..(s.p_vaddr + s.p_memsz).div_ceil(4096));
    }
    pages.len() as u64 * 4096
}

#[test]
fn memory_adds_up_and_a_system_that_does_not_fit_says_by_how_much() {
    let dir = scratch("memory");
    let elf = root_like(true);
    std::fs::copy(elf, dir.join("prog.elf")).unwrap();
    let bytes = std::fs::read(elf).unwrap();
    let load = pages_loaded(&bytes);
    assert_eq!(StaticElf::parse(&bytes).unwrap().load_bytes(), load);
    let text = |memory: &str| {
        format!(
            "[system]\nroot = \"launcher\"\ncpus = 2\nmemory = \"{memory}\"\nendpoints = [\"a\", \"b\"]\n\n\
             [memserver]\nelf = \"prog.elf\"\nmemory = \"32 MiB\"\npriority = 200\ncpu = 1\n\n\
             [[program]]\nname = \"one\"\nelf = \"prog.elf\"\npriority = 10\nstack = \"64 KiB\"\nheap = \"1 MiB\"\nendpoints = [\"b\", \"a\"]\n\n\
             [[program]]\nname = \"two\"\nelf = \"prog.elf\"\npriority = 20\ncpu = 1\nstack = 8192\nquota = {{ bytes = \"2 MiB\", areas = 3 }}\n"
        )
    };
    let file = dir.join("fits.toml");
    std::fs::write(&file, text("64 MiB")).unwrap();
    let resolved = check(&file).unwrap_or_else(|e| panic!("{e}"));
    let needs = resolved.needs;
    assert_eq!(needs.server, 32 << 20);
    assert_eq!(needs.loads, 3 * load);
    assert_eq!(needs.stacks, (64 << 10) + 8192);
    assert_eq!(needs.heaps, 1 << 20);
    assert_eq!(needs.ipc_buffers, 3 * IPC_BUFFER);
    assert_eq!(needs.image, (resolved.blob().len() as u64).next_multiple_of(4096));
    assert_eq!(needs.reserve, KERNEL_RESERVE);
    let image = resolved.image();
    assert_eq!(image.programs[0].endpoints, [1, 0]);
    assert_eq!(image.programs[1].quota.unwrap().areas, 3);
    assert_eq!(image.programs[1].quota.unwrap().frames, u32::MAX);
    assert_eq!(image.programs[0].elf, &bytes[..], "relative to the description's folder");

    let short = needs.total() - 4096;
    let file = dir.join("short.toml");
    std::fs::write(&file, text(&format!("{short} B"))).unwrap();
    match check(&file) {
        Err(DescriptionError::DoesNotFit { memory, over, needs: n, .. }) => {
            assert_eq!((memory, over, n), (short, 4096, needs));
            let message = check(&file).unwrap_err().to_string();
            assert!(message.contains("4 KiB (4096 bytes) too little"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let file = dir.join("exact.toml");
    std::fs::write(&file, text(&format!("{} B", needs.total()))).unwrap();
    check(&file).unwrap_or_else(|e| panic!("a system that needs exactly the guest's RAM fits: {e}"));
}

#[test]
fn descriptions_parse_to_what_they_say() {
    let text = "[system]\nroot = \"bench\"\n";
    let d = Description::parse(Path::new("here/min.toml"), text).unwrap();
    assert_eq!((d.memory, d.memory_at.to_string()), (512 << 20, "here/min.toml:1:1".to_string()));
    let s = &d.system;
    assert_eq!((s.root, s.cpus, s.root_priority), (RootKind::Bench, 1, 255));
    assert!(s.memserver.is_none() && s.programs.is_empty() && s.endpoints.is_empty());
    let text = "[system]\nroot = \"launcher\"\n\n[[program]]\nname = \"x\"\nelf = \"bin/x\"\npriority = 0\nstack = \"4 KiB\"\n";
    let d = Description::parse(Path::new("here/one.toml"), text).unwrap();
    let p = &d.system.programs[0];
    assert_eq!((p.priority, p.cpu, p.stack, p.heap, p.quota), (0, 0, 4096, 0, None));
    assert_eq!(p.elf.source, BinarySource::Elf(PathBuf::from("here/bin/x")));
    assert_eq!(p.elf.at.to_string(), "here/one.toml:6:7");
    let text = "[system]\nroot = \"launcher\"\n\n[memserver]\nelf = \"bin/m\"\nmemory = \"16 MiB\"\npriority = 200\n\n[[program]]\nname = \"x\"\nelf = \"bin/x\"\npriority = 0\nstack = \"4 KiB\"\nquota = { bytes = \"1 MiB\" }\nframes = \"64 KiB\"\n";
    let d = Description::parse(Path::new("here/frames.toml"), text).unwrap();
    assert_eq!(d.system.programs[0].frames, 64 << 10, "a client's frames");
}
