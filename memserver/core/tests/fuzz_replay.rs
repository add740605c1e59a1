//! Fuzz inputs replayed as plain tests (no fuzzer needed): the seed corpus
//! of each target, the sessions in the byte format of raw messages and
//! faults (`fuzz/raw-sessions/`), and every input that once crashed a
//! target or was written to show a bug, named after what it found. A new
//! crash input goes in `memserver/fuzz/regressions/` with a test here.

use std::path::Path;

use memserver_core::harness;

/// Every file of the directory `fuzz/<dir>`.
fn inputs(dir: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz").join(dir);
    let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.map(|f| std::fs::read(f.expect("an input").path()).expect("a readable input")).collect()
}

#[test]
fn decode_seeds_replay_cleanly() {
    inputs("seeds/decode").iter().for_each(|s| harness::decode(s));
}

#[test]
fn dispatch_seeds_replay_cleanly() {
    inputs("seeds/dispatch").iter().for_each(|s| harness::session(s));
}

#[test]
fn raw_sessions_replay_cleanly() {
    inputs("raw-sessions").iter().for_each(|s| harness::raw_session(s));
}

/// A fault at an address the space maps already (as when it races with the
/// installation) made the server map over the mapping: the simulator
/// panicked, and on seL4 the refused repair was reported as an unmapped
/// access. Now the thread just retries. (Byte format.)
#[test]
fn fault_at_a_mapped_address() {
    harness::raw_session(include_bytes!("../../fuzz/regressions/dispatch-fault-at-mapped-address"));
}

/// A registration refused because every space id was taken (found with 16
/// ids; this input fills 32) had already set the client's quota, creating a
/// record for a client the server did not know: a failed request changed
/// the state. Now the quota is restored when the registration fails.
/// (Byte format.)
#[test]
fn failed_registration_keeps_the_quota() {
    harness::raw_session(include_bytes!("../../fuzz/regressions/dispatch-failed-register-keeps-quota"));
}

/// An area refused by the object quota was undone by a purge, which kept
/// the structures the area created. (Byte format.)
#[test]
fn quota_undo_prunes_the_structures_it_created() {
    harness::raw_session(include_bytes!("../../fuzz/regressions/dispatch-quota-undo-prunes-structures"));
}

/// A registers, vmallocs a page and frees it; a purge keeps the page
/// directory and PDPT; B, registered with a structure quota of 0, vmallocs
/// two pages: refused, and the undo removed every empty structure on the
/// way, the kept ones too, in every space. Now it removes what the request
/// created and nothing else. (Byte format.)
#[test]
fn refused_vmalloc_keeps_the_structures_a_purge_kept() {
    harness::raw_session(include_bytes!("../../fuzz/regressions/dispatch-refused-vmalloc-keeps-purged-structures"));
}

/// The same class as the structured fuzzer found it on the code before the
/// fix, within its bounded run: a 4 KiB-page vmalloc of 8 MiB refused by
/// the object quota took out structures a purge had kept.
#[test]
fn structured_quota_refusal_keeps_the_structures_a_purge_kept() {
    harness::session(include_bytes!(
        "../../fuzz/regressions/dispatch-structured-quota-refusal-keeps-purged-structures"
    ));
}
