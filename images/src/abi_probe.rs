//! Reads seL4 ABI numbers from the configured kernel tree: writes a C probe
//! that includes libsel4's headers (plus the headers libsel4's generators
//! make) and the kernel build's generated invocation headers, compiles it
//! with the host gcc and runs it. The `abi` test compares its output with
//! the numbers client-lib hard-codes.

use crate::kernel::KernelBuild;
use crate::{host_deps, workspace::Workspace};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The libsel4 bitfield specifications whose generated headers
/// `sel4/types.h` includes (message info, cap rights, fault tags...), each
/// with the header `bitfield_gen.py` makes of it, as libsel4's Makefile
/// does for x86_64.
const BITFIELD_HEADERS: &[(&str, &str)] = &[
    ("include/sel4/types_64.bf", "sel4/types_gen.h"),
    ("include/sel4/shared_types_64.bf", "sel4/shared_types_gen.h"),
    ("sel4_arch_include/x86_64/sel4/sel4_arch/types.bf", "sel4/sel4_arch/types_gen.h"),
];

/// The headers the probe includes after the host's `stdio.h`, `stddef.h`
/// and `stdint.h`: libsel4's user-visible API, the kernel's generated
/// invocation labels, and the kernel header that says how many message
/// registers travel in CPU registers (`n_msgRegisters`, which libsel4 5.0.0
/// does not name; it expects `stdint.h` before it).
const PROBE_INCLUDES: &[&str] =
    &["sel4/types.h", "sel4/bootinfo.h", "arch/api/invocation.h", "mode/machine/registerset.h"];

/// Defines of the kernel's standalone build that its headers depend on:
/// `HAVE_AUTOCONF` (the configuration is in `autoconf.h`) and
/// `CONFIG_DEBUG_BUILD`, which the kernel Makefile adds for `DEBUG=1`
/// (see `kernel::build`) and which adds the debug system calls.
const DEFINES: &[&str] = &["-DHAVE_AUTOCONF", "-DCONFIG_DEBUG_BUILD"];

/// The value of each C expression in `exprs` (an integer constant, an
/// `offsetof` or a `sizeof`) in the configured tree of `kernel`, keyed by
/// the expression's text.
pub fn probe(ws: &Workspace, kernel: &KernelBuild, exprs: &[&str]) -> Result<BTreeMap<String, i64>> {
    let dir = kernel.build_dir.with_file_name("abi-probe");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let generated = dir.join("include");
    std::fs::create_dir_all(generated.join("sel4/sel4_arch"))?;
    let flags = compile_flags(kernel, &generated);
    generate_libsel4_headers(ws, kernel, &generated, &flags)?;

    let source = dir.join("probe.c");
    std::fs::write(&source, probe_source(exprs))?;
    let binary = dir.join("probe");
    run(Command::new("gcc").args(&flags).arg(&source).arg("-o").arg(&binary))?;
    let output = run(&mut Command::new(&binary))?;
    let values = parse_output(&String::from_utf8(output.stdout)?)?;
    if let Some(missing) = exprs.iter().find(|e| !values.contains_key(**e)) {
        bail!("the ABI probe printed no value for `{missing}`");
    }
    Ok(values)
}

/// Include folders and defines for the `.bf` preprocessing and the probe.
fn compile_flags(kernel: &KernelBuild, generated: &Path) -> Vec<String> {
    let src = &kernel.source;
    let libsel4 = src.join("libsel4");
    let dirs: [PathBuf; 8] = [
        generated.to_path_buf(),
        libsel4.join("include"),
        libsel4.join("arch_include/x86"),
        libsel4.join("sel4_arch_include/x86_64"),
        libsel4.join("sel4_plat_include/pc99"),
        src.join("include/plat/pc99"),
        src.join("include/arch/x86/arch/64"),
        kernel.build_dir.clone(),
    ];
    DEFINES.iter().map(|d| d.to_string()).chain(dirs.iter().map(|d| format!("-I{}", d.display()))).collect()
}

/// Makes the headers libsel4's Makefile would generate and the probe's
/// includes need, with libsel4's own generators from the kernel tree.
fn generate_libsel4_headers(ws: &Workspace, kernel: &KernelBuild, out: &Path, flags: &[String]) -> Result<()> {
    // The venv `kernel::build` creates holds the generators' PyPI packages.
    let python = host_deps::ensure_python_venv(&ws.python_venv())?.join("python3");
    let tools = kernel.source.join("libsel4/tools");
    let generator = |script: &str| {
        let mut command = Command::new(&python);
        // `bitfield_gen.py` imports `lex` and `umm` from the kernel's tools.
        command.env("PYTHONPATH", kernel.source.join("tools")).arg(tools.join(script));
        command
    };
    for (spec, header) in BITFIELD_HEADERS {
        let preprocessed = out.join(header).with_extension("pbf");
        let text = run(Command::new("cpp").args(flags).arg("-P").arg(kernel.source.join("libsel4").join(spec)))?;
        std::fs::write(&preprocessed, text.stdout)?;
        run(generator("bitfield_gen.py").args(["--environment", "libsel4"]).arg(&preprocessed).arg(out.join(header)))?;
    }
    run(generator("syscall_header_gen.py")
        .arg("--xml")
        .arg(kernel.source.join("include/api/syscall.xml"))
        .arg("--libsel4_header")
        .arg(out.join("sel4/syscall.h")))?;
    Ok(())
}

/// A C program that prints one `EXPR VALUE` line per expression.
fn probe_source(exprs: &[&str]) -> String {
    let mut c = String::from(
        "/* Written by images::abi_probe. */\n#include <stdio.h>\n#include <stddef.h>\n#include <stdint.h>\n",
    );
    for header in PROBE_INCLUDES {
        c.push_str(&format!("#include <{header}>\n"));
    }
    c.push_str("\nint main(void) {\n");
    for expr in exprs {
        // A Rust debug string of printable ASCII is also a C string literal.
        c.push_str(&format!("    printf(\"%s %lld\\n\", {expr:?}, (long long)({expr}));\n"));
    }
    c.push_str("    return 0;\n}\n");
    c
}

fn parse_output(text: &str) -> Result<BTreeMap<String, i64>> {
    text.lines()
        .map(|line| {
            let (expr, value) = line.rsplit_once(' ').with_context(|| format!("bad probe line `{line}`"))?;
            Ok((expr.to_string(), value.parse().with_context(|| format!("bad probe line `{line}`"))?))
        })
        .collect()
}

/// Runs `command`, failing with its stderr unless it succeeds.
fn run(command: &mut Command) -> Result<Output> {
    let output = command.output().with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed ({}):\n{}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_source_prints_each_expression_by_its_text() {
        let c = probe_source(&["offsetof(seL4_IPCBuffer, msg)"]);
        assert!(c.contains(
            "printf(\"%s %lld\\n\", \"offsetof(seL4_IPCBuffer, msg)\", (long long)(offsetof(seL4_IPCBuffer, msg)));"
        ));
    }

    #[test]
    fn output_lines_split_at_the_last_space() {
        let values = parse_output("seL4_SysCall -1\noffsetof(seL4_IPCBuffer, msg) 8\n").unwrap();
        assert_eq!(values["seL4_SysCall"], -1);
        assert_eq!(values["offsetof(seL4_IPCBuffer, msg)"], 8);
        assert!(parse_output("nospace").is_err());
    }
}
