//! Whatever bytes a root task finds after its image, `locate` and `decode`
//! return (an error or a system), never panic, and a system they return
//! has every index in range: arbitrary bytes, arbitrary bytes behind a
//! valid header, and real blobs with bytes changed, cut or appended.

use proptest::prelude::*;
use system_image::header::{Header, HEADER_LEN};
use system_image::{decode, encode, locate, MemServer, Program, Quota, RootKind, System, SystemImage};

/// Checks what a root task relies on in a decoded system.
fn check_indices(image: &SystemImage<'_>) -> Result<(), TestCaseError> {
    prop_assert!(image.cpus > 0);
    if let Some(server) = &image.memserver {
        prop_assert!(server.cpu < image.cpus);
    }
    for p in &image.programs {
        prop_assert!(p.cpu < image.cpus);
        prop_assert!(p.endpoints.iter().all(|&e| (e as usize) < image.endpoints.len()));
    }
    Ok(())
}

/// A real blob to corrupt: a server, three programs (two sharing a file)
/// and two endpoints.
fn real_blob() -> Vec<u8> {
    let (server, a, b) = (vec![0x7f; 9000], vec![1; 5000], vec![2; 300]);
    let quota = Some(Quota { bytes: 1 << 24, frames: 1024, structures: 4096, areas: 16 });
    let program = |name, elf, cpu, endpoints| Program {
        name,
        priority: 150,
        cpu,
        stack: 1 << 17,
        heap: 1 << 16,
        frames: 0,
        quota,
        endpoints,
        elf,
    };
    let image = System {
        root: RootKind::Launcher,
        root_priority: 255,
        cpus: 2,
        memserver: Some(MemServer { memory: 1 << 26, priority: 200, cpu: 1, elf: &server[..] }),
        endpoints: vec!["pipe", "log"],
        programs: vec![
            program("writer", &a[..], 0, vec![0, 1]),
            program("reader", &a[..], 1, vec![0]),
            program("logger", &b[..], 1, vec![1]),
        ],
    };
    encode(&image).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..10_000), start in any::<u64>()) {
        if let Ok(image) = decode(&bytes) {
            check_indices(&image)?;
        }
        let _ = locate(start, &bytes);
    }

    #[test]
    fn arbitrary_descriptions_behind_a_valid_header_never_panic(
        description in prop::collection::vec(any::<u8>(), 0..2000),
        files in 0usize..10_000,
        claimed in prop::option::of(any::<u64>()),
    ) {
        let total = HEADER_LEN + description.len() + files;
        let description_len = claimed.unwrap_or(description.len() as u64);
        let mut blob = Header { total_len: total as u64, description_len }.to_bytes().to_vec();
        blob.extend_from_slice(&description);
        blob.resize(total, 0x5a);
        if let Ok(image) = decode(&blob) {
            check_indices(&image)?;
        }
    }

    #[test]
    fn corrupted_blobs_never_panic(
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in prop::option::of(any::<prop::sample::Index>()),
        appended in prop::collection::vec(any::<u8>(), 0..64),
        fix_length in any::<bool>(),
    ) {
        let mut blob = real_blob();
        // Most changes land in the header and description, where they matter.
        let description_end = HEADER_LEN + u64::from_le_bytes(blob[16..24].try_into().unwrap()) as usize;
        for (at, value) in &changes {
            let i = at.index(description_end);
            blob[i] = *value;
        }
        if let Some(cut) = cut {
            blob.truncate(cut.index(blob.len()));
        }
        blob.extend_from_slice(&appended);
        if fix_length && blob.len() >= HEADER_LEN {
            let len = blob.len() as u64;
            blob[8..16].copy_from_slice(&len.to_le_bytes());
        }
        if let Ok(image) = decode(&blob) {
            check_indices(&image)?;
        }
    }
}
