//! Hardening checks: what the file asks of the dynamic loader before any entry point runs.
//!
//! Executable stack (`PT_GNU_STACK` with `PF_X`, or no `PT_GNU_STACK`, which the loader treats
//! as executable), writable and executable segments, text relocations, `RPATH`/`RUNPATH`
//! entries that are not inside `$ORIGIN`, `DT_NEEDED` entries that are paths or outside
//! [`ALLOWED_NEEDED`], pre-initialisation arrays, and the load-time constructors of
//! `.init_array`, each attributed to a function like the `syscall` call sites (see
//! [`super::imports`]). Constructors are a `warning`, not an `error`: the worker is fully
//! confined before it loads the plugin, so a constructor runs with no more power than an entry
//! point, but it runs on load, before the host calls anything, which a reviewer wants to know.

use super::Finding;
use super::codes;
use super::imports::{display, is_runtime};
use crate::elf::code::FunctionIndex;
use crate::elf::segments::{PF_W, PF_X, PT_GNU_STACK, PT_LOAD};
use crate::elf::{ElfError, ElfFile};

/// Libraries a plugin may need: the C library, the loader, and what Rust's standard library
/// links against.
pub const ALLOWED_NEEDED: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
];

/// Most constructors examined (a real object has a handful).
const MAX_CONSTRUCTORS: u64 = 4096;

/// Relocation types whose target is `addend` (RELATIVE) or `symbol + addend` (absolute).
const R_X86_64_64: u32 = 1;
const R_X86_64_RELATIVE: u32 = 8;
const R_AARCH64_ABS64: u32 = 257;
const R_AARCH64_RELATIVE: u32 = 1027;

/// Whether one RPATH/RUNPATH entry stays inside the plugin's own directory.
fn inside_origin(entry: &[u8]) -> bool {
    let rest = entry
        .strip_prefix(b"$ORIGIN")
        .or_else(|| entry.strip_prefix(b"${ORIGIN}"));
    match rest {
        Some([]) => true,
        Some(rest) => {
            rest.first() == Some(&b'/') && !rest.split(|&b| b == b'/').any(|part| part == b"..")
        }
        None => false,
    }
}

/// Adds the hardening findings of `file` to `out`.
pub(super) fn check(
    file: &ElfFile<'_>,
    functions: &FunctionIndex<'_>,
    out: &mut Vec<Finding>,
) -> Result<(), ElfError> {
    match file.segments.by_kind(PT_GNU_STACK) {
        Some(stack) if stack.flags & PF_X != 0 => out.push(Finding::new(
            &codes::HARDEN_EXEC_STACK,
            "PT_GNU_STACK asks for an executable stack (linked with `-z execstack`?)".to_string(),
            vec![format!("PT_GNU_STACK flags {:#x}", stack.flags)],
        )),
        Some(_) => {}
        None => out.push(Finding::new(
            &codes::HARDEN_EXEC_STACK,
            "no PT_GNU_STACK program header: the loader gives the process an executable stack"
                .to_string(),
            vec!["no PT_GNU_STACK".to_string()],
        )),
    }
    for (index, segment) in (0usize..).zip(file.segments.iter()) {
        if segment.kind == PT_LOAD && segment.flags & (PF_W | PF_X) == PF_W | PF_X {
            out.push(Finding::new(
                &codes::HARDEN_WX_SEGMENT,
                format!(
                    "loadable segment {index} at {:#x} ({} bytes) is writable and executable",
                    segment.vaddr, segment.memsz
                ),
                vec![format!("PT_LOAD {index} flags {:#x}", segment.flags)],
            ));
        }
    }
    let dynamic = &file.dynamic;
    if dynamic.textrel {
        out.push(Finding::new(
            &codes::HARDEN_TEXTREL,
            "text relocations (DT_TEXTREL / DF_TEXTREL): the loader must make code writable to patch it; build with -fPIC".to_string(),
            vec!["DT_TEXTREL".to_string()],
        ));
    }
    for (tag, values) in [("RPATH", &dynamic.rpath), ("RUNPATH", &dynamic.runpath)] {
        for value in values.iter() {
            let outside: Vec<String> = value
                .split(|&b| b == b':')
                .filter(|entry| !inside_origin(entry))
                .map(|entry| String::from_utf8_lossy(entry).into_owned())
                .collect();
            if !outside.is_empty() {
                out.push(Finding::new(
                    &codes::HARDEN_RPATH_OUTSIDE,
                    format!(
                        "{tag} `{}` makes the loader search outside the plugin's directory: {}",
                        String::from_utf8_lossy(value),
                        outside.join(", ")
                    ),
                    outside,
                ));
            }
        }
    }
    for needed in &dynamic.needed {
        let name = String::from_utf8_lossy(needed).into_owned();
        if needed.contains(&b'/') {
            out.push(Finding::new(
                &codes::HARDEN_NEEDED_PATH,
                format!("DT_NEEDED `{name}` is a path: the loader opens that exact file"),
                vec![name],
            ));
        } else if !ALLOWED_NEEDED.contains(&name.as_str()) {
            out.push(Finding::new(
                &codes::HARDEN_NEEDED_NOT_ALLOWED,
                format!(
                    "needs `{name}`, which is not in the host's allow-list ({})",
                    ALLOWED_NEEDED.join(", ")
                ),
                vec![name],
            ));
        }
    }
    if dynamic.preinit_array_size > 0 {
        out.push(Finding::new(
            &codes::HARDEN_PREINIT_ARRAY,
            format!(
                "DT_PREINIT_ARRAY of {} bytes: pre-initialisation functions are not allowed in a shared object",
                dynamic.preinit_array_size
            ),
            vec!["DT_PREINIT_ARRAY".to_string()],
        ));
    }
    constructors(file, functions, out)
}

