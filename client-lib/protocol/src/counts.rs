//! A count per kind of event: the memory server counts its seL4
//! invocations ([`crate::invocation_counts`]) and its core counts backend
//! operations this way, so a request's cost can be compared with its lower
//! bound.

use core::fmt;
use core::marker::PhantomData;
use postcard::experimental::max_size::MaxSize;
use serde::de::{Deserializer, Error, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use strum::VariantArray;

/// A kind of counted event: an enum whose variants number `0..N`, listed
/// by its derived [`VariantArray`] (so `N` is checked, never kept by hand).
pub trait Kind: Copy + VariantArray {
    /// The variant's position in the counters.
    fn index(self) -> usize;
}

/// Events counted by kind `K`, with `N` kinds. On the wire: the `N`
/// counts, as a tuple (serde has no derive for arrays of generic length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts<K, const N: usize> {
    counts: [u64; N],
    kind: PhantomData<K>,
}

impl<K: Kind, const N: usize> Default for Counts<K, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Kind, const N: usize> Counts<K, N> {
    /// Nothing counted yet.
    pub const fn new() -> Self {
        const { assert!(N == K::VARIANTS.len(), "one count per kind") };
        Counts { counts: [0; N], kind: PhantomData }
    }

    /// Counts one event of `kind`.
    pub fn record(&mut self, kind: K) {
        if let Some(count) = self.counts.get_mut(kind.index()) {
            *count += 1;
        }
    }

    /// Events of `kind`.
    pub fn get(&self, kind: K) -> u64 {
        self.counts.get(kind.index()).copied().unwrap_or(0)
    }

    /// All events.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The events counted since `earlier` was taken.
    pub fn since(&self, earlier: &Self) -> Self {
        let mut out = *self;
        for (o, e) in out.counts.iter_mut().zip(earlier.counts) {
            *o = o.saturating_sub(e);
        }
        out
    }
}

impl<K, const N: usize> MaxSize for Counts<K, N> {
    const POSTCARD_MAX_SIZE: usize = <[u64; N]>::POSTCARD_MAX_SIZE;
}

impl<K, const N: usize> Serialize for Counts<K, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(N)?;
        for count in &self.counts {
            tuple.serialize_element(count)?;
        }
        tuple.end()
    }
}

impl<'de, K, const N: usize> Deserialize<'de> for Counts<K, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountsVisitor<K, const N: usize>(PhantomData<K>);

        impl<'de, K, const N: usize> Visitor<'de> for CountsVisitor<K, N> {
            type Value = Counts<K, N>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{N} counts")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut counts = [0; N];
                for (i, count) in counts.iter_mut().enumerate() {
                    *count = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(i, &self))?;
                }
                Ok(Counts { counts, kind: PhantomData })
            }
        }

        deserializer.deserialize_tuple(N, CountsVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray)]
    enum Colour {
        Red,
        Blue,
    }

    impl Kind for Colour {
        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn counts_by_kind_and_since() {
        let mut c: Counts<Colour, 2> = Counts::new();
        c.record(Colour::Red);
        let earlier = c;
        c.record(Colour::Blue);
        c.record(Colour::Blue);
        assert_eq!((c.get(Colour::Red), c.get(Colour::Blue), c.total()), (1, 2, 3));
        let d = c.since(&earlier);
        assert_eq!((d.get(Colour::Red), d.get(Colour::Blue)), (0, 2));
    }

    #[test]
    fn the_wire_form_is_the_counts_alone_and_round_trips() {
        let mut c: Counts<Colour, 2> = Counts::new();
        c.record(Colour::Blue);
        let mut buf = [0u8; 8];
        let bytes = postcard::to_slice(&c, &mut buf).map(|b| b.to_vec()).unwrap();
        assert_eq!(bytes, [0, 1]);
        assert_eq!(postcard::from_bytes::<Counts<Colour, 2>>(&bytes), Ok(c));
        assert!(postcard::from_bytes::<Counts<Colour, 2>>(&bytes[..1]).is_err());
        assert_eq!(Counts::<Colour, 2>::POSTCARD_MAX_SIZE, 2 * 10);
    }
}
