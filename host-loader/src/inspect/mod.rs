//! Static inspection: everything the host can learn about a plugin file without running it.
//!
//! [`inspect_bytes`] parses the ELF view ([`crate::elf`]), decodes the manifest, and checks:
//!
//! - each declared entry point against the exported symbols (exported, defined, a function)
//!   and the host's expected signature for that hook, all mismatches at once, each as "host
//!   expects X, plugin has Y"; the SDK ABI version against the supported range;
//! - hardening ([`hardening`]): executable stack, W+X segments, text relocations,
//!   RPATH/RUNPATH, `DT_NEEDED`, load-time constructors;
//! - imports ([`imports`]): each classified import compared with the declared permissions.
//!
//! The result is a [`Report`] of facts and [`Finding`]s, each with a stable code from
//! [`codes`], a severity and its evidence. [`check_unresolved`] adds the one check that needs
//! other files (the libraries the plugin links against). Nothing here maps or executes the
//! file: a load-time constructor in the plugin cannot run here.

pub mod codes;
pub mod hardening;
pub mod imports;

use crate::elf::code::FunctionIndex;
use crate::elf::symbols::{STB_GLOBAL, SymbolTable};
use crate::elf::{self, ElfError, ElfView};
use crate::hooks;
use codes::Code;
use plugin_manifest::{Grant, HOOK_SYMBOL_PREFIX, Manifest, SDK_ABI_VERSION, Signature};
use plugin_sdk::abi::MIN_SUPPORTED_ABI_VERSION;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Suspicious, not blocking.
    Warning,
    /// High severity: the plugin (or that entry point) must not be loaded.
    Error,
}

impl Severity {
    /// The lowercase name, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One fact found by inspection, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code, e.g. `SIGNATURE_MISMATCH` (see [`codes::CATALOGUE`]).
    pub code: &'static str,
    /// How serious it is (always the catalogue's severity for the code).
    pub severity: Severity,
    /// What was found.
    pub message: String,
    /// The evidence: symbols, paths, values.
    pub evidence: Vec<String>,
}

impl Finding {
    /// A finding of kind `code`, with the code's severity.
    pub fn new(code: &Code, message: String, evidence: Vec<String>) -> Finding {
        Finding {
            code: code.code,
            severity: code.severity,
            message,
            evidence,
        }
    }
}

/// What inspection found out about one entry point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryReport {
    /// Hook name.
    pub hook: String,
    /// Exported symbol.
    pub symbol: String,
    /// Declared signature, e.g. `(json Story) -> json WordStats`.
    pub signature: String,
    /// Declared signature hash.
    pub signature_hash: String,
    /// The symbol is exported and defined in this file.
    pub exported: bool,
    /// The symbol is a function.
    pub is_function: bool,
    /// The hash the host expects for this hook, when it knows the hook.
    pub expected_hash: Option<String>,
    /// Whether this entry point may be called: exported function, matching signature.
    pub callable: bool,
}

