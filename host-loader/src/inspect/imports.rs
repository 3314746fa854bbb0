//! Import analysis: what the plugin's dynamic imports reach, compared with its permissions.
//!
//! Each undefined dynamic symbol is looked up in [`CLASSES`]. An import of a class that no
//! declared permission covers is an `error` finding with the symbols as evidence:
//!
//! - network (`socket`, `connect`, `getaddrinfo`, ...): only `net.connect` grants direct
//!   sockets (`net.http` is performed by the host, so it does not);
//! - process creation (`fork`, `execve`, `system`, `posix_spawn`, ...): `process.spawn`;
//! - privilege and namespaces (`setuid`, `capset`, `prctl`, `unshare`, ...), tracing
//!   (`ptrace`, `process_vm_readv`: anti-debugging and injection) and loading code the host
//!   never inspected (`dlopen`): no permission grants them, and the sandbox refuses them at
//!   run time, so a plugin that imports them is refused before it runs. Anti-debugging is
//!   `error`, not `warning`: a plugin has no legitimate use for tracing, and one that checks
//!   for a debugger is hiding behaviour from review.
//!
//! `syscall` is special: it bypasses import analysis (any system call through one import),
//! so it is always reported, but the Rust standard library imports it itself (futex waits,
//! `getrandom`, `statx`) in every plugin. Imports alone cannot tell the two apart, so the
//! analysis looks at the call sites ([`crate::elf::code::references`]): every instruction
//! that reaches the `syscall` GOT slot is attributed, through `.symtab`, to the function that
//! contains it, and the function's crate is read from its mangled name. Call sites only in
//! `std`/`core`/`alloc` give `IMPORT_RAW_SYSCALL_RUNTIME` (info); any other call site, or one
//! that cannot be attributed (a stripped file, code outside every function, a machine other
//! than x86-64), gives `IMPORT_RAW_SYSCALL` (error) naming the calling functions. The
//! attribution is evidence, not proof: a plugin can name a function to look like `std`, or
//! reach `syscall` through a pointer from `dlsym`; the seccomp allow-list in the worker is
//! the barrier, this finding is an early, explained refusal of the plain case.

use super::Finding;
use super::codes::{self, Code};
use crate::elf::ElfFile;
use crate::elf::code::{self as machine_code, FunctionIndex};
use plugin_manifest::Grant;

/// What an import can reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportClass {
    /// Direct network access.
    Network,
    /// Creating or replacing processes.
    Process,
    /// Changing credentials, capabilities or namespaces.
    Privilege,
    /// Loading code the host never inspected.
    DynamicCode,
    /// Tracing or reading other processes.
    AntiDebug,
    /// Any system call, through one import.
    RawSyscall,
    /// Worth knowing, used by the Rust standard library itself.
    Noted,
}

/// Every classified import name, by class.
pub const CLASSES: &[(ImportClass, &[&str])] = &[
    (
        ImportClass::Network,
        &[
            "socket",
            "socketpair",
            "connect",
            "bind",
            "listen",
            "accept",
            "accept4",
            "getaddrinfo",
            "gethostbyname",
            "gethostbyname_r",
            "gethostbyaddr",
            "sendto",
            "sendmsg",
            "sendmmsg",
            "recvfrom",
            "recvmsg",
            "recvmmsg",
        ],
    ),
    (
        ImportClass::Process,
        &[
            "fork",
            "vfork",
            "clone",
            "clone3",
            "execve",
            "execveat",
            "fexecve",
            "execv",
            "execvp",
            "execvpe",
            "execl",
            "execlp",
            "execle",
            "system",
            "popen",
            "posix_spawn",
            "posix_spawnp",
            "daemon",
        ],
    ),
    (
        ImportClass::Privilege,
        &[
            "setuid",
            "setgid",
            "seteuid",
            "setegid",
            "setreuid",
            "setregid",
            "setresuid",
            "setresgid",
            "setgroups",
            "setfsuid",
            "setfsgid",
            "capset",
            "prctl",
            "chroot",
            "pivot_root",
            "unshare",
            "setns",
            "mount",
            "umount",
            "umount2",
            "init_module",
            "finit_module",
            "delete_module",
            "bpf",
        ],
    ),
    (ImportClass::DynamicCode, &["dlopen", "dlmopen"]),
    (
        ImportClass::AntiDebug,
        &["ptrace", "process_vm_readv", "process_vm_writev"],
    ),
    (ImportClass::RawSyscall, &["syscall"]),
    (
        ImportClass::Noted,
        &[
            "mprotect",
            "pkey_mprotect",
            "dlsym",
            "dlvsym",
            "memfd_create",
        ],
    ),
];

