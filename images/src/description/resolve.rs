//! From a checked description to a system's files: every cargo binary is
//! checked against the workspace and every ELF path against the disk
//! before anything is built, then the binaries are built (each distinct
//! one once), every file is checked to be a static x86-64 executable, and
//! the memory the system needs is checked against the guest's RAM.

use super::error::{DescriptionError, MemoryUse, Owner};
use super::{Binary, BinarySource, CargoBinary, Description};
use crate::programs;
use crate::static_elf::{StaticElf, PAGE};
use crate::workspace::Workspace;
use ::system_image::{Part, SystemImage};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;

/// What the kernel, the root task's own image and seL4's boot objects take
/// of the guest's RAM: with 512 MiB, a root task of 8.4 MiB (today's demo)
/// is given 500 MiB of untyped memory.
pub const KERNEL_RESERVE: u64 = 4 << 20;
/// Each program's thread has one page of IPC buffer.
pub const IPC_BUFFER: u64 = PAGE;

/// A program's ELF file.
#[derive(Clone, Debug)]
pub struct ElfFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its bytes (shared by every program that uses the same file).
    pub bytes: Rc<[u8]>,
    /// Bytes of the frames its loadable segments take.
    pub load_bytes: u64,
}

/// A system whose every file is found, built and checked, and that fits
/// the guest's RAM.
#[derive(Debug)]
pub struct Resolved {
    /// The description.
    pub description: Description,
    /// The memory server's ELF file, if it has one.
    pub memserver: Option<ElfFile>,
    /// The programs' ELF files, in the description's order.
    pub programs: Vec<ElfFile>,
    /// The memory the system needs.
    pub needs: MemoryUse,
}

impl Resolved {
    /// The system as the root task reads it.
    pub fn image(&self) -> SystemImage<'_> {
        let elf = |part, _: &Binary| {
            let file = match part {
                Part::MemServer => self.memserver.as_ref(),
                Part::Program(i) => self.programs.get(i),
            };
            file.map(|f| &f.bytes[..]).ok_or(part)
        };
        self.description
            .system
            .as_ref()
            .try_map(String::as_str, elf)
            .unwrap_or_else(|part| panic!("a resolved system has an ELF file for each part, but not for {part:?}"))
    }

    /// The system image's blob, as the root task finds it after its image.
    pub fn blob(&self) -> Vec<u8> {
        ::system_image::encode(&self.image()).unwrap_or_else(|e| {
            panic!("a checked description always encodes, but {}: {e}", self.description.file.display())
        })
    }
}

/// Finds, builds and checks the files of `description`, and checks that
/// it fits the guest's RAM.
pub fn resolve(description: Description, ws: &Workspace) -> Result<Resolved, DescriptionError> {
    let system = &description.system;
    let mut binaries: Vec<(Owner, &Binary)> = Vec::new();
    if let Some(server) = &system.memserver {
        binaries.push((Owner::MemServer, &server.elf));
    }
    binaries.extend(system.programs.iter().map(|p| (Owner::Program(p.name.clone()), &p.elf)));
    for (owner, binary) in &binaries {
        match &binary.source {
            BinarySource::Cargo(cargo) => check_cargo(&ws.metadata, cargo).map_err(|problem| {
                DescriptionError::UnknownCargoTarget { at: binary.at.clone(), owner: owner.clone(), problem }
            })?,
            BinarySource::Elf(path) => {
                std::fs::metadata(path).map_err(|source| DescriptionError::MissingElf {
                    at: binary.at.clone(),
                    owner: owner.clone(),
                    path: path.clone(),
                    source,
                })?;
            }
        }
    }
    let mut built: BTreeMap<&CargoBinary, PathBuf> = BTreeMap::new();
    let mut files: HashMap<PathBuf, ElfFile> = HashMap::new();
    let mut elf_files = Vec::with_capacity(binaries.len());
    for (owner, binary) in &binaries {
        let path = match &binary.source {
            BinarySource::Elf(path) => path.clone(),
            BinarySource::Cargo(cargo) => match built.get(cargo) {
                Some(path) => path.clone(),
                None => {
                    let features = cargo.features.join(",");
                    let path = match &cargo.manifest {
                        None => programs::build_program(ws, &cargo.package, &cargo.bin, &features),
                        Some(m) => programs::build_manifest_program(ws, m, &cargo.package, &cargo.bin, &features),
                    };
                    let path = path.map_err(|e| DescriptionError::CargoBuild {
                        at: binary.at.clone(),
                        owner: owner.clone(),
                        message: format!(
                            "building binary `{}` of package `{}` failed: {e:#}",
                            cargo.bin, cargo.package
                        ),
                    })?;
                    built.insert(cargo, path.clone());
                    path
                }
            },
        };
        let file = match files.get(&path) {
            Some(file) => file.clone(),
            None => {
                let file = read_elf(owner, binary, path.clone())?;
                files.insert(path, file.clone());
                file
            }
        };
        elf_files.push(file);
    }
    let memserver = system.memserver.is_some().then(|| elf_files.remove(0));
    let mut resolved = Resolved { description, memserver, programs: elf_files, needs: MemoryUse::default() };
    resolved.needs = needs(&resolved);
    let d = &resolved.description;
    if resolved.needs.total() > d.memory {
        return Err(DescriptionError::DoesNotFit {
            at: d.memory_at.clone(),
            memory: d.memory,
            over: resolved.needs.total() - d.memory,
            needs: resolved.needs,
        });
    }
    Ok(resolved)
}

