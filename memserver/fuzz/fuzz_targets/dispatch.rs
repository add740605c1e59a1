//! Fuzz target: arbitrary sessions of messages and faults from several
//! callers, decoded and dispatched over the simulated MMU with every
//! promise checked after each step (see `memserver::harness::session`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memserver::harness::session(data));
