//! The dispatch fuzzer's sessions served by the seL4 backend over the model
//! of seL4: the dispatch seed corpus, the raw sessions and the regression
//! inputs of `memserver/fuzz`, then random structured sessions. After every
//! step the core's harness checks its promises (every reply fits a message;
//! a failed request changes nothing of the server's state, its resources not
//! in use included) and the invariant with the model's part: every
//! registered VSpace in the model translates the region exactly as the
//! canonical table does (frame object, size, rights), with exactly its
//! structures; other VSpaces hold nothing of it; every mapping has the
//! capability that made it; the server's records of slots, objects and
//! untyped memory are the model's. At the end every space is unregistered
//! and the untyped memory and slots not in use are as after start.

use std::path::Path;

use memserver::model_rig::ModelBackend;
use memserver_core::harness;
use proptest::prelude::*;

/// Random sessions of `random_sessions_keep_the_model_in_sync`.
const SESSIONS: u32 = 48;

/// Every file of the directory `fuzz/<dir>`.
fn inputs(dir: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.map(|f| std::fs::read(f.expect("an input").path()).expect("a readable input")).collect()
}

#[test]
fn dispatch_seeds_keep_the_model_in_sync() {
    inputs("seeds/dispatch").iter().for_each(|s| harness::session_on::<ModelBackend>(s));
}

#[test]
fn vmaps_keep_the_model_in_sync_and_give_every_copy_back() {
    harness::run::<ModelBackend>(&harness::vmap_session());
}

#[test]
fn raw_sessions_keep_the_model_in_sync() {
    inputs("raw-sessions").iter().for_each(|s| harness::raw_session_on::<ModelBackend>(s));
}

/// Each input that once showed a bug over the simulated MMU, over the model.
#[test]
fn regressions_keep_the_model_in_sync() {
    for (name, structured) in [
        ("dispatch-fault-at-mapped-address", false),
        ("dispatch-failed-register-keeps-quota", false),
        ("dispatch-quota-undo-prunes-structures", false),
        ("dispatch-refused-vmalloc-keeps-purged-structures", false),
        ("dispatch-structured-quota-refusal-keeps-purged-structures", true),
    ] {
        let input = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if structured {
            harness::session_on::<ModelBackend>(&input);
        } else {
            harness::raw_session_on::<ModelBackend>(&input);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: SESSIONS, ..ProptestConfig::default() })]

    #[test]
    fn random_sessions_keep_the_model_in_sync(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        harness::session_on::<ModelBackend>(&data);
    }
}
