//! Where the machine code refers to an imported function: call sites found from bytes.
//!
//! [`references`] scans the executable `PT_LOAD` segments of an x86-64 file for the
//! instructions through which position-independent code reaches an import: an indirect
//! `call`/`jmp` or a `mov` through the import's GOT slot (`ff 15`, `ff 25`, `8b /r` with a
//! RIP-relative operand), and a direct `call`/`jmp` (`e8`, `e9`) to a PLT stub that jumps
//! through that slot. A hit requires the 32-bit displacement to land exactly on the slot (or
//! stub) address, so stray byte patterns practically never match. This is not a disassembler:
//! a reference built at run time (a pointer from `dlsym`, a computed address) is not found,
//! which is why `dlsym`-style imports are findings of their own.
//!
//! [`FunctionIndex`] maps an address to the `.symtab` function that contains it.

use super::ElfFile;
use super::header::EM_X86_64;
use super::segments::{PF_X, PT_LOAD};
use super::symbols::SymbolTable;

/// At most this many references are returned (a crafted file could contain millions).
pub const MAX_REFERENCES: usize = 4096;

/// Sections whose jumps through a GOT slot are PLT stubs, not call sites.
const PLT_SECTIONS: &[&[u8]] = &[b".plt", b".plt.sec", b".plt.got"];

/// A reference to a GOT slot from the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    /// Address of the referring instruction.
    pub site: u64,
    /// The GOT slot it reaches.
    pub slot: u64,
}

fn disp32(bytes: &[u8], at: usize) -> Option<i64> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(i64::from(i32::from_le_bytes(raw)))
}

fn target(address: u64, next: u64, disp: i64) -> Option<u64> {
    address.checked_add(next)?.checked_add_signed(disp)
}

/// The instructions of the executable segments that reach any of `slots` (GOT slot
/// addresses). `None` if the machine is not x86-64 (no scan is made).
pub fn references(file: &ElfFile<'_>, slots: &[u64]) -> Option<Vec<Reference>> {
    if file.header.machine != EM_X86_64 {
        return None;
    }
    let mut found = Vec::new();
    if slots.is_empty() {
        return Some(found);
    }
    let mut slots = slots.to_vec();
    slots.sort_unstable();
    slots.dedup();
    let is_slot = |address: &u64| slots.binary_search(address).is_ok();
    let plt_ranges: Vec<(u64, u64)> = file
        .sections
        .iter()
        .filter(|s| {
            file.sections
                .name(s)
                .is_ok_and(|name| PLT_SECTIONS.contains(&name))
        })
        .filter_map(|s| Some((s.addr, s.addr.checked_add(s.size)?)))
        .take(PLT_SECTIONS.len())
        .collect();
    let in_plt = |address: u64| plt_ranges.iter().any(|(a, b)| (*a..*b).contains(&address));
    let segments: Vec<(u64, &[u8])> = file
        .segments
        .iter()
        .filter(|p| p.kind == PT_LOAD && p.flags & PF_X != 0)
        .filter_map(|p| Some((p.vaddr, p.file_bytes(file.data).ok()?)))
        .collect();

    // Pass 1: PLT stubs (`jmp *slot(%rip)`, possibly after `endbr64` and a `bnd` prefix), in
    // the PLT sections only.
    let mut stubs: Vec<(u64, u64)> = Vec::new();
    for section in file.sections.iter().filter(|s| {
        file.sections
            .name(s)
            .is_ok_and(|name| PLT_SECTIONS.contains(&name))
    }) {
        let Ok(bytes) = file.sections.data_of(section, file.data, "PLT section") else {
            continue;
        };
        let mut i = 0usize;
        while let Some(&first) = bytes.get(i) {
            let at = i;
            i = i.saturating_add(1);
            if first != 0xff || bytes.get(i) != Some(&0x25) {
                continue;
            }
            let Some(address) = section.addr.checked_add(at as u64) else {
                continue;
            };
            let Some(slot) =
                disp32(bytes, at.saturating_add(2)).and_then(|d| target(address, 6, d))
            else {
                continue;
            };
            if is_slot(&slot) {
                for back in [0u64, 1, 4, 5] {
                    if let Some(start) = address.checked_sub(back) {
                        stubs.push((start, slot));
                    }
                }
            }
        }
    }
    stubs.sort_unstable();
    stubs.dedup_by_key(|(start, _)| *start);

    // Pass 2: references from code outside the PLT. Most bytes are not one of the four
    // opcodes, so the loop checks the first byte before anything else.
    for &(base, bytes) in &segments {
        let mut i = 0usize;
        while let Some(&first) = bytes.get(i) {
            let at = i;
            i = i.saturating_add(1);
            if !matches!(first, 0xff | 0x8b | 0xe8 | 0xe9) {
                continue;
            }
            if found.len() >= MAX_REFERENCES {
                return Some(found);
            }
            let Some(&second) = bytes.get(i) else {
                break;
            };
            let Some(address) = base.checked_add(at as u64) else {
                continue;
            };
            let reached = match (first, second) {
                (0xff, 0x15 | 0x25) => disp32(bytes, at.saturating_add(2))
                    .and_then(|d| target(address, 6, d))
                    .filter(|slot| is_slot(slot) && !in_plt(address)),
                (0x8b, modrm) if modrm & 0xc7 == 0x05 => disp32(bytes, at.saturating_add(2))
                    .and_then(|d| target(address, 6, d))
                    .filter(is_slot),
                (0xe8 | 0xe9, _) if !stubs.is_empty() => disp32(bytes, at.saturating_add(1))
                    .and_then(|d| target(address, 5, d))
                    .and_then(|t| {
                        let index = stubs.binary_search_by_key(&t, |(start, _)| *start).ok()?;
                        stubs.get(index)
                    })
                    .map(|(_, slot)| *slot),
                _ => None,
            };
            if let Some(slot) = reached {
                found.push(Reference {
                    site: address,
                    slot,
                });
            }
        }
    }
    Some(found)
}

/// Defined functions of a symbol table by address, for finding which function contains an
/// address.
#[derive(Debug, Clone, Default)]
pub struct FunctionIndex<'data> {
    /// (start, end, name), sorted by start.
    functions: Vec<(u64, u64, &'data [u8])>,
}

impl<'data> FunctionIndex<'data> {
    /// Indexes the defined functions of `table` (one without a size, like the C runtime's
    /// `frame_dummy`, covers only its first byte).
    pub fn new(table: &SymbolTable<'data>) -> FunctionIndex<'data> {
        let mut functions: Vec<(u64, u64, &'data [u8])> = table
            .iter()
            .filter(|s| s.is_function() && s.is_defined())
            .filter_map(|s| Some((s.value, s.value.checked_add(s.size.max(1))?, s.name)))
            .collect();
        functions.sort_unstable();
        FunctionIndex { functions }
    }

    /// The name of the function containing `address`, if any.
    pub fn containing(&self, address: u64) -> Option<&'data [u8]> {
        let after = self
            .functions
            .partition_point(|(start, _, _)| *start <= address);
        let before = after.checked_sub(1)?;
        // Functions may nest or overlap (aliases): look back over those starting at or
        // before the address for one that still covers it.
        self.functions
            .get(..after)?
            .iter()
            .rev()
            .take(8)
            .find(|(start, end, _)| *start <= address && address < *end)
            .or_else(|| {
                self.functions
                    .get(before)
                    .filter(|(_, end, _)| address < *end)
            })
            .map(|(_, _, name)| *name)
    }

    /// Whether the index is empty (no `.symtab`, or no sized functions).
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }
}
