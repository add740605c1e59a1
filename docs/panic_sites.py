#!/usr/bin/env python3
"""Lists every call site of a panicking function in a built seL4 program.

Usage: docs/panic_sites.py <ELF>   (for the memory server:
target/sel4/programs/release/memserver after `cargo run -p images --release -- run`)

Direct calls are resolved through the symbol table, indirect ones (the
programs are position independent, so most calls go through a table of
addresses) through the 8-byte slot they read. Prints `count caller -> callee`.
Needs binutils (objdump, nm, readelf)."""
import collections
import re
import struct
import subprocess
import sys

PANICKY = re.compile(r"panic|unwrap_failed|expect_failed|index_fail|bounds_check|assert_failed")


def main(elf):
    syms = {}
    for line in subprocess.run(["nm", "-C", elf], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3:
            syms[int(parts[0], 16)] = parts[2]
    sections = []
    for line in subprocess.run(["readelf", "-SW", elf], capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m:
            sections.append((int(m.group(2), 16), int(m.group(3), 16), int(m.group(4), 16)))
    data = open(elf, "rb").read()

    def word(addr):
        for base, offset, size in sections:
            if base and base <= addr < base + size:
                start = offset + addr - base
                return struct.unpack("<Q", data[start:start + 8])[0]
        return 0

    disassembly = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", elf], capture_output=True,
                                 text=True, check=True).stdout.splitlines()
    sites = collections.Counter()
    caller = None
    for line in disassembly:
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            caller = m.group(1)
            continue
        m = re.search(r"call\s+\*0x[0-9a-f]+\(%rip\)\s+# ([0-9a-f]+)", line)
        callee = syms.get(word(int(m.group(1), 16)), "") if m else ""
        m = re.search(r"(?:call|jmp)\s+([0-9a-f]+) <", line)
        if m:
            callee = syms.get(int(m.group(1), 16), "")
        if callee and PANICKY.search(callee) and not PANICKY.search(caller or ""):
            sites[(caller, callee)] += 1
    for (caller, callee), count in sorted(sites.items()):
        print(f"{count} {caller} -> {callee}")


if __name__ == "__main__":
    main(sys.argv[1])
