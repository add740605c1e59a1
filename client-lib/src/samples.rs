//! Test samples: one message of every kind, derived from the protocol's
//! variant counts (each kind's fields all zero), so a new kind is covered
//! without a hand-kept list.

use memserver_protocol::{Reply, Request, Words, MAX_WORDS, REPLIES, REQUESTS};
use serde::de::DeserializeOwned;

/// The message of wire code `code` with every field zero.
fn zero_fields<T: DeserializeOwned>(code: u32, known: u32) -> T {
    let words = Words::from_fn(MAX_WORDS, |i| if i == 0 { code.into() } else { 0 });
    words.decode(known).unwrap_or_else(|e| panic!("wire code {code} with zero fields: {e:?}"))
}

/// One reply of every kind, in wire-code order.
pub fn every_reply() -> impl Iterator<Item = Reply> {
    (0..REPLIES).map(|code| zero_fields(code, REPLIES))
}

/// One request of every kind, in wire-code order.
pub fn every_request() -> impl Iterator<Item = Request> {
    (0..REQUESTS).map(|code| zero_fields(code, REQUESTS))
}
