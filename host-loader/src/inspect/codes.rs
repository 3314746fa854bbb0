//! The catalogue of static inspection findings: each code has one severity and one meaning.
//!
//! Codes are stable: scripts and policies match on them. A code's severity never depends on
//! the file (a finding that is sometimes serious and sometimes not is two codes, e.g.
//! `IMPORT_RAW_SYSCALL` and `IMPORT_RAW_SYSCALL_RUNTIME`). `error` findings deny the plugin
//! (the policy engine turns each into a deny reason); `warning` explains and is shown by
//! `validate`; `info` is in the report only.

use super::Severity;
use serde::Serialize;

/// One finding kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Code {
    /// The stable code.
    pub code: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// What it means.
    pub meaning: &'static str,
}

macro_rules! codes {
    ($($name:ident = $severity:ident, $meaning:literal;)*) => {
        $(
            #[doc = $meaning]
            pub const $name: Code = Code {
                code: stringify!($name),
                severity: Severity::$severity,
                meaning: $meaning,
            };
        )*
        /// Every finding code, in catalogue order.
        pub const CATALOGUE: &[Code] = &[$($name),*];
    };
}

codes! {
    ABI_VERSION_UNSUPPORTED = Error, "the plugin's SDK ABI version is outside the range this host supports";
    ENTRY_SYMBOL_MISSING = Error, "a declared entry point's symbol is not exported and defined by the file";
    ENTRY_SYMBOL_NOT_FUNCTION = Error, "a declared entry point's symbol is not a function";
    SIGNATURE_MISMATCH = Error, "an entry point's signature differs from what the host expects for that hook";
    ENTRY_SYMBOL_UNDECLARED = Warning, "a symbol looks like an entry point but no manifest record declares it";
    HARDEN_EXEC_STACK = Error, "the stack would be executable (PT_GNU_STACK with X, or no PT_GNU_STACK)";
    HARDEN_WX_SEGMENT = Error, "a loadable segment is both writable and executable";
    HARDEN_TEXTREL = Error, "text relocations: the loader must write into code pages";
    HARDEN_RPATH_OUTSIDE = Error, "RPATH/RUNPATH makes the loader search outside the plugin's own directory";
    HARDEN_NEEDED_PATH = Error, "a DT_NEEDED entry names a file by path instead of a library by name";
    HARDEN_NEEDED_NOT_ALLOWED = Warning, "a DT_NEEDED library is outside the host's allow-list of system libraries";
    HARDEN_PREINIT_ARRAY = Error, "a pre-initialisation array (not valid in a shared object)";
    HARDEN_CONSTRUCTOR = Warning, "a load-time constructor (.init_array) in the plugin's own code";
    HARDEN_CONSTRUCTORS_RUNTIME = Info, "load-time constructors, all from the C runtime or the Rust standard library";
    HARDEN_UNRESOLVED_SYMBOL = Error, "an undefined non-weak symbol that none of the DT_NEEDED libraries defines";
    IMPORT_NETWORK = Error, "imports network functions without the net.connect permission";
    IMPORT_PROCESS = Error, "imports process creation functions without the process.spawn permission";
    IMPORT_PRIVILEGE = Error, "imports privilege or namespace functions (no permission grants them)";
    IMPORT_DYNAMIC_CODE = Error, "imports functions that load code the host never inspected (dlopen)";
    IMPORT_ANTI_DEBUG = Error, "imports process tracing functions (ptrace, process_vm_*), the anti-debugging toolkit";
    IMPORT_RAW_SYSCALL = Error, "calls raw syscall() from the plugin's own code (or from code that cannot be attributed)";
    IMPORT_RAW_SYSCALL_RUNTIME = Info, "imports syscall(), called only by the Rust standard library (futex, getrandom, statx)";
    IMPORT_GRANTED = Info, "imports functions of a class that a declared permission covers";
    IMPORT_NOTED = Info, "imports functions worth knowing about that the Rust standard library uses itself (mprotect, dlsym)";
}

/// The catalogue entry of `code`.
pub fn lookup(code: &str) -> Option<&'static Code> {
    CATALOGUE.iter().find(|c| c.code == code)
}