/// The class of an imported symbol name.
pub fn classify(name: &[u8]) -> Option<ImportClass> {
    CLASSES
        .iter()
        .find(|(_, names)| names.iter().any(|n| n.as_bytes() == name))
        .map(|(class, _)| *class)
}

/// Crates whose code is the Rust runtime that every plugin carries.
pub const RUNTIME_CRATES: &[&str] = &["std", "core", "alloc"];

/// Functions of the C runtime objects (`crtbegin.o`, `crti.o`) linked into every object.
pub const CRT_FUNCTIONS: &[&str] = &[
    "frame_dummy",
    "register_tm_clones",
    "deregister_tm_clones",
    "__do_global_dtors_aux",
    "_init",
    "_fini",
];

/// The crate a mangled Rust symbol belongs to: the crate root of its path (for an `impl`, the
/// crate the impl is written in). Handles the v0 scheme (`_R...`) and the legacy one
/// (`_ZN...`); `None` for anything else.
pub fn crate_of(mangled: &[u8]) -> Option<&[u8]> {
    if let Some(rest) = mangled.strip_prefix(b"_R") {
        return v0_crate(rest);
    }
    let rest = mangled.strip_prefix(b"_ZN")?;
    let (ident, _) = ident(rest, false)?;
    // `<std..io..Stderr as ...>`: legacy impl paths start with the escaped `<`.
    match ident.strip_prefix(b"_$LT$") {
        Some(inner) => {
            let end = inner
                .iter()
                .position(|&b| b == b'.' || b == b'$')
                .unwrap_or(inner.len());
            inner.get(..end)
        }
        None => Some(ident),
    }
}

/// `<decimal length>[_]<bytes>` at the start of `s`, and the rest (the `_` separator is
/// v0's, when `v0`).
fn ident(s: &[u8], v0: bool) -> Option<(&[u8], &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 6 {
        return None;
    }
    let len: usize = std::str::from_utf8(s.get(..digits)?).ok()?.parse().ok()?;
    let mut rest = s.get(digits..)?;
    if v0 && let Some(stripped) = rest.strip_prefix(b"_") {
        rest = stripped;
    }
    Some((rest.get(..len)?, rest.get(len..)?))
}

/// Skips a v0 disambiguator `s<base62>_`, if present.
fn skip_disambiguator(s: &[u8]) -> Option<&[u8]> {
    match s.strip_prefix(b"s") {
        Some(rest) => {
            let end = rest.iter().position(|&b| b == b'_')?;
            rest.get(end.checked_add(1)?..)
        }
        None => Some(s),
    }
}

fn v0_crate(mut s: &[u8]) -> Option<&[u8]> {
    // An optional decimal encoding version.
    while s.first().is_some_and(u8::is_ascii_digit) {
        s = s.get(1..)?;
    }
    // The path's prefix tags nest towards the crate root, which comes first.
    for _ in 0..64 {
        match s.first()? {
            b'N' => s = s.get(2..)?,
            b'I' => s = s.get(1..)?,
            b'M' | b'X' => s = skip_disambiguator(s.get(1..)?)?,
            b'C' => {
                let rest = skip_disambiguator(s.get(1..)?)?;
                if rest.first() == Some(&b'u') {
                    return None; // Punycode: no runtime crate is named that way.
                }
                return ident(rest, true).map(|(name, _)| name);
            }
            _ => return None,
        }
    }
    None
}

