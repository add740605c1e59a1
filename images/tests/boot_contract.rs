//! The boot contract as written against the code: the README's "Boot
//! contract" section is the client crate's documentation of
//! `client_lib::boot_contract` word for word, and every number the text
//! gives a constant's name, every slot it names, and the region it tells
//! programs to keep free are the code's.

use client_lib::boot_contract::{self as contract, slot};
use std::collections::BTreeMap;

/// The contract's text, as rustdoc shows it.
const CONTRACT: &str = include_str!("../../client-lib/docs/boot-contract.md");
const README: &str = include_str!("../../README.md");

/// Every constant the text may name, with its value in the code.
fn constants() -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("MEMSERVER", slot::MEMSERVER),
        ("FAULT", slot::FAULT),
        ("LAUNCHER", slot::LAUNCHER),
        ("ENDPOINTS", slot::ENDPOINTS),
        ("FRAMES", slot::FRAMES),
        ("FRAMES_BITS", contract::FRAMES_BITS.into()),
        ("MAX_FRAMES", contract::MAX_FRAMES),
        ("CNODE_BITS", contract::CNODE_BITS),
        ("CLIENT_BASE", contract::CLIENT_BASE),
        ("IPC_BUFFER", contract::IPC_BUFFER),
        ("STACK_TOP", contract::STACK_TOP),
        ("HEAP", contract::HEAP),
        ("MAX_STACK", contract::MAX_STACK),
        ("MAX_HEAP", contract::MAX_HEAP),
        ("LAUNCHER_AREA_START", contract::LAUNCHER_AREA_START),
        ("LAUNCHER_AREA_END", contract::LAUNCHER_AREA_END),
        ("REGION_START", contract::REGION_START),
        ("REGION_END", contract::REGION_END),
        ("VERDICT_LABEL", contract::VERDICT_LABEL),
        ("CONSOLE_LABEL", sel4_layer::print::CONSOLE_LABEL),
        ("LINE_BYTES", sel4_layer::print::LINE_BYTES as u64),
    ])
}

/// A number as the text writes it: decimal, or hex with `_` separators.
fn number(text: &str) -> Option<u64> {
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => digits.parse().ok(),
    }
}

/// The token at the start of `text` (after white space) that a number can
/// be.
fn number_token(text: &str) -> &str {
    let text = text.trim_start();
    let end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
    &text[..end]
}

/// Every `` `NAME` = value `` of the text, in order.
fn assignments(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("` =") {
        let name_start = rest[..i].rfind('`').map_or(0, |j| j + 1);
        found.push((rest[name_start..i].to_string(), number_token(&rest[i + 3..]).to_string()));
        rest = &rest[i + 3..];
    }
    found
}

/// The slot table's rows: (slot, constant name).
fn slot_rows(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let slot = number(cells.get(1)?)?;
            let name = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((slot, name.to_string()))
        })
        .collect()
}

#[test]
fn the_readme_section_is_the_crate_documentation_word_for_word() {
    let start = README.find("\n## Boot contract\n").expect("the README has no \"Boot contract\" section");
    let body = &README[start + "\n## Boot contract\n".len()..];
    let section = &body[..body.find("\n## ").unwrap_or(body.len())];
    assert_eq!(section.trim(), CONTRACT.trim(), "README's Boot contract differs from client-lib/docs/boot-contract.md");
}

#[test]
fn every_constant_the_contract_names_has_the_code_s_value() {
    let constants = constants();
    let mut seen = BTreeMap::new();
    for (name, value) in assignments(CONTRACT) {
        let code = *constants.get(name.as_str()).unwrap_or_else(|| panic!("`{name}` is no constant of the contract"));
        assert_eq!(number(&value), Some(code), "the text says `{name}` = {value}, the code {code:#x}");
        seen.insert(name, ());
    }
    for (slot, name) in slot_rows(CONTRACT) {
        let code = *constants.get(name.as_str()).unwrap_or_else(|| panic!("slot table: `{name}` is no constant"));
        assert_eq!(slot, code, "the slot table puts `{name}` in slot {slot}, the code in {code}");
        seen.insert(name, ());
    }
    let unnamed: Vec<_> = constants.keys().filter(|name| !seen.contains_key(**name)).collect();
    assert!(unnamed.is_empty(), "the contract never gives the value of {unnamed:?}");
}

#[test]
fn every_slot_and_cnode_size_the_prose_names_is_the_table_s() {
    let table: Vec<u64> = slot_rows(CONTRACT).into_iter().map(|(slot, _)| slot).collect();
    for (i, _) in CONTRACT.match_indices("slot ") {
        let token = number_token(&CONTRACT[i + 5..]);
        if let Some(n) = number(token) {
            assert!(table.contains(&n), "the text names slot {n}, which the slot table does not have");
        }
    }
    for (i, _) in CONTRACT.match_indices("2^") {
        let bits = number(number_token(&CONTRACT[i + 2..]));
        assert_eq!(bits, Some(contract::CNODE_BITS), "the text gives the CNode 2^{bits:?} slots");
    }
}

#[test]
fn the_region_programs_keep_free_is_the_server_s() {
    use memserver_core::layout;
    assert_eq!((contract::REGION_START, contract::REGION_END), (layout::REGION_START, layout::REGION_END));
    assert_eq!(contract::CLIENT_BASE, memserver_protocol::bootstrap::badge::CLIENT_BASE);
}
