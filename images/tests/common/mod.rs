//! What the description, packing and launcher tests share: a
//! root-task-like static executable built with rustc, the bad
//! descriptions, each with the place and field its error must name, and
//! the boot of a fixture system.
#![allow(dead_code, reason = "each test binary uses its own part of this module")]

use images::description::DescriptionError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `images run` of the system `tests/fixtures/NAME/system.toml` (a crate
/// of its own, as a user's would be), as the user runs it.
pub fn boot_fixture(name: &str) -> std::process::Output {
    let system = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/{name}/system.toml"));
    Command::new(env!("CARGO_BIN_EXE_images"))
        .args(["run", "--timeout", "900", "--system"])
        .arg(&system)
        .output()
        .expect("running images")
}

/// A scratch folder of this test binary.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `tests/fixtures/root_like.rs` built as root-task/build.rs links the
/// root task, referring to `_end` or not.
pub fn root_like(refers_to_end: bool) -> &'static Path {
    static WITH_END: OnceLock<PathBuf> = OnceLock::new();
    static WITHOUT_END: OnceLock<PathBuf> = OnceLock::new();
    let (cell, name) = if refers_to_end { (&WITH_END, "root-like") } else { (&WITHOUT_END, "root-like-no-end") };
    cell.get_or_init(|| {
        let out = scratch("fixtures").join(name);
        let partial = out.with_extension(format!("partial-{}", std::process::id()));
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/root_like.rs");
        let mut rustc = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
        rustc.args(["--edition", "2021", "-C", "panic=abort", "-C", "opt-level=1"]);
        for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie"] {
            rustc.arg("-C").arg(format!("link-arg={arg}"));
        }
        if !refers_to_end {
            rustc.args(["--cfg", "no_end"]);
        }
        let status = rustc.arg("-o").arg(&partial).arg(&source).status().expect("running rustc");
        assert!(status.success(), "building {} failed", source.display());
        std::fs::rename(&partial, &out).unwrap();
        out
    })
}

/// A bad description: its text, with `@@` where the error must point (the
/// marker is removed), the field the message must name, and its variant.
pub struct Case {
    pub name: &'static str,
    pub text: String,
    pub field: &'static str,
    pub is: fn(&DescriptionError) -> bool,
}

/// A `[system]` and `[memserver]` that are fine, for cases about programs.
const HEAD: &str = r#"[system]
root = "launcher"
cpus = 2
endpoints = ["pipe"]

[memserver]
cargo = { package = "memserver", bin = "memserver", features = ["sel4"] }
memory = "64 MiB"
priority = 200
"#;

/// A program that is fine but for `extra` (fields after its name and
/// binary) and `binary` (the `elf` or `cargo` line).
fn program(binary: &str, extra: &str) -> String {
    format!("{HEAD}\n[[program]]\nname = \"p\"\n{binary}\npriority = 150\nstack = \"16 KiB\"\n{extra}\n")
}

const CLIENT: &str = r#"cargo = { package = "root-task", bin = "agent", features = ["sel4"] }"#;