/// Whether `function` (a symbol name) is part of the C or Rust runtime.
pub fn is_runtime(function: &[u8]) -> bool {
    CRT_FUNCTIONS.iter().any(|f| f.as_bytes() == function)
        || crate_of(function)
            .is_some_and(|krate| RUNTIME_CRATES.iter().any(|r| r.as_bytes() == krate))
}

/// A readable form of a symbol name (demangled when it is a Rust name).
pub fn display(function: &[u8]) -> String {
    let text = String::from_utf8_lossy(function);
    format!("{:#}", rustc_demangle::demangle(&text))
}

fn granted(grants: &[Grant], kind: &str) -> Option<String> {
    grants
        .iter()
        .find(|g| g.kind == kind)
        .map(ToString::to_string)
}

/// Adds the import findings of `file` under `grants` to `out`.
pub(super) fn check(
    file: &ElfFile<'_>,
    grants: &[Grant],
    functions: &FunctionIndex<'_>,
    out: &mut Vec<Finding>,
) {
    let mut by_class: Vec<(ImportClass, Vec<String>)> = Vec::new();
    for symbol in file.dynsym.iter().filter(|s| !s.is_defined()) {
        if let Some(class) = classify(symbol.name) {
            match by_class.iter_mut().find(|(c, _)| *c == class) {
                Some((_, names)) => names.push(symbol.display_name()),
                None => by_class.push((class, vec![symbol.display_name()])),
            }
        }
    }
    for (class, names) in by_class {
        let list = names.join(", ");
        let (code, message): (&Code, String) = match class {
            ImportClass::Network => match granted(grants, "net.connect") {
                Some(grant) => (
                    &codes::IMPORT_GRANTED,
                    format!("imports network functions ({list}), covered by `{grant}`"),
                ),
                None => (
                    &codes::IMPORT_NETWORK,
                    format!(
                        "imports network functions ({list}) but declares no `net.connect` permission (`net.http` requests are made by the host and need no socket)"
                    ),
                ),
            },
            ImportClass::Process => match granted(grants, "process.spawn") {
                Some(grant) => (
                    &codes::IMPORT_GRANTED,
                    format!("imports process functions ({list}), covered by `{grant}`"),
                ),
                None => (
                    &codes::IMPORT_PROCESS,
                    format!(
                        "imports process creation functions ({list}) but declares no `process.spawn` permission"
                    ),
                ),
            },
            ImportClass::Privilege => (
                &codes::IMPORT_PRIVILEGE,
                format!(
                    "imports privilege or namespace functions ({list}); no permission grants them and the sandbox refuses them"
                ),
            ),
            ImportClass::DynamicCode => (
                &codes::IMPORT_DYNAMIC_CODE,
                format!(
                    "imports {list}: it could load code that was never inspected; plugins must be one self-contained object"
                ),
            ),
            ImportClass::AntiDebug => (
                &codes::IMPORT_ANTI_DEBUG,
                format!(
                    "imports process tracing functions ({list}): anti-debugging or injection; no permission grants them"
                ),
            ),
            ImportClass::Noted => (
                &codes::IMPORT_NOTED,
                format!(
                    "imports {list} (memory protection / symbol lookup; the Rust standard library uses these itself)"
                ),
            ),
            ImportClass::RawSyscall => {
                let (code, message, evidence) = raw_syscall(file, functions);
                out.push(Finding::new(code, message, evidence));
                continue;
            }
        };
        out.push(Finding::new(code, message, names));
    }
}

