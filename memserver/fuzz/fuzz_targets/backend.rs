//! Fuzz target: the structured sessions of `dispatch`, served by the
//! memory server's seL4 backend over the model of seL4 (failure injection
//! through `Injecting`), with every promise checked after each step and
//! the model's part of the invariant: every registered VSpace in the model
//! maps exactly the canonical table, every mapping has its capability, and
//! the server's records of slots, objects and untyped memory are the
//! model's (see `memserver::model_rig` and
//! `memserver_core::harness::session_on`).
#![no_main]

use memserver::model_rig::ModelBackend;

libfuzzer_sys::fuzz_target!(|data: &[u8]| memserver_core::harness::session_on::<ModelBackend>(data));
