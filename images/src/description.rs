//! System description files: the programs a system boots and their
//! settings, in TOML, checked so that every error names the file, line,
//! column and field. [`Description::load`] parses and checks what the file
//! alone can tell; [`resolve::resolve`] then finds (or builds) the ELF
//! files and checks them and the memory the system needs.
//!
//! ```toml
//! [system]
//! root = "launcher"        # the root task: "launcher", "demo", "bench" or "scale"
//! cpus = 2                 # CPUs to boot (1 to 4; default 1)
//! memory = "512 MiB"       # the guest's RAM (default 512 MiB)
//! root-priority = 255      # the root task's priority (default 255)
//! endpoints = ["pipe"]     # endpoints shared between programs (default none)
//!
//! [memserver]              # the memory server (optional)
//! cargo = { package = "memserver", bin = "memserver", features = ["sel4"] }
//! memory = "64 MiB"        # untyped memory given to it (a multiple of 2 MiB)
//! priority = 200           # at most the root task's
//! cpu = 0                  # below `cpus` (default 0)
//!
//! [[program]]              # one per program, booted in this order
//! name = "writer"          # unique
//! elf = "writer.elf"       # an ELF file (relative to this file), or
//! # cargo = { package = "...", bin = "...", features = ["..."] }
//! #   (with `manifest = "path/Cargo.toml"`, relative to this file: a
//! #   package of that workspace instead of this one)
//! priority = 150
//! cpu = 1                  # default 0
//! stack = "16 KiB"         # a multiple of 4 KiB
//! heap = "64 KiB"          # a multiple of 4 KiB (default: no heap)
//! endpoints = ["pipe"]     # in the order they appear in its CNode
//! quota = { bytes = "1 MiB", frames = 256, structures = 64, areas = 8 }
//! # a client of the memory server; frames, structures and areas default
//! # to no limit; no `quota`: not a client
//! frames = "64 KiB"        # (clients) frames of its own to vmap, a
//! # multiple of 4 KiB up to 1 MiB (default: none; see the boot contract)
//! ```
//!
//! Sizes are integers (bytes) or strings of a number and a unit (B, KiB,
//! MiB, GiB).

mod error;
pub mod resolve;
pub mod size;
mod summary;

pub use error::{DescriptionError, Field, Location, MemoryUse, Owner};

use crate::kernel::KERNEL_CPUS;
use crate::static_elf::PAGE;
use ::system_image::{MemServer, Program, Quota, RootKind, System};
use client_lib::boot_contract::{MAX_FRAMES, MAX_HEAP, MAX_STACK};
use serde::Deserialize;
use size::Size;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use system_root::grant;
use toml::Spanned;

/// The guest's RAM when `[system] memory` is left out.
pub const DEFAULT_MEMORY: u64 = 512 << 20;
/// The root task's priority when `[system] root-priority` is left out:
/// the highest, which seL4 gives the root task.
pub const DEFAULT_ROOT_PRIORITY: u8 = 255;
/// The memory server's memory is a multiple of this: its 2 MiB pages come
/// from it.
pub const SERVER_MEMORY_MULTIPLE: u64 = 2 << 20;

/// A checked system description: the system as the root task will read
/// it, with owned names and where each ELF file comes from, and the guest's
/// RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    /// The file it was read from.
    pub file: PathBuf,
    /// The guest's RAM, in bytes.
    pub memory: u64,
    /// Where `memory` is set (or `[system]`, when it is left out).
    pub memory_at: Location,
    /// The system.
    pub system: System<String, Binary>,
}

/// Where a program's ELF file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BinarySource {
    /// This file (relative paths made relative to the description's
    /// folder).
    Elf(PathBuf),
    /// This binary of a package of the workspace, built for seL4 by
    /// [`crate::programs::build_program`].
    Cargo(CargoBinary),
}

/// A binary of a workspace package: of this workspace, or of the one
/// whose `Cargo.toml` `manifest` names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CargoBinary {
    /// The manifest of the workspace outside this one that has the
    /// package (relative paths made relative to the description's
    /// folder); `None`: this workspace.
    #[serde(default)]
    pub manifest: Option<PathBuf>,
    /// The package.
    pub package: String,
    /// The binary target.
    pub bin: String,
    /// The features to build it with.
    #[serde(default)]
    pub features: Vec<String>,
}

