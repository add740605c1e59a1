//! Fuzz target: arbitrary message words through the protocol decoder, as a
//! request and as a reply (see `memserver_core::harness::decode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memserver_core::harness::decode(data));
