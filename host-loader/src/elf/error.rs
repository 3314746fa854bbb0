//! Why a file cannot be read as a plugin: [`ElfError`], each kind with a stable code.
//!
//! Malformed structures all become [`ElfError::Malformed`] with a [`Malformed`] kind (its code)
//! and a message that names the structure, the field and the fault, e.g. "section header
//! table: 4096 entries of 64 bytes at offset 0x1000 run past the end of the 9000-byte file".

use thiserror::Error;

/// What kind of inconsistency a malformed file has; each kind is a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// A structure (header, table, string, section) extends past the end of the file.
    Truncated,
    /// An identification byte (class, data encoding) has no defined meaning.
    BadIdent,
    /// A table's entry size is zero or smaller than the structure it holds.
    BadEntrySize,
    /// A count is inconsistent with the bytes present or with another field.
    BadCount,
    /// A string offset is outside its string table, or the string is not terminated.
    BadString,
    /// A virtual address is not inside any loadable segment's file bytes.
    BadAddress,
    /// A section index is out of range.
    BadIndex,
    /// Any other inconsistency (e.g. the manifest symbol does not point into its section).
    Inconsistent,
}

impl Malformed {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Malformed::Truncated => "ELF_TRUNCATED",
            Malformed::BadIdent => "ELF_BAD_IDENT",
            Malformed::BadEntrySize => "ELF_BAD_ENTSIZE",
            Malformed::BadCount => "ELF_BAD_COUNT",
            Malformed::BadString => "ELF_BAD_STRING",
            Malformed::BadAddress => "ELF_BAD_ADDRESS",
            Malformed::BadIndex => "ELF_BAD_INDEX",
            Malformed::Inconsistent => "ELF_MALFORMED",
        }
    }

    /// Every kind, for documentation and tests.
    pub const ALL: &'static [Malformed] = &[
        Malformed::Truncated,
        Malformed::BadIdent,
        Malformed::BadEntrySize,
        Malformed::BadCount,
        Malformed::BadString,
        Malformed::BadAddress,
        Malformed::BadIndex,
        Malformed::Inconsistent,
    ];
}

/// Why a file cannot be read as a plugin.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ElfError {
    /// Not an ELF file at all.
    #[error(
        "not an ELF file ({detail}); a plugin is a shared object (`.so`) built as a Rust `cdylib`"
    )]
    NotElf {
        /// What was found instead.
        detail: String,
    },
    /// ELF, but for another class, byte order or machine than the host's.
    #[error("ELF file for {found}, but this host runs {expected}; build the plugin for {expected}")]
    WrongTarget {
        /// What the file is for, e.g. `32-bit, big endian, ARM (machine 40)`.
        found: String,
        /// What the host needs.
        expected: &'static str,
    },
    /// ELF, but an executable, object file or core dump.
    #[error(
        "ELF {found} file, not a shared object; build the plugin with `crate-type = [\"cdylib\"]`"
    )]
    NotSharedObject {
        /// The ELF kind found.
        found: String,
    },
    /// The ELF structures are inconsistent.
    #[error("malformed ELF: {detail}")]
    Malformed {
        /// The kind of fault (its code).
        kind: Malformed,
        /// What is wrong, naming the structure and field.
        detail: String,
    },
    /// A valid shared object without a manifest.
    #[error(
        "not a plugin: no manifest section ({section}); plugins declare themselves with `plugin_sdk::plugin!`"
    )]
    NoManifest {
        /// The section name looked for.
        section: &'static str,
    },
    /// The manifest section's records are corrupt.
    #[error("manifest section is corrupt: {0}")]
    ManifestRecords(#[from] plugin_manifest::RecordError),
    /// The records decode into an invalid manifest.
    #[error("{0}")]
    Manifest(#[from] plugin_manifest::ManifestError),
}

impl ElfError {
    /// A stable code for this kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            ElfError::NotElf { .. } => "ELF_NOT_ELF",
            ElfError::WrongTarget { .. } => "ELF_WRONG_TARGET",
            ElfError::NotSharedObject { .. } => "ELF_NOT_SHARED_OBJECT",
            ElfError::Malformed { kind, .. } => kind.code(),
            ElfError::NoManifest { .. } => "NOT_A_PLUGIN",
            ElfError::ManifestRecords(_) => "MANIFEST_CORRUPT",
            ElfError::Manifest(_) => "MANIFEST_INVALID",
        }
    }

    /// A malformed-file error of `kind`.
    pub(crate) fn malformed(kind: Malformed, detail: impl Into<String>) -> ElfError {
        ElfError::Malformed {
            kind,
            detail: detail.into(),
        }
    }
}