/// A program's binary and where the description names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binary {
    /// Where the ELF file comes from.
    pub source: BinarySource,
    /// The `elf` or `cargo` field.
    pub at: Location,
}

impl Binary {
    /// The field that names it.
    pub fn key(&self) -> &'static str {
        match self.source {
            BinarySource::Elf(_) => "elf",
            BinarySource::Cargo(_) => "cargo",
        }
    }
}

impl Description {
    /// Reads and checks the description in `file`.
    pub fn load(file: &Path) -> Result<Description, DescriptionError> {
        let text = std::fs::read_to_string(file)
            .map_err(|source| DescriptionError::Read { file: file.to_path_buf(), source })?;
        Description::parse(file, &text)
    }

    /// Checks the description `text`, read from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Description, DescriptionError> {
        let source = Source { file: Arc::from(file), text };
        let raw: RawDescription = toml::from_str(text).map_err(|e| toml_error(&source.file, text, e))?;
        source.check(raw)
    }
}

/// The error of `text`, the contents of `file`, that toml found.
fn toml_error(file: &Arc<Path>, text: &str, mut error: toml::de::Error) -> DescriptionError {
    let at = Location::of(file, text, error.span().map_or(0, |s| s.start));
    let message = error.message().trim_end().to_string();
    // Without the input, the error's text ends with the keys it is in.
    error.set_input(None);
    let keys = error.to_string().lines().find_map(|l| Some(l.strip_prefix("in `")?.strip_suffix('`')?.to_string()));
    DescriptionError::Toml { at, keys, message }
}

/// The file being checked, to turn spans into locations.
struct Source<'a> {
    file: Arc<Path>,
    text: &'a str,
}

