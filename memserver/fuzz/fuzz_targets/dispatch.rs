//! Fuzz target: structured sessions of requests, registrations, failure
//! injections, purges, faults and raw messages from several callers,
//! encoded to message words and dispatched over the simulated MMU with
//! every promise checked after each step (see `memserver_core::harness::session`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memserver_core::harness::session(data));
