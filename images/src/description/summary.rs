//! A resolved system for people: its settings, a line per program, and the
//! memory it needs of the guest's RAM.

use super::resolve::{ElfFile, Resolved};
use super::size::human;
use ::system_image::RootKind;
use std::fmt;

impl fmt::Display for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.description;
        let system = &d.system;
        writeln!(
            f,
            "system {}: root task \"{}\" (priority {}), {} CPU(s), {} of guest RAM",
            d.file.display(),
            match system.root {
                RootKind::Launcher => "launcher",
                RootKind::Demo => "demo",
                RootKind::Bench => "bench",
                RootKind::Scale => "scale",
            },
            system.root_priority,
            system.cpus,
            human(d.memory)
        )?;
        match system.memserver.as_ref().zip(self.memserver.as_ref()) {
            Some((s, elf)) => writeln!(
                f,
                "memory server: {} of memory, priority {}, CPU {}, {}",
                human(s.memory),
                s.priority,
                s.cpu,
                file(elf)
            )?,
            None => writeln!(f, "memory server: none")?,
        }
        let endpoints = if system.endpoints.is_empty() { "none".to_string() } else { system.endpoints.join(", ") };
        writeln!(f, "endpoints: {endpoints}")?;
        writeln!(f, "programs: {}", system.programs.len())?;
        for (p, elf) in system.programs.iter().zip(&self.programs) {
            let quota = match p.quota {
                Some(q) => {
                    let limit = |n: u32| if n == u32::MAX { "any".to_string() } else { n.to_string() };
                    format!(
                        "client (quota {}, frames {}, structures {}, areas {})",
                        human(q.bytes),
                        limit(q.frames),
                        limit(q.structures),
                        limit(q.areas)
                    )
                }
                None => "not a client".to_string(),
            };
            let held: Vec<&str> = p.endpoints.iter().map(|&e| system.endpoints[e as usize].as_str()).collect();
            let heap = if p.heap == 0 { "no heap".to_string() } else { format!("heap {}", human(p.heap)) };
            let quota = if p.frames == 0 { quota } else { format!("{quota}, frames {}", human(p.frames)) };
            writeln!(
                f,
                "  {}: priority {}, CPU {}, stack {}, {heap}, {quota}, endpoints [{}], {}",
                p.name,
                p.priority,
                p.cpu,
                human(p.stack),
                held.join(", "),
                file(elf)
            )?;
        }
        write!(f, "memory: needs {} of {} ({})", human(self.needs.total()), human(d.memory), self.needs)
    }
}

/// An ELF file and what it loads.
fn file(elf: &ElfFile) -> String {
    format!("{} (loads {})", elf.path.display(), human(elf.load_bytes))
}
