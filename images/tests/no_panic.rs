//! The memory server's panic sites stay audited: builds the server as the
//! demo system does, lists every call of a panicking function in its
//! ELF (`images::panic_sites`) and requires exactly the sites, with
//! their counts, of `docs/panic-sites.txt`, each of which
//! `docs/no-panic.md` explains.

use images::panic_sites;
use images::programs;
use images::workspace::Workspace;

#[test]
fn memserver_panic_sites_are_the_audited_ones() {
    let ws = Workspace::load().expect("cargo metadata");
    let elf = programs::build_memserver(&ws).expect("building the memory server");
    let found = panic_sites::sites(&elf).expect("listing the panic sites");
    let list = ws.root().join("docs/panic-sites.txt");
    let text = std::fs::read_to_string(&list).unwrap_or_else(|e| panic!("cannot read {}: {e}", list.display()));
    let audited = panic_sites::parse(&text).unwrap_or_else(|e| panic!("{}: {e:#}", list.display()));
    let (new, vanished) = panic_sites::differences(&found, &audited);
    if new.is_empty() && vanished.is_empty() {
        return;
    }
    let show = |lines: &[String]| {
        if lines.is_empty() {
            "  (none)\n".to_owned()
        } else {
            lines.iter().map(|l| format!("  {l}\n")).collect()
        }
    };
    panic!(
        "the panic sites of {} differ from docs/panic-sites.txt\nnew sites (or new counts):\n{}vanished sites (or old counts):\n{}\
         audit them in docs/no-panic.md and update docs/panic-sites.txt; the whole list now is:\n{}",
        elf.display(),
        show(&new),
        show(&vanished),
        panic_sites::format(&found)
    );
}
