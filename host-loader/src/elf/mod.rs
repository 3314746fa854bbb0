//! A read-only view of a plugin's ELF file, from bytes only.
//!
//! [`ElfView::parse`] checks that the bytes are a shared object this host can load (ELF, 64-bit,
//! little endian, this machine), then exposes what inspection needs: the manifest section and
//! the dynamic symbols. All parsing goes through the `object` crate's bounds-checked readers;
//! nothing here panics on malformed input, and nothing here ever maps or executes the file.
//!
//! Every error carries a stable code ([`ElfError::code`]) for reports and scripts.

mod manifest;

pub use manifest::read_manifest;

use object::{
    Architecture, BinaryFormat, Object, ObjectKind, ObjectSection, ObjectSymbol, SymbolKind,
};
use thiserror::Error;

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
    /// ELF, but 32-bit, big endian, or for another machine.
    #[error("ELF file for {found}, but this host runs {expected}; build the plugin for {expected}")]
    WrongTarget {
        /// What the file is for.
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
    #[error("malformed ELF: {0}")]
    Malformed(String),
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
            ElfError::Malformed(_) => "ELF_MALFORMED",
            ElfError::NoManifest { .. } => "NOT_A_PLUGIN",
            ElfError::ManifestRecords(_) => "MANIFEST_CORRUPT",
            ElfError::Manifest(_) => "MANIFEST_INVALID",
        }
    }
}

/// The machine this host runs on, as `object` names it.
#[cfg(target_arch = "x86_64")]
const HOST_ARCH: (Architecture, &str) = (Architecture::X86_64, "x86_64 (64-bit, little endian)");
#[cfg(target_arch = "aarch64")]
const HOST_ARCH: (Architecture, &str) = (Architecture::Aarch64, "aarch64 (64-bit, little endian)");

/// One dynamic symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynSymbol {
    /// Its name (lossily decoded: names are bytes in ELF).
    pub name: String,
    /// Defined in this object (not an import).
    pub defined: bool,
    /// A function (`STT_FUNC`).
    pub is_function: bool,
    /// A data object (`STT_OBJECT`).
    pub is_data: bool,
    /// Global or weak binding with default or protected visibility: callable from outside.
    pub exported: bool,
    /// Its address.
    pub address: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// A parsed shared object, borrowing the file's bytes.
#[derive(Debug)]
pub struct ElfView<'data> {
    file: object::File<'data>,
}

impl<'data> ElfView<'data> {
    /// Parses and checks the header: ELF, 64-bit little endian, this machine, shared object.
    pub fn parse(data: &'data [u8]) -> Result<ElfView<'data>, ElfError> {
        if data.get(..4) != Some(b"\x7fELF".as_slice()) {
            let detail = match data.len() {
                0 => "the file is empty".to_string(),
                1..=3 => format!("only {} bytes", data.len()),
                _ => "no ELF magic at the start".to_string(),
            };
            return Err(ElfError::NotElf { detail });
        }
        // Class and data bytes are checked before `object` parses the rest, so a 32-bit or
        // big-endian file gets a precise message rather than a parse error.
        let class = data.get(4).copied();
        let endian = data.get(5).copied();
        if class != Some(2) || endian != Some(1) {
            let class = match class {
                Some(1) => "32-bit",
                Some(2) => "64-bit",
                _ => "unknown class",
            };
            let endian = match endian {
                Some(1) => "little endian",
                Some(2) => "big endian",
                _ => "unknown byte order",
            };
            return Err(ElfError::WrongTarget {
                found: format!("{class}, {endian}"),
                expected: HOST_ARCH.1,
            });
        }
        let file = object::File::parse(data).map_err(|e| ElfError::Malformed(e.to_string()))?;
        if file.format() != BinaryFormat::Elf {
            return Err(ElfError::NotElf {
                detail: format!("{:?} format", file.format()),
            });
        }
        if file.architecture() != HOST_ARCH.0 {
            return Err(ElfError::WrongTarget {
                found: format!("{:?}", file.architecture()),
                expected: HOST_ARCH.1,
            });
        }
        if file.kind() != ObjectKind::Dynamic {
            return Err(ElfError::NotSharedObject {
                found: format!("{:?}", file.kind()).to_lowercase(),
            });
        }
        Ok(ElfView { file })
    }

    /// The bytes of the section called `name`, if present.
    pub fn section(&self, name: &str) -> Result<Option<&'data [u8]>, ElfError> {
        let Some(section) = self.file.section_by_name_bytes(name.as_bytes()) else {
            return Ok(None);
        };
        let data = section
            .data()
            .map_err(|e| ElfError::Malformed(format!("section {name}: {e}")))?;
        Ok(Some(data))
    }