/// The `IMPORT_RAW_SYSCALL*` finding: who calls `syscall`.
fn raw_syscall(
    file: &ElfFile<'_>,
    functions: &FunctionIndex<'_>,
) -> (&'static Code, String, Vec<String>) {
    let slots: Vec<u64> = file
        .dynamic
        .relocations
        .iter()
        .filter(|r| {
            file.dynsym
                .get(r.symbol)
                .is_some_and(|s| r.symbol != 0 && s.name == b"syscall")
        })
        .map(|r| r.offset)
        .collect();
    let Some(references) = machine_code::references(file, &slots) else {
        return (
            &codes::IMPORT_RAW_SYSCALL,
            "imports syscall(), which bypasses import analysis; its call sites are only attributed on x86-64, so they cannot be told apart from the standard library's here".to_string(),
            vec!["syscall".to_string()],
        );
    };
    let mut outside: Vec<String> = Vec::new();
    let mut runtime = 0usize;
    for reference in &references {
        match functions.containing(reference.site) {
            Some(function) if is_runtime(function) => runtime = runtime.saturating_add(1),
            Some(function) => {
                let name = format!("{} (call at {:#x})", display(function), reference.site);
                if !outside.iter().any(|o| o.starts_with(&display(function))) {
                    outside.push(name);
                }
            }
            None => outside.push(format!(
                "code at {:#x} outside every known function{}",
                reference.site,
                if functions.is_empty() {
                    " (the file has no symbol table: keep it, e.g. `strip = \"debuginfo\"`, so call sites can be attributed)"
                } else {
                    ""
                }
            )),
        }
        if outside.len() >= 16 {
            break;
        }
    }
    if !outside.is_empty() {
        return (
            &codes::IMPORT_RAW_SYSCALL,
            format!(
                "calls raw syscall() from outside the Rust runtime, bypassing import analysis: {}",
                outside.join("; ")
            ),
            outside,
        );
    }
    if references.is_empty() && !slots.is_empty() {
        // Imported and bound, but no direct reference: it could only be reached indirectly.
        return (
            &codes::IMPORT_RAW_SYSCALL_RUNTIME,
            "imports syscall() but no code refers to it directly".to_string(),
            vec!["syscall".to_string()],
        );
    }
    (
        &codes::IMPORT_RAW_SYSCALL_RUNTIME,
        format!(
            "imports syscall(), called only by the Rust standard library ({runtime} call sites in std/core/alloc)"
        ),
        vec!["syscall".to_string()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_of_mangled_names() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "_RNvMNtNtNtNtCsjrHSEGnQ3l9_3std3sys4sync5mutex5futexNtB2_5Mutex14lock_contended",
                Some("std"),
            ),
            (
                "_RINvNtCsgEmfK2I1SDS_4core3ptr13drop_in_placeINtNtB4_6result6ResultuEB1b_",
                Some("core"),
            ),
            (
                "_RNvXsp_NtNtCsjrHSEGnQ3l9_3std2io5stdioRNtB5_6StderrNtB7_5Write9write_fmt",
                Some("std"),
            ),
            (
                "_RNvCs1234_19hostile_raw_syscall7analyze",
                Some("hostile_raw_syscall"),
            ),
            ("_ZN3std2io5stdio6_print17h0123456789abcdefE", Some("std")),
            (
                "_ZN50_$LT$std..io..Stderr$u20$as$u20$std..io..Write$GT$9write_fmt17h01E",
                Some("std"),
            ),
            ("frame_dummy", None),
            ("_R", None),
            ("_RC99999999_x", None),
        ];
        for (name, expected) in cases {
            assert_eq!(
                crate_of(name.as_bytes()),
                expected.map(str::as_bytes),
                "{name}"
            );
        }
        assert!(is_runtime(b"frame_dummy"));
        assert!(!is_runtime(b"_RNvCs1234_19hostile_raw_syscall7analyze"));
        assert_eq!(classify(b"connect"), Some(ImportClass::Network));
        assert_eq!(classify(b"syscall"), Some(ImportClass::RawSyscall));
        assert_eq!(classify(b"malloc"), None);
        assert!(codes::IMPORT_RAW_SYSCALL.severity == super::super::Severity::Error);
    }
}