/// The result of inspecting one file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The file inspected.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// The decoded, validated manifest.
    pub manifest: Manifest,
    /// One report per declared entry point.
    pub entry_points: Vec<EntryReport>,
    /// Everything noteworthy, most serious first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The report of `hook`'s entry point.
    pub fn entry_point(&self, hook: &str) -> Option<&EntryReport> {
        self.entry_points.iter().find(|e| e.hook == hook)
    }

    /// Findings that forbid loading the plugin at all (severity `error`).
    pub fn blocking_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    fn sort_findings(&mut self) {
        self.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hardening and import findings of a shared object for this host, under `grants` (what the
/// manifest declares; empty for a file that is not a plugin). Used by [`inspect_bytes`], and
/// on its own to examine any shared object.
pub fn static_findings(view: &ElfView<'_>, grants: &[Grant]) -> Result<Vec<Finding>, ElfError> {
    let file = view.file();
    // The functions of `.symtab` (none if stripped), for attributing addresses.
    let symtab: Option<SymbolTable<'_>> = file.symtab()?;
    let functions = symtab.as_ref().map(FunctionIndex::new).unwrap_or_default();
    let mut findings = Vec::new();
    hardening::check(file, &functions, &mut findings)?;
    imports::check(file, grants, &functions, &mut findings);
    Ok(findings)
}

/// Inspects a plugin file's bytes. `path` is only used in the report.
pub fn inspect_bytes(path: &Path, bytes: &[u8]) -> Result<Report, ElfError> {
    let view = ElfView::parse(bytes)?;
    let manifest = elf::read_manifest(&view)?;
    let mut findings = static_findings(&view, &manifest.info.permissions)?;

    let abi = manifest.abi.sdk_abi_version;
    if !(MIN_SUPPORTED_ABI_VERSION..=SDK_ABI_VERSION).contains(&abi) {
        findings.push(Finding::new(
            &codes::ABI_VERSION_UNSUPPORTED,
            format!(
                "plugin was built for SDK ABI version {abi}, this host supports versions {MIN_SUPPORTED_ABI_VERSION} to {SDK_ABI_VERSION}; rebuild it with a compatible plugin-sdk"
            ),
            vec![format!("sdk_abi_version {abi}")],
        ));
    }

    let mut entry_points = Vec::new();
    for entry in &manifest.entry_points {
        let symbol = view
            .dynamic_symbols()
            .find(|s| s.name == entry.symbol.as_bytes() && s.is_defined() && s.is_visible());
        let exported = symbol.is_some();
        let is_function = symbol.is_some_and(|s| s.is_function());
        if !exported {
            findings.push(Finding::new(
                &codes::ENTRY_SYMBOL_MISSING,
                format!(
                    "entry point `{}`: symbol `{}` is not exported by this file",
                    entry.hook, entry.symbol
                ),
                vec![entry.symbol.clone()],
            ));
        } else if !is_function {
            findings.push(Finding::new(
                &codes::ENTRY_SYMBOL_NOT_FUNCTION,
                format!(
                    "entry point `{}`: symbol `{}` is not a function",
                    entry.hook, entry.symbol
                ),
                vec![entry.symbol.clone()],
            ));
        }
        let expected = hooks::known(&entry.hook).map(|spec| spec.signature());
        let expected_hash = expected.as_ref().map(|sig: &Signature| sig.hash(abi));
        let mut signature_ok = expected_hash
            .as_ref()
            .is_none_or(|hash| *hash == entry.signature_hash);
        if plugin_manifest::is_lifecycle_hook(&entry.hook)
            && let Err(expected) = hooks::check_lifecycle(&entry.hook, &entry.signature)
        {
            signature_ok = false;
            findings.push(Finding::new(
                &codes::SIGNATURE_MISMATCH,
                format!(
                    "lifecycle entry point `{}`: host expects {expected}, plugin has {}",
                    entry.hook, entry.signature
                ),
                vec![entry.symbol.clone(), entry.signature.to_string()],
            ));
        }
        if let (Some(expected), false) = (&expected, signature_ok) {
            findings.push(Finding::new(
                &codes::SIGNATURE_MISMATCH,
                format!(
                    "entry point `{}`: host expects {} (hash {}), plugin has {} (hash {})",
                    entry.hook,
                    expected,
                    expected.hash(abi),
                    entry.signature,
                    entry.signature_hash
                ),
                vec![
                    entry.symbol.clone(),
                    format!("expected {expected} {}", expected.hash(abi)),
                    format!("found {} {}", entry.signature, entry.signature_hash),
                ],
            ));
        }
        entry_points.push(EntryReport {
            hook: entry.hook.clone(),
            symbol: entry.symbol.clone(),
            signature: entry.signature.to_string(),
            signature_hash: entry.signature_hash.clone(),
            exported,
            is_function,
            expected_hash,
            callable: exported && is_function && signature_ok,
        });
    }

    for symbol in view
        .dynamic_symbols()
        .filter(|s| s.is_defined() && s.name.starts_with(HOOK_SYMBOL_PREFIX.as_bytes()))
    {
        if !manifest
            .entry_points
            .iter()
            .any(|e| e.symbol.as_bytes() == symbol.name)
        {
            findings.push(Finding::new(
                &codes::ENTRY_SYMBOL_UNDECLARED,
                format!(
                    "symbol `{}` looks like an entry point but no manifest record declares it",
                    symbol.display_name()
                ),
                vec![symbol.display_name()],
            ));
        }
    }

    let mut report = Report {
        path: path.to_path_buf(),
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        manifest,
        entry_points,
        findings,
    };
    report.sort_findings();
    Ok(report)
}

/// Everything static inspection does with untrusted bytes, for fuzzing and robustness tests:
/// the class-agnostic parse ([`crate::elf::ElfFile::parse`]), its symbol table, the host's
/// view, hardening and import analysis with no grants, and the full plugin inspection. Returns
/// the first error (a clean, coded error is the expected outcome for malformed input); it must
/// never panic, hang, or allocate more than a small multiple of `bytes.len()`.
pub fn exercise(bytes: &[u8]) -> Result<(), ElfError> {
    if let Ok(file) = crate::elf::ElfFile::parse(bytes) {
        let _ = file.symtab();
    }
    let view = ElfView::parse(bytes)?;
    match inspect_bytes(Path::new("fuzz.so"), bytes) {
        // Not a plugin: the hardening and import analysis still runs on the file.
        Err(ElfError::NoManifest { .. }) => static_findings(&view, &[]).map(|_| ()),
        other => other.map(|_| ()),
    }
}

/// Reads and inspects the file at `path`, unresolved symbols included (against the library
/// closure the loader would open). Nothing is loaded or sealed: this is `inspect`'s view.
pub fn inspect_file(path: &Path) -> Result<Report, crate::Error> {
    let bytes = crate::plugin::read_bounded(path).map_err(|error| crate::Error::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let mut report = inspect_bytes(path, &bytes).map_err(|error| crate::Error::Inspect {
        path: path.to_path_buf(),
        error,
    })?;
    let libraries =
        crate::sandbox::landlock::library_closure(&crate::elf::needed_libraries(&bytes));
    check_unresolved(&mut report, &bytes, &libraries);
    Ok(report)
}

/// Adds `HARDEN_UNRESOLVED_SYMBOL` findings to `report`: undefined, non-weak dynamic symbols
/// of `bytes` that none of `libraries` (the plugin's library closure, as the loader would
/// find it) defines. `RTLD_NOW` would fail on them at load time; saying so here names them.
/// Libraries that cannot be read or parsed are skipped (the loader will report them).
pub fn check_unresolved(report: &mut Report, bytes: &[u8], libraries: &[PathBuf]) {
    let Ok(view) = ElfView::parse(bytes) else {
        return;
    };
    let mut defined: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    for library in libraries {
        let Ok(lib) = crate::plugin::read_bounded(library) else {
            continue;
        };
        let Ok(lib_view) = ElfView::parse(&lib) else {
            continue;
        };
        defined.extend(
            lib_view
                .dynamic_symbols()
                .filter(|s| s.is_defined() && s.is_visible())
                .map(|s| s.name.to_vec()),
        );
    }
    let missing: Vec<String> = view
        .dynamic_symbols()
        .filter(|s| !s.is_defined() && s.bind == STB_GLOBAL && !defined.contains(s.name))
        .map(|s| s.display_name())
        .collect();
    if missing.is_empty() {
        return;
    }
    report.findings.push(Finding::new(
        &codes::HARDEN_UNRESOLVED_SYMBOL,
        format!(
            "{} undefined symbol(s) that no needed library defines ({}); loading would fail: {}",
            missing.len(),
            if libraries.is_empty() {
                "no library found".to_string()
            } else {
                libraries
                    .iter()
                    .map(|l| l.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            missing.join(", ")
        ),
        missing,
    ));
    report.sort_findings();
}
