//! What can be wrong with a system description, each case its own
//! variant, each naming the file, line and column, and the field.

use super::size::human;
use crate::static_elf::NotStatic;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A place in a description file (line and column count from 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file, as it was named.
    pub file: Arc<Path>,
    /// Its line.
    pub line: usize,
    /// Its column, in characters.
    pub column: usize,
}

impl Location {
    /// Where byte `offset` of `text`, the contents of `file`, lies.
    pub fn of(file: &Arc<Path>, text: &str, offset: usize) -> Location {
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            file: file.clone(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// The part of a description a field belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// `[system]`.
    System,
    /// `[memserver]`.
    MemServer,
    /// The `[[program]]` of this name.
    Program(String),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::System => f.write_str("[system]"),
            Owner::MemServer => f.write_str("[memserver]"),
            Owner::Program(name) => write!(f, "program \"{name}\""),
        }
    }
}

/// A field of a part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Whose field.
    pub owner: Owner,
    /// Its key (dotted for a field of an inline table: `quota.bytes`).
    pub key: &'static str,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, field `{}`", self.owner, self.key)
    }
}

/// What the system needs of the guest's RAM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUse {
    /// Untyped memory given to the memory server.
    pub server: u64,
    /// Frames of the programs' (and the server's) loadable segments.
    pub loads: u64,
    /// The programs' stacks.
    pub stacks: u64,
    /// The programs' heaps.
    pub heaps: u64,
    /// The clients' frames to vmap.
    pub frames: u64,
    /// One IPC buffer page for each program's (and the server's) thread.
    pub ipc_buffers: u64,
    /// The system image (the description and the ELF files) the root task
    /// carries after its own image.
    pub image: u64,
    /// What the kernel and the root task's own image and boot objects take
    /// ([`super::resolve::KERNEL_RESERVE`]).
    pub reserve: u64,
}

impl MemoryUse {
    /// All of it.
    pub fn total(&self) -> u64 {
        self.server + self.loads + self.stacks + self.heaps + self.frames + self.ipc_buffers + self.image + self.reserve
    }
}

impl fmt::Display for MemoryUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory server {}, loaded segments {}, stacks {}, heaps {}, frames {}, IPC buffers {}, system image {}, kernel and root task {}",
            human(self.server),
            human(self.loads),
            human(self.stacks),
            human(self.heaps),
            human(self.frames),
            human(self.ipc_buffers),
            human(self.image),
            human(self.reserve)
        )
    }
}

