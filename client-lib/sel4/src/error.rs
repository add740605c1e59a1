//! seL4 error codes (`seL4_Error`), mapped exhaustively to a typed enum.

/// An error an seL4 invocation returned (the label of its reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Sel4Error {
    /// `seL4_InvalidArgument`.
    InvalidArgument = 1,
    /// `seL4_InvalidCapability`.
    InvalidCapability = 2,
    /// `seL4_IllegalOperation`.
    IllegalOperation = 3,
    /// `seL4_RangeError`.
    RangeError = 4,
    /// `seL4_AlignmentError`.
    AlignmentError = 5,
    /// `seL4_FailedLookup`.
    FailedLookup = 6,
    /// `seL4_TruncatedMessage`.
    TruncatedMessage = 7,
    /// `seL4_DeleteFirst`.
    DeleteFirst = 8,
    /// `seL4_RevokeFirst`.
    RevokeFirst = 9,
    /// `seL4_NotEnoughMemory`.
    NotEnoughMemory = 10,
    /// A label outside the kernel's error range (never sent by seL4 5.0).
    Unknown = u64::MAX,
}

/// `seL4_NumErrors`: one past the last error code.
pub const NUM_ERRORS: u64 = 11;

/// Every error, in code order, so the mapping can be checked for gaps.
pub const ALL_ERRORS: [Sel4Error; NUM_ERRORS as usize - 1] = [
    Sel4Error::InvalidArgument,
    Sel4Error::InvalidCapability,
    Sel4Error::IllegalOperation,
    Sel4Error::RangeError,
    Sel4Error::AlignmentError,
    Sel4Error::FailedLookup,
    Sel4Error::TruncatedMessage,
    Sel4Error::DeleteFirst,
    Sel4Error::RevokeFirst,
    Sel4Error::NotEnoughMemory,
];

impl Sel4Error {
    /// Turns a reply label into a result: 0 is success.
    pub fn check(label: u64) -> Result<(), Sel4Error> {
        match label {
            0 => Ok(()),
            code => Err(ALL_ERRORS.get(code as usize - 1).copied().unwrap_or(Sel4Error::Unknown)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_its_variant() {
        for (i, e) in ALL_ERRORS.iter().enumerate() {
            assert_eq!(*e as u64, i as u64 + 1);
            assert_eq!(Sel4Error::check(i as u64 + 1), Err(*e));
        }
        assert_eq!(Sel4Error::check(0), Ok(()));
        assert_eq!(Sel4Error::check(NUM_ERRORS), Err(Sel4Error::Unknown));
    }
}
