//! Static inspection: everything the host can learn about a plugin file without running it.
//!
//! [`inspect_bytes`] parses the ELF view, decodes the manifest, and checks each declared entry
//! point against the exported symbols and the host's expected signatures, producing a
//! [`Report`] of facts and [`Finding`]s. It never maps or executes the file: a load-time
//! constructor in the plugin cannot run here.

use crate::elf::{self, ElfError, ElfView};
use crate::hooks;
use plugin_manifest::{HOOK_SYMBOL_PREFIX, Manifest, SDK_ABI_VERSION, Signature};
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
    /// The plugin (or that entry point) must not be loaded.
    Error,
}

/// One fact found by inspection, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable code, e.g. `SIGNATURE_MISMATCH`.
    pub code: &'static str,
    /// How serious it is.
    pub severity: Severity,
    /// What was found, with the evidence.
    pub message: String,
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

    /// Findings that forbid loading the plugin at all.
    pub fn blocking_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Inspects a plugin file's bytes. `path` is only used in the report.
pub fn inspect_bytes(path: &Path, bytes: &[u8]) -> Result<Report, ElfError> {
    let view = ElfView::parse(bytes)?;
    let manifest = elf::read_manifest(&view)?;
    let symbols = view.dynamic_symbols();
    let mut findings = Vec::new();

    let abi = manifest.abi.sdk_abi_version;
    if !(MIN_SUPPORTED_ABI_VERSION..=SDK_ABI_VERSION).contains(&abi) {
        findings.push(Finding {
            code: "ABI_VERSION_UNSUPPORTED",
            severity: Severity::Error,
            message: format!(
                "plugin was built for SDK ABI version {abi}, this host supports versions {MIN_SUPPORTED_ABI_VERSION} to {SDK_ABI_VERSION}; rebuild it with a compatible plugin-sdk"
            ),
        });
    }

    let mut entry_points = Vec::new();
    for entry in &manifest.entry_points {
        let symbol = symbols
            .iter()
            .find(|s| s.name == entry.symbol && s.defined && s.exported);
        let exported = symbol.is_some();
        let is_function = symbol.is_some_and(|s| s.is_function);
        if !exported {
            findings.push(Finding {
                code: "ENTRY_SYMBOL_MISSING",
                severity: Severity::Error,
                message: format!(
                    "entry point `{}`: symbol `{}` is not exported by this file",
                    entry.hook, entry.symbol
                ),
            });
        } else if !is_function {
            findings.push(Finding {
                code: "ENTRY_SYMBOL_NOT_FUNCTION",
                severity: Severity::Error,
                message: format!(
                    "entry point `{}`: symbol `{}` is not a function",
                    entry.hook, entry.symbol
                ),
            });
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
            findings.push(Finding {
                code: "SIGNATURE_MISMATCH",
                severity: Severity::Error,
                message: format!(
                    "lifecycle entry point `{}`: host expects {expected}, plugin has {}",
                    entry.hook, entry.signature
                ),
            });
        }
        if let (Some(expected), false) = (&expected, signature_ok) {
            findings.push(Finding {
                code: "SIGNATURE_MISMATCH",
                severity: Severity::Error,
                message: format!(
                    "entry point `{}`: host expects {} (hash {}), plugin has {} (hash {})",
                    entry.hook,
                    expected,
                    expected.hash(abi),
                    entry.signature,
                    entry.signature_hash
                ),
            });
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

    for symbol in symbols
        .iter()
        .filter(|s| s.defined && s.name.starts_with(HOOK_SYMBOL_PREFIX))
    {
        if !manifest
            .entry_points
            .iter()
            .any(|e| e.symbol == symbol.name)
        {
            findings.push(Finding {
                code: "ENTRY_SYMBOL_UNDECLARED",
                severity: Severity::Warning,
                message: format!(
                    "symbol `{}` looks like an entry point but no manifest record declares it",
                    symbol.name
                ),
            });
        }
    }

    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Ok(Report {
        path: path.to_path_buf(),
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        manifest,
        entry_points,
        findings,
    })
}
