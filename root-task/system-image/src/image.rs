//! The run-time description of a system, generic over how names and ELF
//! files are held: borrowed names and ELF bytes ([`SystemImage`], what
//! [`crate::decode`] gives and [`crate::encode`] takes), places in the blob
//! ([`ElfRef`], what the blob stores), or whatever a host tool describes a
//! system with (owned names, where to find each file).

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The kind of root task a system is meant for. Each reads the same
/// description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RootKind {
    /// A generic root task: boots the programs and waits for their
    /// verdicts.
    Launcher,
    /// This repository's demo root task (the scenarios).
    Demo,
    /// This repository's benchmark root task.
    Bench,
    /// This repository's demo root task built to run the `scale` scenario
    /// alone, with a larger memory server.
    Scale,
}

/// What a client of the memory server may hold (the server's `Quota`):
/// `u32::MAX` frames, structures or areas means the server's default share
/// of that part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Bytes of region memory.
    pub bytes: u64,
    /// Frames its requests may make the server allocate.
    pub frames: u32,
    /// Paging structures its requests may make the server create.
    pub structures: u32,
    /// Live vmalloc areas, vmemmap ranges and percpu allocations.
    pub areas: u32,
}

/// The memory server's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemServer<E> {
    /// Bytes of untyped memory given to it (a multiple of [`PAGE_SIZE`](crate::PAGE_SIZE)).
    pub memory: u64,
    /// Its threads' priority.
    pub priority: u8,
    /// The CPU its thread runs on.
    pub cpu: u32,
    /// Its ELF file.
    pub elf: E,
}

/// A program to boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program<N, E> {
    /// Its name (unique in the system).
    pub name: N,
    /// Its threads' priority.
    pub priority: u8,
    /// The CPU its first thread runs on.
    pub cpu: u32,
    /// Bytes of stack for its first thread (a multiple of the page size).
    pub stack: u64,
    /// Bytes of heap (0: none; otherwise a multiple of the page size).
    pub heap: u64,
    /// Its quota as a client of the memory server; `None` for a program
    /// that is not a client.
    pub quota: Option<Quota>,
    /// Bytes of frames it is given to vmap (0: none; a client's only).
    pub frames: u64,
    /// The endpoints it holds, as indices into [`System::endpoints`], in
    /// the order they appear in its CNode.
    pub endpoints: Vec<u32>,
    /// Its ELF file.
    pub elf: E,
}

/// A whole system, with names `N` and ELF files `E`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct System<N, E> {
    /// The root task it is meant for.
    pub root: RootKind,
    /// The root task's priority (programs' priorities are at most this).
    pub root_priority: u8,
    /// CPUs to boot; every CPU named here is below it.
    pub cpus: u32,
    /// The memory server, if the system has one (every program with a
    /// quota is its client).
    pub memserver: Option<MemServer<E>>,
    /// The named endpoints shared between programs.
    pub endpoints: Vec<N>,
    /// The programs, in the order they are booted.
    pub programs: Vec<Program<N, E>>,
}

/// A system with its names and ELF files borrowed (from the blob, for a
/// root task).
pub type SystemImage<'a> = System<&'a str, &'a [u8]>;

/// Where an ELF file lies in the blob: `len` bytes from `offset`, which is
/// a multiple of the page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfRef {
    /// Bytes from the start of the blob.
    pub offset: u64,
    /// The file's length.
    pub len: u64,
}

/// A part of a system that has an ELF file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The memory server.
    MemServer,
    /// The program at this index of [`System::programs`].
    Program(usize),
}

impl<N, E> System<N, E> {
    /// The same system with references to its names and ELF files.
    pub fn as_ref(&self) -> System<&N, &E> {
        System {
            root: self.root,
            root_priority: self.root_priority,
            cpus: self.cpus,
            memserver: self.memserver.as_ref().map(|s| MemServer {
                memory: s.memory,
                priority: s.priority,
                cpu: s.cpu,
                elf: &s.elf,
            }),
            endpoints: self.endpoints.iter().collect(),
            programs: self
                .programs
                .iter()
                .map(|p| Program {
                    name: &p.name,
                    priority: p.priority,
                    cpu: p.cpu,
                    stack: p.stack,
                    heap: p.heap,
                    frames: p.frames,
                    quota: p.quota,
                    endpoints: p.endpoints.clone(),
                    elf: &p.elf,
                })
                .collect(),
        }
    }

    /// The same system with every name mapped through `name` and every ELF
    /// file through `elf` (which may fail): the memory server's first, then
    /// the programs' in order.
    pub fn try_map<M, X, Err>(
        self,
        mut name: impl FnMut(N) -> M,
        mut elf: impl FnMut(Part, E) -> Result<X, Err>,
    ) -> Result<System<M, X>, Err> {
        let memserver = match self.memserver {
            Some(s) => Some(MemServer {
                memory: s.memory,
                priority: s.priority,
                cpu: s.cpu,
                elf: elf(Part::MemServer, s.elf)?,
            }),
            None => None,
        };
        let mut programs = Vec::with_capacity(self.programs.len());
        for (i, p) in self.programs.into_iter().enumerate() {
            programs.push(Program {
                elf: elf(Part::Program(i), p.elf)?,
                name: name(p.name),
                priority: p.priority,
                cpu: p.cpu,
                stack: p.stack,
                heap: p.heap,
                frames: p.frames,
                quota: p.quota,
                endpoints: p.endpoints,
            });
        }
        Ok(System {
            root: self.root,
            root_priority: self.root_priority,
            cpus: self.cpus,
            memserver,
            endpoints: self.endpoints.into_iter().map(name).collect(),
            programs,
        })
    }
}