    /// The address range of the section called `name`.
    pub fn section_range(&self, name: &str) -> Option<std::ops::Range<u64>> {
        let section = self.file.section_by_name_bytes(name.as_bytes())?;
        let start = section.address();
        Some(start..start.checked_add(section.size())?)
    }

    /// Every dynamic symbol (exports and imports).
    pub fn dynamic_symbols(&self) -> Vec<DynSymbol> {
        self.file
            .dynamic_symbols()
            .filter(|symbol| !symbol.name_bytes().unwrap_or_default().is_empty())
            .map(|symbol| DynSymbol {
                name: String::from_utf8_lossy(symbol.name_bytes().unwrap_or_default()).into_owned(),
                defined: symbol.is_definition(),
                is_function: symbol.kind() == SymbolKind::Text,
                is_data: symbol.kind() == SymbolKind::Data,
                exported: symbol.is_global() && !symbol.is_undefined(),
                address: symbol.address(),
                size: symbol.size(),
            })
            .collect()
    }
}

/// The `DT_NEEDED` entries of a 64-bit little-endian shared object (the libraries the dynamic
/// loader will open for it); empty if the file has no dynamic section or is not such an ELF.
pub fn needed_libraries(bytes: &[u8]) -> Vec<String> {
    use object::read::elf::{Dyn, ElfFile64};
    let Ok(file) = ElfFile64::<object::LittleEndian>::parse(bytes) else {
        return Vec::new();
    };
    let endian = object::LittleEndian;
    let sections = file.elf_section_table();
    let Ok(Some((entries, link))) = sections.dynamic(endian, bytes) else {
        return Vec::new();
    };
    let Ok(strings) = sections.strings(endian, bytes, link) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|entry| entry.d_tag(endian) == u64::from(object::elf::DT_NEEDED))
        .filter_map(|entry| entry.string(endian, strings).ok())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf_and_wrong_targets_with_codes() {
        assert_eq!(ElfView::parse(b"").unwrap_err().code(), "ELF_NOT_ELF");
        assert_eq!(
            ElfView::parse(b"#!/bin/sh\n").unwrap_err().code(),
            "ELF_NOT_ELF"
        );
        let mut header = b"\x7fELF\x01\x01\x01".to_vec();
        header.resize(64, 0);
        let err = ElfView::parse(&header).unwrap_err();
        assert_eq!(err.code(), "ELF_WRONG_TARGET");
        assert!(err.to_string().contains("32-bit, little endian"), "{err}");
        header[4] = 2;
        header[5] = 2;
        assert!(
            ElfView::parse(&header)
                .unwrap_err()
                .to_string()
                .contains("big endian")
        );
        header[5] = 1;
        // Machine 0 is not this host's.
        assert_eq!(
            ElfView::parse(&header).unwrap_err().code(),
            "ELF_WRONG_TARGET"
        );
        // x86_64, but an executable (ET_EXEC), not a shared object.
        header[16] = 2;
        header[18] = 62;
        assert_eq!(
            ElfView::parse(&header).unwrap_err().code(),
            "ELF_NOT_SHARED_OBJECT"
        );
        // A header cut short.
        assert_eq!(
            ElfView::parse(&header[..20]).unwrap_err().code(),
            "ELF_MALFORMED"
        );
    }

    #[test]
    fn the_test_binary_is_not_a_shared_object() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        match ElfView::parse(&me) {
            // PIE executables are ET_DYN, like shared objects; they simply have no manifest.
            Ok(view) => assert!(
                view.section(plugin_manifest::MANIFEST_SECTION)
                    .unwrap()
                    .is_none()
            ),
            Err(err) => assert_eq!(err.code(), "ELF_NOT_SHARED_OBJECT"),
        }
    }
}