/// Every way a description can be wrong, one case or more per error.
pub fn cases() -> Vec<Case> {
    let root_like = root_like(true).display().to_string();
    let not_static = std::env::current_exe().unwrap().display().to_string();
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shared-buffer/Cargo.toml").display().to_string();
    use DescriptionError as E;
    vec![
        Case {
            name: "syntax",
            text: "[system]\nroot = @@\n".into(),
            field: "",
            is: |e| matches!(e, E::Toml { .. }),
        },
        Case {
            name: "unknown-field",
            text: program(CLIENT, "@@colour = \"red\""),
            field: "in `program`: unknown field `colour`",
            is: |e| matches!(e, E::Toml { .. }),
        },
        Case {
            name: "missing-field",
            text: format!("{HEAD}\n@@[[program]]\nname = \"p\"\n{CLIENT}\nstack = 4096\n"),
            field: "in `program`: missing field `priority`",
            is: |e| matches!(e, E::Toml { .. }),
        },
        Case {
            name: "bad-size",
            text: program(CLIENT, "heap = @@\"64 MB\""),
            field: "in `program.heap`: `64 MB` is not a size",
            is: |e| matches!(e, E::Toml { .. }),
        },
        Case {
            name: "unknown-root",
            text: "[system]\nroot = @@\"kernel\"\n".into(),
            field: "in `system.root`: unknown variant `kernel`",
            is: |e| matches!(e, E::Toml { .. }),
        },
        Case {
            name: "duplicate-program",
            text: format!("{}\n[[program]]\nname = @@\"p\"\n{CLIENT}\npriority = 1\nstack = 4096\n", program(CLIENT, "")),
            field: "program \"p\", field `name`: the name is already the program's at line 12",
            is: |e| matches!(e, E::DuplicateProgram { .. }),
        },
        Case {
            name: "duplicate-endpoint",
            text: "[system]\nroot = \"launcher\"\nendpoints = [\"pipe\", @@\"pipe\"]\n".into(),
            field: "`endpoints`",
            is: |e| matches!(e, E::DuplicateEndpoint { .. }),
        },
        Case {
            name: "priority-above-255",
            text: program(CLIENT, "").replace("priority = 150", "priority = @@300"),
            field: "program \"p\", field `priority`",
            is: |e| matches!(e, E::PriorityOutOfRange { .. }),
        },
        Case {
            name: "priority-above-root",
            text: program(CLIENT, "")
                .replace("cpus = 2", "cpus = 2\nroot-priority = 180")
                .replace("priority = 200", "priority = @@181"),
            field: "[memserver], field `priority`",
            is: |e| matches!(e, E::PriorityAboveRoot { .. }),
        },
        Case {
            name: "cpus-out-of-range",
            text: "[system]\nroot = \"demo\"\ncpus = @@5\n".into(),
            field: "`cpus`",
            is: |e| matches!(e, E::CpusOutOfRange { .. }),
        },
        Case {
            name: "cpu-not-booted",
            text: program(CLIENT, "cpu = @@2"),
            field: "program \"p\", field `cpu`",
            is: |e| matches!(e, E::CpuOutOfRange { .. }),
        },
        Case {
            name: "undeclared-endpoint",
            text: program(CLIENT, "endpoints = [\"pipe\", @@\"log\"]"),
            field: "`endpoints`: endpoint \"log\"",
            is: |e| matches!(e, E::UndeclaredEndpoint { .. }),
        },
        Case {
            name: "zero-stack",
            text: program(CLIENT, "").replace("stack = \"16 KiB\"", "stack = @@0"),
            field: "program \"p\", field `stack`",
            is: |e| matches!(e, E::ZeroSize { .. }),
        },
        Case {
            name: "unaligned-heap",
            text: program(CLIENT, "heap = @@5000"),
            field: "program \"p\", field `heap`",
            is: |e| matches!(e, E::UnalignedSize { .. }),
        },
        Case {
            name: "unaligned-server-memory",
            text: program(CLIENT, "").replace("memory = \"64 MiB\"", "memory = @@\"3 MiB\""),
            field: "[memserver], field `memory`",
            is: |e| matches!(e, E::UnalignedSize { .. }),
        },
        Case {
            name: "stack-above-max",
            text: program(CLIENT, "").replace("stack = \"16 KiB\"", "stack = @@\"64 MiB\""),
            field: "program \"p\", field `stack`: 64 MiB is more than the launcher maps (32 MiB)",
            is: |e| matches!(e, E::SizeAboveMax { .. }),
        },
        Case {
            name: "heap-above-max",
            text: program(CLIENT, "heap = @@\"33 MiB\""),
            field: "program \"p\", field `heap`: 33 MiB is more than the launcher maps (32 MiB)",
            is: |e| matches!(e, E::SizeAboveMax { .. }),
        },
        Case {
            name: "frames-above-max",
            text: program(CLIENT, "quota = { bytes = \"1 MiB\" }\nframes = @@\"2 MiB\""),
            field: "program \"p\", field `frames`: 2 MiB is more than",
            is: |e| matches!(e, E::SizeAboveMax { .. }),
        },
        Case {
            name: "frames-unaligned",
            text: program(CLIENT, "quota = { bytes = \"1 MiB\" }\nframes = @@5000"),
            field: "program \"p\", field `frames`",
            is: |e| matches!(e, E::UnalignedSize { .. }),
        },
        Case {
            name: "frames-without-quota",
            text: program(CLIENT, "frames = @@\"16 KiB\""),
            field: "program \"p\", field `frames`: frames are for vmap",
            is: |e| matches!(e, E::FramesWithoutQuota { .. }),
        },
        Case {
            name: "server-memory-in-too-many-pieces",
            text: program(CLIENT, "").replace("memory = \"64 MiB\"", "memory = @@\"130 MiB\""),
            field: "[memserver], field `memory`: 130 MiB cannot be given as at most 64 equal untyped pieces",
            is: |e| matches!(e, E::ServerMemoryPieces { .. }),
        },
        Case {
            name: "missing-manifest",
            text: program("cargo = @@{ manifest = \"nope/Cargo.toml\", package = \"p\", bin = \"p\" }", ""),
            field: "program \"p\", field `cargo`: cannot read the cargo manifest",
            is: |e| matches!(e, E::UnknownCargoTarget { .. }),
        },
        Case {
            name: "unknown-bin-of-manifest",
            text: program(
                &format!("cargo = @@{{ manifest = \"{example}\", package = \"shared-buffer\", bin = \"nope\" }}"),
                "",
            ),
            field: "field `cargo`: package `shared-buffer` has no binary `nope` (its binaries: reader, writer)",
            is: |e| matches!(e, E::UnknownCargoTarget { .. }),
        },
        Case {
            name: "client-without-server",
            text: format!(
                "[system]\nroot = \"launcher\"\n\n[[program]]\nname = \"p\"\n{CLIENT}\npriority = 1\nstack = 4096\nquota = @@{{ bytes = 4096 }}\n"
            ),
            field: "program \"p\", field `quota`",
            is: |e| matches!(e, E::ClientWithoutServer { .. }),
        },
        Case {
            name: "quota-above-server-memory",
            text: program(CLIENT, "quota = { bytes = @@\"65 MiB\", frames = 10 }"),
            field: "field `quota.bytes`",
            is: |e| matches!(e, E::QuotaAboveServerMemory { .. }),
        },
        Case {
            name: "no-binary",
            text: format!("{HEAD}\n@@[[program]]\nname = \"p\"\npriority = 1\nstack = 4096\n"),
            field: "program \"p\": no binary",
            is: |e| matches!(e, E::NoBinary { .. }),
        },
        Case {
            name: "two-binaries",
            text: program("elf = \"p.elf\"\ncargo = @@{ package = \"root-task\", bin = \"agent\" }", ""),
            field: "program \"p\", field `cargo`",
            is: |e| matches!(e, E::TwoBinaries { .. }),
        },
        Case {
            name: "unknown-package",
            text: program("cargo = @@{ package = \"nope\", bin = \"agent\" }", ""),
            field: "field `cargo`: package `nope` is not in the workspace",
            is: |e| matches!(e, E::UnknownCargoTarget { .. }),
        },
        Case {
            name: "unknown-bin",
            text: program("cargo = @@{ package = \"root-task\", bin = \"nope\" }", ""),
            field: "field `cargo`: package `root-task` has no binary `nope`",
            is: |e| matches!(e, E::UnknownCargoTarget { .. }),
        },
        Case {
            name: "unknown-feature",
            text: program("cargo = @@{ package = \"root-task\", bin = \"agent\", features = [\"nope\"] }", ""),
            field: "field `cargo`: package `root-task` has no feature `nope`",
            is: |e| matches!(e, E::UnknownCargoTarget { .. }),
        },
        Case {
            name: "required-feature",
            text: program("cargo = @@{ package = \"root-task\", bin = \"agent\" }", ""),
            field: "field `cargo`: binary `agent` of package `root-task` needs feature `sel4`",
            is: |e| matches!(e, E::UnknownCargoTarget { .. }),
        },
        Case {
            name: "missing-elf",
            text: program("elf = @@\"missing.elf\"", ""),
            field: "program \"p\", field `elf`: cannot read ELF file",
            is: |e| matches!(e, E::MissingElf { .. }),
        },
        Case {
            name: "not-an-elf",
            text: program("elf = @@\"not-an-elf.txt\"", ""),
            field: "program \"p\", field `elf`",
            is: |e| matches!(e, E::NotStaticExecutable { .. }),
        },
        Case {
            name: "pie-elf",
            text: program(&format!("elf = @@\"{not_static}\""), ""),
            field: "not a static x86-64 executable: of ELF type 3",
            is: |e| matches!(e, E::NotStaticExecutable { .. }),
        },
        Case {
            name: "cargo-build-fails",
            text: program("cargo = @@{ package = \"root-task\", bin = \"root-task\", features = [\"sel4\"] }", ""),
            field: "program \"p\", field `cargo`: building binary `root-task` of package `root-task` failed",
            is: |e| matches!(e, E::CargoBuild { .. }),
        },
        Case {
            name: "does-not-fit",
            text: format!(
                "[system]\nroot = \"launcher\"\nmemory = @@\"16 MiB\"\n\n[memserver]\nelf = \"{root_like}\"\nmemory = \"8 MiB\"\npriority = 200\n\n[[program]]\nname = \"p\"\nelf = \"{root_like}\"\npriority = 1\nstack = \"16 KiB\"\nheap = \"4 MiB\"\n"
            ),
            field: "[system], field `memory`: the system needs ",
            is: |e| matches!(e, E::DoesNotFit { .. }),
        },
    ]
}

/// Writes `case` to the scratch folder (with the file `not-an-elf.txt`
/// beside it) and returns its path and where its error must point.
pub fn write(case: &Case) -> (PathBuf, String) {
    let dir = scratch("descriptions");
    std::fs::write(dir.join("not-an-elf.txt"), "this is not an ELF file\n").unwrap();
    let marker = case.text.find("@@").unwrap_or_else(|| panic!("case {} has no @@", case.name));
    let text = case.text.replacen("@@", "", 1);
    let before = &text[..marker];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    let path = dir.join(format!("{}.toml", case.name));
    std::fs::write(&path, text).unwrap();
    let at = format!("{}:{line}:{column}", path.display());
    (path, at)
}
