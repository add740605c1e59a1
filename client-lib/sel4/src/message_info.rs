//! `seL4_MessageInfo`: the label, capability counts and length of a message.

/// A message's tag, laid out as seL4's 64-bit bitfield: length in bits
/// 0-6, extra caps in 7-8, unwrapped caps in 9-11, label in 12-31.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageInfo(pub u64);

impl MessageInfo {
    /// Builds a tag; fields wider than their bit ranges are truncated as
    /// libsel4 does.
    pub const fn new(label: u64, caps_unwrapped: u64, extra_caps: u64, length: u64) -> MessageInfo {
        MessageInfo(
            ((label & 0xf_ffff) << 12) | ((caps_unwrapped & 0x7) << 9) | ((extra_caps & 0x3) << 7) | (length & 0x7f),
        )
    }

    /// The message label (an invocation label, error code or fault type).
    pub const fn label(self) -> u64 {
        (self.0 >> 12) & 0xf_ffff
    }

    /// Which transferred caps were unwrapped into badges (a bit each).
    pub const fn caps_unwrapped(self) -> u64 {
        (self.0 >> 9) & 0x7
    }

    /// How many capabilities the message carries.
    pub const fn extra_caps(self) -> u64 {
        (self.0 >> 7) & 0x3
    }

    /// How many message registers the message uses.
    pub const fn length(self) -> u64 {
        self.0 & 0x7f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_truncate() {
        let info = MessageInfo::new(0x12345, 5, 2, 100);
        assert_eq!((info.label(), info.caps_unwrapped(), info.extra_caps(), info.length()), (0x12345, 5, 2, 100));
        assert_eq!(MessageInfo::new(0x1f_ffff, 0, 0, 0x80).label(), 0xf_ffff);
        assert_eq!(MessageInfo::new(0, 0, 0, 0x80).length(), 0);
    }
}