/// Reads the ELF file at `path` for `binary` and checks it.
fn read_elf(owner: &Owner, binary: &Binary, path: PathBuf) -> Result<ElfFile, DescriptionError> {
    let bytes: Rc<[u8]> = match std::fs::read(&path) {
        Ok(bytes) => bytes.into(),
        Err(source) => {
            return Err(DescriptionError::MissingElf { at: binary.at.clone(), owner: owner.clone(), path, source })
        }
    };
    let load_bytes = match StaticElf::parse(&bytes) {
        Ok(elf) => elf.load_bytes(),
        Err(reason) => {
            return Err(DescriptionError::NotStaticExecutable {
                at: binary.at.clone(),
                owner: owner.clone(),
                key: binary.key(),
                path,
                reason,
            })
        }
    };
    Ok(ElfFile { path, bytes, load_bytes })
}

/// Why the workspace cannot build `cargo`, if it cannot: this one, whose
/// metadata is `ours`, or the one of `cargo.manifest`.
fn check_cargo(ours: &cargo_metadata::Metadata, cargo: &CargoBinary) -> Result<(), String> {
    let theirs;
    let metadata = match &cargo.manifest {
        None => ours,
        Some(manifest) => {
            theirs = cargo_metadata::MetadataCommand::new()
                .manifest_path(manifest)
                .no_deps()
                .exec()
                .map_err(|e| format!("cannot read the cargo manifest {}: {e}", manifest.display()))?;
            &theirs
        }
    };
    let packages = metadata.workspace_packages();
    let names = |items: &mut dyn Iterator<Item = &str>| items.collect::<Vec<_>>().join(", ");
    let Some(package) = packages.iter().find(|p| p.name == cargo.package) else {
        let all = names(&mut packages.iter().map(|p| p.name.as_str()));
        return Err(format!("package `{}` is not in the workspace (its packages: {all})", cargo.package));
    };
    let bins = || package.targets.iter().filter(|t| t.is_bin());
    let Some(target) = bins().find(|t| t.name == cargo.bin) else {
        let all = names(&mut bins().map(|t| t.name.as_str()));
        return Err(format!("package `{}` has no binary `{}` (its binaries: {all})", cargo.package, cargo.bin));
    };
    if let Some(missing) = cargo.features.iter().find(|f| !package.features.contains_key(f.as_str())) {
        let all = names(&mut package.features.keys().map(String::as_str));
        return Err(format!("package `{}` has no feature `{missing}` (its features: {all})", cargo.package));
    }
    if let Some(required) = target.required_features.iter().find(|f| !cargo.features.contains(f)) {
        return Err(format!(
            "binary `{}` of package `{}` needs feature `{required}`: add it to `features`",
            cargo.bin, cargo.package
        ));
    }
    Ok(())
}

/// What `system` needs of the guest's RAM.
fn needs(resolved: &Resolved) -> MemoryUse {
    let system = &resolved.description.system;
    let threads = system.programs.len() as u64 + u64::from(system.memserver.is_some());
    let image = resolved.blob().len() as u64;
    MemoryUse {
        server: system.memserver.as_ref().map_or(0, |s| s.memory),
        loads: resolved.memserver.iter().chain(&resolved.programs).map(|f| f.load_bytes).sum(),
        stacks: system.programs.iter().map(|p| p.stack).sum(),
        heaps: system.programs.iter().map(|p| p.heap).sum(),
        frames: system.programs.iter().map(|p| p.frames).sum(),
        ipc_buffers: threads * IPC_BUFFER,
        image: image.next_multiple_of(PAGE),
        reserve: KERNEL_RESERVE,
    }
}