/// Why a description cannot describe a bootable system.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    /// The file cannot be read.
    #[error("cannot read the system description {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or not of the description's form: a syntax error, an
    /// unknown or missing field, a value of the wrong type, a size that is
    /// not one (the message names the field).
    #[error("{at}: {}{message}", keys.as_ref().map(|k| format!("in `{k}`: ")).unwrap_or_default())]
    Toml {
        /// Where.
        at: Location,
        /// The keys of the table or value (`program.quota.bytes`), when the
        /// error is in one.
        keys: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// Two programs of one name.
    #[error("{at}: program \"{name}\", field `name`: the name is already the program's at line {}", first.line)]
    DuplicateProgram {
        /// The second one's name.
        at: Location,
        /// The name.
        name: String,
        /// The first one's.
        first: Location,
    },
    /// An endpoint declared twice.
    #[error("{at}: [system], field `endpoints`: \"{name}\" is declared twice")]
    DuplicateEndpoint {
        /// The second declaration.
        at: Location,
        /// The name.
        name: String,
    },
    /// A priority outside seL4's 0..=255.
    #[error("{at}: {field}: priority {value} is outside seL4's 0..=255")]
    PriorityOutOfRange {
        /// Where.
        at: Location,
        /// Which.
        field: Field,
        /// The value.
        value: i64,
    },
    /// A priority above the root task's: the root task cannot give it.
    #[error("{at}: {field}: priority {value} is above the root task's ({root}), the most it can give")]
    PriorityAboveRoot {
        /// Where.
        at: Location,
        /// Which.
        field: Field,
        /// The value.
        value: u8,
        /// The root task's priority.
        root: u8,
    },
    /// A CPU count the kernel does not boot.
    #[error("{at}: [system], field `cpus`: {cpus} CPUs, the kernel boots 1 to {max}")]
    CpusOutOfRange {
        /// Where.
        at: Location,
        /// The value.
        cpus: i64,
        /// The most the kernel boots.
        max: u32,
    },
    /// A CPU that is not booted.
    #[error("{at}: {field}: CPU {cpu} is not booted ([system] cpus = {cpus}, so 0 to {})", cpus - 1)]
    CpuOutOfRange {
        /// Where.
        at: Location,
        /// Which.
        field: Field,
        /// The CPU.
        cpu: u32,
        /// The CPUs booted.
        cpus: u32,
    },
    /// A program holds an endpoint `[system] endpoints` does not declare.
    #[error(
        "{at}: program \"{program}\", field `endpoints`: endpoint \"{endpoint}\" is not declared in [system] endpoints"
    )]
    UndeclaredEndpoint {
        /// Where.
        at: Location,
        /// The program.
        program: String,
        /// The endpoint.
        endpoint: String,
    },
    /// A size of 0.
    #[error("{at}: {field}: the size is 0")]
    ZeroSize {
        /// Where.
        at: Location,
        /// Which.
        field: Field,
    },
    /// A size that is not a multiple of what it must be.
    #[error("{at}: {field}: {bytes} bytes is not a multiple of {}", human(*multiple))]
    UnalignedSize {
        /// Where.
        at: Location,
        /// Which.
        field: Field,
        /// The size.
        bytes: u64,
        /// What it must be a multiple of.
        multiple: u64,
    },
    /// A stack or heap larger than the launcher maps.
    #[error("{at}: {field}: {} is more than the launcher maps ({})", human(*bytes), human(*max))]
    SizeAboveMax {
        /// Where.
        at: Location,
        /// Which.
        field: Field,
        /// The size.
        bytes: u64,
        /// The most there may be.
        max: u64,
    },
    /// Server memory the launcher cannot give in its untyped pieces.
    #[error("{at}: [memserver], field `memory`: {} cannot be given as at most {max_pieces} equal untyped pieces of 2 to 16 MiB: give at most {} or a multiple of 16 MiB", human(*bytes), human(*max_pieces << 21))]
    ServerMemoryPieces {
        /// Where.
        at: Location,
        /// The memory.
        bytes: u64,
        /// The most pieces.
        max_pieces: u64,
    },
    /// A quota for a system without a memory server.
    #[error("{at}: program \"{program}\", field `quota`: a client quota, but the system has no [memserver]")]
    ClientWithoutServer {
        /// Where.
        at: Location,
        /// The program.
        program: String,
    },
    /// Frames for a program that is not a client (they are for vmap).
    #[error("{at}: program \"{program}\", field `frames`: frames are for vmap, but the program has no `quota` (it is not a client)")]
    FramesWithoutQuota {
        /// Where.
        at: Location,
        /// The program.
        program: String,
    },
    /// A quota of more bytes than the server has.
    #[error("{at}: program \"{program}\", field `quota.bytes`: {} is more than the memory server's memory ({})", human(*quota), human(*memory))]
    QuotaAboveServerMemory {
        /// Where.
        at: Location,
        /// The program.
        program: String,
        /// The quota's bytes.
        quota: u64,
        /// The server's memory.
        memory: u64,
    },
    /// Neither `elf` nor `cargo`.
    #[error("{at}: {owner}: no binary: give `elf = \"path\"` or `cargo = {{ package = \"...\", bin = \"...\" }}`")]
    NoBinary {
        /// Where.
        at: Location,
        /// Whose.
        owner: Owner,
    },
    /// Both `elf` and `cargo`.
    #[error("{at}: {owner}, field `cargo`: `elf` names the binary already; give one of them")]
    TwoBinaries {
        /// Where.
        at: Location,
        /// Whose.
        owner: Owner,
    },
    /// A cargo package, binary or feature the workspace does not have.
    #[error("{at}: {owner}, field `cargo`: {problem}")]
    UnknownCargoTarget {
        /// Where.
        at: Location,
        /// Whose.
        owner: Owner,
        /// What is missing.
        problem: String,
    },
    /// A cargo binary that does not build.
    #[error("{at}: {owner}, field `cargo`: {message}")]
    CargoBuild {
        /// Where.
        at: Location,
        /// Whose.
        owner: Owner,
        /// Which binary of which package failed to build, and how.
        message: String,
    },
    /// An ELF file that cannot be read.
    #[error("{at}: {owner}, field `elf`: cannot read ELF file {}: {source}", path.display())]
    MissingElf {
        /// Where.
        at: Location,
        /// Whose.
        owner: Owner,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An ELF file that is not a static x86-64 executable.
    #[error("{at}: {owner}, field `{key}`: {} is not a static x86-64 executable: {reason}", path.display())]
    NotStaticExecutable {
        /// Where.
        at: Location,
        /// Whose.
        owner: Owner,
        /// `elf` or `cargo`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: NotStatic,
    },
    /// The system needs more memory than the guest's RAM.
    #[error(
        "{at}: [system], field `memory`: the system needs {} but the guest has {}: {} ({over} bytes) too little ({needs})",
        human(needs.total()), human(*memory), human(*over)
    )]
    DoesNotFit {
        /// Where (the `memory` field, or `[system]` when it is left out).
        at: Location,
        /// The guest's RAM.
        memory: u64,
        /// What is missing.
        over: u64,
        /// What the system needs.
        needs: MemoryUse,
    },
}