impl Source<'_> {
    fn at<T>(&self, value: &Spanned<T>) -> Location {
        Location::of(&self.file, self.text, value.span().start)
    }

    fn check(&self, raw: RawDescription) -> Result<Description, DescriptionError> {
        let system = raw.system.get_ref();
        let root_priority = match &system.root_priority {
            Some(p) => self.priority(p, Field { owner: Owner::System, key: "root-priority" }, u8::MAX)?,
            None => DEFAULT_ROOT_PRIORITY,
        };
        let cpus = match &system.cpus {
            Some(cpus) => {
                u32::try_from(*cpus.get_ref()).ok().filter(|c| (1..=KERNEL_CPUS).contains(c)).ok_or_else(|| {
                    DescriptionError::CpusOutOfRange { at: self.at(cpus), cpus: *cpus.get_ref(), max: KERNEL_CPUS }
                })?
            }
            None => 1,
        };
        let (memory, memory_at) = match &system.memory {
            Some(m) => (self.size(m, Field { owner: Owner::System, key: "memory" }, PAGE)?, self.at(m)),
            None => (DEFAULT_MEMORY, self.at(&raw.system)),
        };
        let mut endpoints: Vec<String> = Vec::new();
        for e in &system.endpoints {
            if endpoints.contains(e.get_ref()) {
                return Err(DescriptionError::DuplicateEndpoint { at: self.at(e), name: e.get_ref().clone() });
            }
            endpoints.push(e.get_ref().clone());
        }
        let limits = Limits { root_priority, cpus };
        let memserver = raw.memserver.map(|s| self.memserver(&s, &limits)).transpose()?;
        let mut programs = Vec::with_capacity(raw.program.len());
        let mut names: HashMap<&str, Location> = HashMap::new();
        for p in &raw.program {
            let name = &p.get_ref().name;
            if let Some(first) = names.get(name.get_ref().as_str()) {
                return Err(DescriptionError::DuplicateProgram {
                    at: self.at(name),
                    name: name.get_ref().clone(),
                    first: first.clone(),
                });
            }
            names.insert(name.get_ref(), self.at(name));
            programs.push(self.program(p, &limits, &endpoints, memserver.as_ref())?);
        }
        Ok(Description {
            file: self.file.to_path_buf(),
            memory,
            memory_at,
            system: System { root: system.root.into(), root_priority, cpus, memserver, endpoints, programs },
        })
    }

    fn memserver(&self, raw: &Spanned<RawMemServer>, limits: &Limits) -> Result<MemServer<Binary>, DescriptionError> {
        let s = raw.get_ref();
        let field = |key| Field { owner: Owner::MemServer, key };
        Ok(MemServer {
            memory: self.server_memory(&s.memory)?,
            priority: self.priority(&s.priority, field("priority"), limits.root_priority)?,
            cpu: self.cpu(s.cpu.as_ref(), field("cpu"), limits.cpus)?,
            elf: self.binary(raw, &s.elf, &s.cargo, Owner::MemServer)?,
        })
    }

    fn program(
        &self,
        raw: &Spanned<RawProgram>,
        limits: &Limits,
        endpoints: &[String],
        memserver: Option<&MemServer<Binary>>,
    ) -> Result<Program<String, Binary>, DescriptionError> {
        let p = raw.get_ref();
        let name = p.name.get_ref().clone();
        let owner = || Owner::Program(name.clone());
        let field = |key| Field { owner: owner(), key };
        let mut held = Vec::with_capacity(p.endpoints.len());
        for e in &p.endpoints {
            let index = endpoints.iter().position(|d| d == e.get_ref()).ok_or_else(|| {
                DescriptionError::UndeclaredEndpoint {
                    at: self.at(e),
                    program: name.clone(),
                    endpoint: e.get_ref().clone(),
                }
            })?;
            held.push(index as u32);
        }
        Ok(Program {
            priority: self.priority(&p.priority, field("priority"), limits.root_priority)?,
            cpu: self.cpu(p.cpu.as_ref(), field("cpu"), limits.cpus)?,
            stack: self.bounded(&p.stack, field("stack"), MAX_STACK)?,
            heap: p.heap.as_ref().map(|h| self.bounded(h, field("heap"), MAX_HEAP)).transpose()?.unwrap_or(0),
            quota: p.quota.as_ref().map(|q| self.quota(q, &name, memserver)).transpose()?,
            frames: match (&p.frames, &p.quota) {
                (None, _) => 0,
                (Some(f), Some(_)) => self.bounded(f, field("frames"), MAX_FRAMES)?,
                (Some(f), None) => {
                    return Err(DescriptionError::FramesWithoutQuota { at: self.at(f), program: name.clone() })
                }
            },
            endpoints: held,
            elf: self.binary(raw, &p.elf, &p.cargo, owner())?,
            name,
        })
    }

    fn quota(
        &self,
        raw: &Spanned<RawQuota>,
        program: &str,
        memserver: Option<&MemServer<Binary>>,
    ) -> Result<Quota, DescriptionError> {
        let q = raw.get_ref();
        let Some(server) = memserver else {
            return Err(DescriptionError::ClientWithoutServer { at: self.at(raw), program: program.to_string() });
        };
        let bytes = q.bytes.get_ref().0;
        if bytes > server.memory {
            return Err(DescriptionError::QuotaAboveServerMemory {
                at: self.at(&q.bytes),
                program: program.to_string(),
                quota: bytes,
                memory: server.memory,
            });
        }
        let share = |n: Option<u32>| n.unwrap_or(memserver_protocol::Quota::DEFAULT_SHARE);
        Ok(Quota { bytes, frames: share(q.frames), structures: share(q.structures), areas: share(q.areas) })
    }

    fn priority(&self, value: &Spanned<i64>, field: Field, root: u8) -> Result<u8, DescriptionError> {
        let at = self.at(value);
        let priority = u8::try_from(*value.get_ref()).map_err(|_| DescriptionError::PriorityOutOfRange {
            at: at.clone(),
            field: field.clone(),
            value: *value.get_ref(),
        })?;
        if priority > root {
            return Err(DescriptionError::PriorityAboveRoot { at, field, value: priority, root });
        }
        Ok(priority)
    }

    fn cpu(&self, value: Option<&Spanned<u32>>, field: Field, cpus: u32) -> Result<u32, DescriptionError> {
        match value {
            Some(cpu) if *cpu.get_ref() >= cpus => {
                Err(DescriptionError::CpuOutOfRange { at: self.at(cpu), field, cpu: *cpu.get_ref(), cpus })
            }
            Some(cpu) => Ok(*cpu.get_ref()),
            None => Ok(0),
        }
    }

    /// The server's memory: a multiple of 2 MiB that the launcher can give
    /// in its untyped pieces.
    fn server_memory(&self, value: &Spanned<Size>) -> Result<u64, DescriptionError> {
        let bytes = self.size(value, Field { owner: Owner::MemServer, key: "memory" }, SERVER_MEMORY_MULTIPLE)?;
        match grant::pieces(bytes) {
            Some(_) => Ok(bytes),
            None => {
                Err(DescriptionError::ServerMemoryPieces { at: self.at(value), bytes, max_pieces: grant::MAX_PIECES })
            }
        }
    }

    /// A page-aligned size of at most `max` bytes (a stack or a heap).
    fn bounded(&self, value: &Spanned<Size>, field: Field, max: u64) -> Result<u64, DescriptionError> {
        let bytes = self.size(value, field.clone(), PAGE)?;
        if bytes > max {
            return Err(DescriptionError::SizeAboveMax { at: self.at(value), field, bytes, max });
        }
        Ok(bytes)
    }

    fn size(&self, value: &Spanned<Size>, field: Field, multiple: u64) -> Result<u64, DescriptionError> {
        let bytes = value.get_ref().0;
        if bytes == 0 {
            return Err(DescriptionError::ZeroSize { at: self.at(value), field });
        }
        if !bytes.is_multiple_of(multiple) {
            return Err(DescriptionError::UnalignedSize { at: self.at(value), field, bytes, multiple });
        }
        Ok(bytes)
    }

    fn binary<T>(
        &self,
        table: &Spanned<T>,
        elf: &Option<Spanned<PathBuf>>,
        cargo: &Option<Spanned<CargoBinary>>,
        owner: Owner,
    ) -> Result<Binary, DescriptionError> {
        match (elf, cargo) {
            (Some(_), Some(cargo)) => Err(DescriptionError::TwoBinaries { at: self.at(cargo), owner }),
            (None, None) => Err(DescriptionError::NoBinary { at: self.at(table), owner }),
            (Some(elf), None) => {
                let folder = self.file.parent().unwrap_or(Path::new(""));
                Ok(Binary { source: BinarySource::Elf(folder.join(elf.get_ref())), at: self.at(elf) })
            }
            (None, Some(cargo)) => {
                let mut binary = cargo.get_ref().clone();
                let folder = self.file.parent().unwrap_or(Path::new(""));
                binary.manifest = binary.manifest.map(|m| folder.join(m));
                Ok(Binary { source: BinarySource::Cargo(binary), at: self.at(cargo) })
            }
        }
    }
}