fn constructors(
    file: &ElfFile<'_>,
    functions: &FunctionIndex<'_>,
    out: &mut Vec<Finding>,
) -> Result<(), ElfError> {
    let Some((address, size)) = file.dynamic.init_array else {
        return Ok(());
    };
    let word = file.header.word_size();
    let count = size.checked_div(word).unwrap_or(0).min(MAX_CONSTRUCTORS);
    let end = address.saturating_add(size);
    let mut runtime = Vec::new();
    let mut plugin = Vec::new();
    // The relocations that patch the array, sorted for lookup.
    let mut patches: Vec<&crate::elf::dynamic::Rela> = file
        .dynamic
        .relocations
        .iter()
        .filter(|rel| rel.offset >= address && rel.offset < end)
        .collect();
    patches.sort_by_key(|rel| rel.offset);
    for i in 0..count {
        let Some(slot) = i
            .checked_mul(word)
            .and_then(|offset| address.checked_add(offset))
        else {
            break;
        };
        // In a position-independent object the array holds zeros and a RELATIVE relocation
        // per entry carries the function's address.
        let relocated = patches
            .binary_search_by_key(&slot, |rel| rel.offset)
            .ok()
            .and_then(|index| patches.get(index))
            .and_then(|rel| match rel.kind {
                R_X86_64_RELATIVE | R_AARCH64_RELATIVE => Some(rel.addend.cast_unsigned()),
                R_X86_64_64 | R_AARCH64_ABS64 => file
                    .dynsym
                    .get(rel.symbol)
                    .and_then(|s| s.value.checked_add_signed(rel.addend)),
                _ => None,
            });
        let target = match relocated {
            Some(target) => target,
            None => file.word_at_address(slot, "constructor array (DT_INIT_ARRAY)")?,
        };
        if target == 0 || target == u64::MAX {
            continue; // Empty and sentinel entries.
        }
        match functions.containing(target) {
            Some(function) if is_runtime(function) => runtime.push(display(function)),
            Some(function) => plugin.push(format!("{} at {target:#x}", display(function))),
            None => plugin.push(format!(
                "code at {target:#x} (no function symbol covers it)"
            )),
        }
    }
    if !plugin.is_empty() {
        out.push(Finding::new(
            &codes::HARDEN_CONSTRUCTOR,
            format!(
                "{} load-time constructor(s) in .init_array outside the C and Rust runtime, run when the worker loads the plugin: {}",
                plugin.len(),
                plugin.join("; ")
            ),
            plugin,
        ));
    }
    if !runtime.is_empty() {
        out.push(Finding::new(
            &codes::HARDEN_CONSTRUCTORS_RUNTIME,
            format!(
                "{} load-time constructor(s) from the C runtime and the Rust standard library",
                runtime.len()
            ),
            runtime,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_paths() {
        for inside in ["$ORIGIN", "${ORIGIN}", "$ORIGIN/lib", "$ORIGIN/a/b"] {
            assert!(inside_origin(inside.as_bytes()), "{inside}");
        }
        for outside in ["/tmp", "$ORIGIN/../lib", "lib", "", "$ORIGINAL", "/usr/lib"] {
            assert!(!inside_origin(outside.as_bytes()), "{outside}");
        }
    }
}
