//! The messages the server takes for faults: only what seL4 itself sends
//! when a thread faults. A fault endpoint's capability sits in the client's
//! own CSpace (`memserver_protocol::bootstrap`), so the client can send on it too;
//! a message whose label, length or capabilities differ from the kernel's
//! for that fault type is not a fault. A message shaped like one can still
//! be forged: what the server does with it affects only the badge's space.

use crate::populate::Access;
use memserver_protocol::fault;

/// The bit of x86's page-fault error code that marks a write.
const FSR_WRITE: u64 = 1 << 1;

/// A fault as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelFault {
    /// A VM fault: the instruction at `ip` accessed `addr`.
    Vm {
        /// The faulting instruction.
        ip: u64,
        /// The address accessed.
        addr: u64,
        /// Read or write.
        access: Access,
    },
    /// A capability fault, unknown system call or user exception of the
    /// instruction at `ip`: the thread is broken.
    Other {
        /// The faulting instruction.
        ip: u64,
    },
}

impl KernelFault {
    /// The fault that the message with `label` and the words `words` (as
    /// many as its tag says) reports, if it has exactly the shape of the
    /// kernel's message for it; `with_caps` says that capabilities came
    /// with it, which no kernel fault message has.
    pub fn parse(label: u64, with_caps: bool, words: &[u64]) -> Option<KernelFault> {
        let length = words.len() as u64;
        if with_caps {
            return None;
        }
        let word = |i: usize| words.get(i).copied();
        match label {
            fault::VM_FAULT if length == fault::VM_FAULT_LENGTH => {
                let access = if word(fault::VM_FAULT_FSR)? & FSR_WRITE != 0 { Access::Write } else { Access::Read };
                Some(KernelFault::Vm { ip: word(fault::IP)?, addr: word(fault::VM_FAULT_ADDR)?, access })
            }
            fault::USER_EXCEPTION if length == fault::USER_EXCEPTION_LENGTH => {
                Some(KernelFault::Other { ip: word(fault::IP)? })
            }
            fault::CAP_FAULT if (fault::CAP_FAULT_MIN_LENGTH..=fault::CAP_FAULT_MAX_LENGTH).contains(&length) => {
                Some(KernelFault::Other { ip: word(fault::IP)? })
            }
            fault::UNKNOWN_SYSCALL if length == fault::UNKNOWN_SYSCALL_LENGTH => {
                Some(KernelFault::Other { ip: word(fault::UNKNOWN_SYSCALL_IP)? })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(label: u64, caps: u64, words: &[u64]) -> Option<KernelFault> {
        KernelFault::parse(label, caps != 0, words)
    }

    #[test]
    fn the_kernels_fault_messages_parse() {
        let vm = |fsr| parse(fault::VM_FAULT, 0, &[0x20_1000, 0x7000_0000_0000, 0, fsr]);
        assert_eq!(vm(0b100), Some(KernelFault::Vm { ip: 0x20_1000, addr: 0x7000_0000_0000, access: Access::Read }));
        assert_eq!(vm(0b110), Some(KernelFault::Vm { ip: 0x20_1000, addr: 0x7000_0000_0000, access: Access::Write }));
        assert_eq!(
            parse(fault::USER_EXCEPTION, 0, &[0x20_2000, 1, 2, 6, 0]),
            Some(KernelFault::Other { ip: 0x20_2000 })
        );
        for length in 4..=7 {
            let words = [0x20_3000, 0x10, 0, 2, 9, 9, 9];
            assert_eq!(parse(fault::CAP_FAULT, 0, &words[..length]), Some(KernelFault::Other { ip: 0x20_3000 }));
        }
        let mut syscall = [0; 19];
        syscall[fault::UNKNOWN_SYSCALL_IP] = 0x20_4000;
        assert_eq!(parse(fault::UNKNOWN_SYSCALL, 0, &syscall), Some(KernelFault::Other { ip: 0x20_4000 }));
    }

    #[test]
    fn messages_of_any_other_shape_are_no_faults() {
        let vm = [0x20_1000, 0x7000_0000_0000, 0, 0];
        assert_eq!(parse(fault::VM_FAULT, 1, &vm), None, "a capability came with it");
        assert_eq!(parse(fault::VM_FAULT, 0, &vm[..3]), None, "too short");
        assert_eq!(parse(fault::VM_FAULT, 0, &[0; 5]), None, "too long");
        assert_eq!(parse(fault::USER_EXCEPTION, 0, &vm), None);
        assert_eq!(parse(fault::CAP_FAULT, 0, &vm[..3]), None);
        assert_eq!(parse(fault::CAP_FAULT, 0, &[0; 8]), None);
        assert_eq!(parse(fault::UNKNOWN_SYSCALL, 0, &vm), None);
        for label in [fault::NULL, 4, 6, memserver_protocol::PING_LABEL, memserver_protocol::PROTOCOL_LABEL] {
            assert_eq!(parse(label, 0, &vm), None, "label {label}");
        }
    }
}
