#![doc = include_str!("../docs/boot-contract.md")]

use sel4_layer::abi::CPtr;
use sel4_layer::{syscall, MessageInfo};

/// A program's CNode has 2^`CNODE_BITS` slots.
pub const CNODE_BITS: u64 = 12;

/// Slots of a program's CNode.
pub mod slot {
    use super::CPtr;

    /// The memory server's endpoint, badged with the client's identity
    /// (clients only).
    pub const MEMSERVER: CPtr = 1;
    /// The fault endpoint of the program's thread.
    pub const FAULT: CPtr = 2;
    /// The launcher's endpoint, for the verdict and the console.
    pub const LAUNCHER: CPtr = 3;
    /// The first of the program's described endpoints, in its order.
    pub const ENDPOINTS: CPtr = 4;
    /// (With `frames`.) The CNode of the program's frames.
    pub const FRAMES: CPtr = (1 << super::CNODE_BITS) - 1;

    /// The slot of the `k`-th endpoint (from 0) of the program's
    /// `endpoints` list.
    pub const fn endpoint(k: u64) -> CPtr {
        ENDPOINTS + k
    }
}

/// Client `i` of a system (its index in the description) calls the server
/// with badge `CLIENT_BASE + i`.
pub const CLIENT_BASE: u64 = memserver_protocol::bootstrap::badge::CLIENT_BASE;

/// The program's IPC buffer (one page).
pub const IPC_BUFFER: u64 = 0x1000_0000;
/// The program's stack ends here (its `stack` bytes are below).
pub const STACK_TOP: u64 = 0x2000_0000;
/// The program's heap starts here.
pub const HEAP: u64 = 0x3000_0000;
/// The largest stack the launcher maps: 32 MiB.
pub const MAX_STACK: u64 = 0x200_0000;
/// The largest heap the launcher maps: 32 MiB.
pub const MAX_HEAP: u64 = 0x200_0000;
/// The CNode in slot `FRAMES` has 2^`FRAMES_BITS` slots.
pub const FRAMES_BITS: u8 = 8;
/// The most bytes of frames a program is given: a frame per slot of the
/// frames CNode.
pub const MAX_FRAMES: u64 = 0x10_0000;
/// The start of the addresses the launch library maps (IPC buffers,
/// stacks, heap).
pub const LAUNCHER_AREA_START: u64 = 0x1000_0000;
/// Their end.
pub const LAUNCHER_AREA_END: u64 = 0x4000_0000;
/// The kernel region's first address: from here to [`REGION_END`] only
/// the memory server maps.
pub const REGION_START: u64 = 0x7000_0000_0000;
/// The kernel region's end.
pub const REGION_END: u64 = 0x7300_0000_0000;

// The launcher's area holds what it maps, in this order, below the region.
const _: () = assert!(LAUNCHER_AREA_START <= IPC_BUFFER && IPC_BUFFER < STACK_TOP && STACK_TOP < HEAP);
const _: () = assert!(HEAP < LAUNCHER_AREA_END && LAUNCHER_AREA_END <= REGION_START && REGION_START < REGION_END);
const _: () = assert!(STACK_TOP - MAX_STACK > IPC_BUFFER && HEAP + MAX_HEAP <= LAUNCHER_AREA_END);
const _: () = assert!(MAX_FRAMES == 4096 << FRAMES_BITS);

/// Defines the entry point of a program the launcher boots (with
/// `sel4_layer::sel4_program!`, which see): its IPC buffer from rdi, and
/// its lines printed by the launcher (console messages on
/// [`slot::LAUNCHER`]), so no other program's output cuts them.
#[macro_export]
macro_rules! program {
    ($main:path) => {
        $crate::__sel4_layer::sel4_program!(
            $main,
            ipc_buffer = |regs| regs.rdi,
            stack = $crate::__sel4_layer::runtime::DEFAULT_STACK_BYTES,
            console = $crate::boot_contract::slot::LAUNCHER
        );
    };
}

/// The label of a verdict message.
pub const VERDICT_LABEL: u64 = 0x5e1f;

/// What a program's start-up registers say (besides the IPC buffer, which
/// `sel4_program!` takes from rdi).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    /// The heap's address and size in bytes; `None` without a heap.
    pub heap: Option<(u64, u64)>,
    /// The program's index in the description.
    pub index: u64,
}

impl Start {
    /// Reads the start-up registers.
    pub fn from_regs(regs: sel4_layer::runtime::StartRegs) -> Start {
        Start { heap: (regs.rdx != 0).then_some((regs.rsi, regs.rdx)), index: regs.rcx }
    }

    /// The values of rsi, rdx and rcx that say this.
    pub fn to_args(self) -> [u64; 3] {
        let (heap, bytes) = self.heap.unwrap_or((0, 0));
        [heap, bytes, self.index]
    }
}

/// The words of a verdict: 0 for success, or a failure code.
pub fn verdict_code(verdict: Result<(), u64>) -> u64 {
    match verdict {
        Ok(()) => 0,
        // A failure whose code is 0 is still a failure.
        Err(code) => code.max(1),
    }
}

/// Reports `verdict` to the launcher and waits for it to end the program.
pub fn exit(verdict: Result<(), u64>) -> ! {
    let info = MessageInfo::new(VERDICT_LABEL, 0, 0, 1);
    // The launcher never answers; should a reply come, the verdict is sent
    // again.
    loop {
        syscall::call(slot::LAUNCHER, info, [verdict_code(verdict), 0, 0, 0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_registers_round_trip() {
        for start in [Start { heap: Some((HEAP, 1 << 16)), index: 3 }, Start { heap: None, index: 0 }] {
            let [rsi, rdx, rcx] = start.to_args();
            let regs = sel4_layer::runtime::StartRegs { rdi: IPC_BUFFER, rsi, rdx, rcx };
            assert_eq!(Start::from_regs(regs), start);
        }
    }

    #[test]
    fn a_failure_is_never_the_success_word() {
        assert_eq!(verdict_code(Ok(())), 0);
        for code in [0, 1, 7, u64::MAX] {
            assert_ne!(verdict_code(Err(code)), 0);
        }
    }
}