/// What the `[system]` settings bound.
struct Limits {
    root_priority: u8,
    cpus: u32,
}

/// The file as TOML gives it, with the places of the values checked
/// after parsing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDescription {
    system: Spanned<RawSystem>,
    memserver: Option<Spanned<RawMemServer>>,
    #[serde(default)]
    program: Vec<Spanned<RawProgram>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSystem {
    root: RawRoot,
    cpus: Option<Spanned<i64>>,
    memory: Option<Spanned<Size>>,
    root_priority: Option<Spanned<i64>>,
    #[serde(default)]
    endpoints: Vec<Spanned<String>>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawRoot {
    Launcher,
    Demo,
    Bench,
    Scale,
}

impl From<RawRoot> for RootKind {
    fn from(root: RawRoot) -> RootKind {
        match root {
            RawRoot::Launcher => RootKind::Launcher,
            RawRoot::Demo => RootKind::Demo,
            RawRoot::Bench => RootKind::Bench,
            RawRoot::Scale => RootKind::Scale,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemServer {
    elf: Option<Spanned<PathBuf>>,
    cargo: Option<Spanned<CargoBinary>>,
    memory: Spanned<Size>,
    priority: Spanned<i64>,
    cpu: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    name: Spanned<String>,
    elf: Option<Spanned<PathBuf>>,
    cargo: Option<Spanned<CargoBinary>>,
    priority: Spanned<i64>,
    cpu: Option<Spanned<u32>>,
    stack: Spanned<Size>,
    heap: Option<Spanned<Size>>,
    #[serde(default)]
    endpoints: Vec<Spanned<String>>,
    quota: Option<Spanned<RawQuota>>,
    frames: Option<Spanned<Size>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    bytes: Spanned<Size>,
    frames: Option<u32>,
    structures: Option<u32>,
    areas: Option<u32>,
}
