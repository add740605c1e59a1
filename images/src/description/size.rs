//! Sizes in a description: an integer number of bytes, or a string of a
//! number and a binary unit (`"64 MiB"`, `"16 KiB"`, `"4096 B"`).

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// The units a size string may use, with their bytes.
const UNITS: [(&str, u64); 4] = [("B", 1), ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)];

/// A number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    /// Parses `"<number> <unit>"` (the space is optional; the unit is one
    /// of B, KiB, MiB and GiB) or a plain number of bytes.
    pub fn parse(text: &str) -> Result<Size, String> {
        let text = text.trim();
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let unit = unit.trim_start();
        let expected = || {
            format!("`{text}` is not a size: expected a number of bytes or a string like \"64 MiB\" (units B, KiB, MiB, GiB)")
        };
        let number: u64 = number.parse().map_err(|_| expected())?;
        let multiplier = if unit.is_empty() {
            1
        } else {
            UNITS.iter().find(|(name, _)| *name == unit).map(|&(_, bytes)| bytes).ok_or_else(expected)?
        };
        number.checked_mul(multiplier).map(Size).ok_or_else(|| format!("`{text}` is more than 2^64 bytes"))
    }
}

/// `bytes` for people: exact in the largest unit that divides it, else
/// with two decimals in the largest unit it reaches.
pub fn human(bytes: u64) -> String {
    let &(unit, size) = UNITS.iter().rev().find(|(_, size)| bytes >= *size).unwrap_or(&UNITS[0]);
    if bytes.is_multiple_of(size) {
        format!("{} {unit}", bytes / size)
    } else {
        format!("{:.2} {unit}", bytes as f64 / size as f64)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Size, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of bytes or a string like \"64 MiB\"")
            }
            fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<Size, E> {
                Ok(Size(bytes))
            }
            fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<Size, E> {
                u64::try_from(bytes).map(Size).map_err(|_| E::custom(format!("{bytes} is not a size: it is negative")))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Size, E> {
                Size::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_every_unit_and_without() {
        assert_eq!(Size::parse("64 MiB"), Ok(Size(64 << 20)));
        assert_eq!(Size::parse("16KiB"), Ok(Size(16 << 10)));
        assert_eq!(Size::parse("4096 B"), Ok(Size(4096)));
        assert_eq!(Size::parse("4096"), Ok(Size(4096)));
        assert_eq!(Size::parse(" 1 GiB "), Ok(Size(1 << 30)));
        for bad in ["", "MiB", "64 MB", "64 mib", "-1 KiB", "1.5 MiB", "0x10", "64 MiB extra"] {
            assert!(Size::parse(bad).unwrap_err().contains("is not a size"), "{bad}");
        }
        assert!(Size::parse("17179869184 GiB").unwrap_err().contains("more than 2^64"));
    }

    #[test]
    fn sizes_print_exactly_when_they_can() {
        assert_eq!(human(64 << 20), "64 MiB");
        assert_eq!(human(4096), "4 KiB");
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1000), "1000 B");
        assert_eq!(human((88 << 20) + (512 << 10)), "88.50 MiB");
    }
}
