//! Fuzz inputs replayed as plain tests (no fuzzer needed): the seed corpus
//! of each target, and every input that once crashed one, named after what
//! it found. A new crash input goes in `memserver/fuzz/regressions/` with a
//! test here.

use std::path::Path;

use memserver::harness;

/// Every file of the seed corpus `fuzz/seeds/<target>`.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.map(|f| std::fs::read(f.expect("a seed").path()).expect("a readable seed")).collect()
}

#[test]
fn decode_seeds_replay_cleanly() {
    seeds("decode").iter().for_each(|s| harness::decode(s));
}

#[test]
fn dispatch_seeds_replay_cleanly() {
    seeds("dispatch").iter().for_each(|s| harness::session(s));
}

/// A fault at an address the space maps already (as when it races with the
/// installation) made the server map over the mapping: the simulator
/// panicked, and on seL4 the refused repair was reported as an unmapped
/// access. Now the thread just retries.
#[test]
fn fault_at_a_mapped_address() {
    harness::session(include_bytes!("../fuzz/regressions/dispatch-fault-at-mapped-address"));
}

/// A registration refused because every space id was taken (found with 16
/// ids; this input fills 32) had already set the client's quota, creating a
/// record for a client the server did not know: a failed request changed
/// the state. Now the quota is restored when the registration fails.
#[test]
fn failed_registration_keeps_the_quota() {
    harness::session(include_bytes!("../fuzz/regressions/dispatch-failed-register-keeps-quota"));
}

/// An area refused by the object quota was undone by a purge, which kept
/// the structures the area created.
#[test]
fn quota_undo_prunes_the_structures_it_created() {
    harness::session(include_bytes!("../fuzz/regressions/dispatch-quota-undo-prunes-structures"));
}

/// A registers, vmallocs a page and frees it; a purge keeps the page
/// directory and PDPT; B, registered with a structure quota of 0, vmallocs
/// two pages: refused, and the undo removed every empty structure on the
/// way, the kept ones too, in every space. Now it removes what the request
/// created and nothing else.
#[test]
fn refused_vmalloc_keeps_the_structures_a_purge_kept() {
    harness::session(include_bytes!("../fuzz/regressions/dispatch-refused-vmalloc-keeps-purged-structures"));
}
