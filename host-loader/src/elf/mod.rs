//! A read-only view of an ELF file, from bytes only, that a hostile file cannot break.
//!
//! The byte-level decoding is the `object` crate's ([`object::read::elf`]), as the developer
//! guide asks: its readers check every offset, size and count against the bytes present (with
//! checked arithmetic) and hand out slices of the file instead of allocating, and they are
//! maintained and fuzzed upstream. This module is the layer on top, one structure per file:
//! [`header`] (both classes and byte orders, refused with the precise reason when they are not
//! the host's), [`sections`] (extended numbering, names as bytes), [`segments`] (address
//! translation through the containing `PT_LOAD`), [`dynamic`] (the loader's view: `DT_NEEDED`,
//! paths, flags, relocations), [`symbols`] (`.dynsym`/`.symtab`). What is ours is small: the
//! checks `object` leaves to its callers (entry sizes, a section name table that agrees with
//! the count, string tables that are string tables, every section and loadable segment inside
//! the file), choosing the `PT_LOAD` that contains an address, and turning every failure into
//! an [`ElfError`] with a stable code and a message naming the structure and the fault
//! (`object`'s own message is kept as detail where it reports the error). Decoded tables are
//! kept only after `object` has proved their bytes are in the file, so no input makes this
//! panic, loop for long, or allocate more than a small multiple of the file's size. The lints
//! below keep our part that way: no indexing that can panic, no unchecked arithmetic.
//!
//! - [`ElfFile::parse`] decodes any ELF file (32/64-bit, either byte order) into its tables.
//! - [`ElfView::parse`] is what the host uses: it refuses, with a precise reason, a file that
//!   is not a shared object for this host (class, byte order, machine, type) before decoding
//!   the rest.
//!
//! Nothing here maps or executes the file. Every error carries a stable code
//! ([`ElfError::code`]) for reports and scripts.
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

pub mod code;
pub mod dynamic;
mod error;
pub mod header;
mod manifest;
mod read;
pub mod sections;
pub mod segments;
pub mod symbols;

pub use error::{ElfError, Malformed};
pub use manifest::read_manifest;

use dynamic::Dynamic;
use header::Header;
use sections::{SHT_DYNSYM, SHT_NOBITS, SHT_SYMTAB, SectionHeader, SectionTable};
use segments::{PT_LOAD, Segments};
use symbols::SymbolTable;

/// A decoded ELF file of any class and byte order, borrowing the file's bytes.
#[derive(Debug, Clone)]
pub struct ElfFile<'data> {
    /// The whole file.
    pub data: &'data [u8],
    /// The file header.
    pub header: Header,
    /// The section headers.
    pub sections: SectionTable<'data>,
    /// The program headers.
    pub segments: Segments,
    /// The dynamic section (empty without `PT_DYNAMIC`).
    pub dynamic: Dynamic<'data>,
    /// The dynamic symbols (empty without a `.dynsym` section).
    pub dynsym: SymbolTable<'data>,
}

impl<'data> ElfFile<'data> {
    /// Decodes any ELF file: header, section and program header tables, dynamic section and
    /// dynamic symbols.
    pub fn parse(data: &'data [u8]) -> Result<ElfFile<'data>, ElfError> {
        let header = Header::parse(data)?;
        ElfFile::from_header(header, data)
    }

    /// Decodes the tables of a file whose header is `header`.
    pub fn from_header(header: Header, data: &'data [u8]) -> Result<ElfFile<'data>, ElfError> {
        let sections = SectionTable::parse(&header, data)?;
        for (index, section) in (0u32..).zip(sections.iter()) {
            if index != 0 && section.kind != SHT_NOBITS {
                sections.data_of(section, data, &format!("section {index}"))?;
            }
        }
        let segments = Segments::parse(&header, data)?;
        for segment in segments.iter().filter(|p| p.kind == PT_LOAD) {
            read::bytes_at(data, segment.offset, segment.filesz, "loadable segment")?;
        }
        let dynamic = Dynamic::parse(&header, &segments, data)?;
        let dynsym = match sections.by_kind(SHT_DYNSYM) {
            Some((index, section)) => {
                if dynamic.symtab.is_some_and(|addr| addr != section.addr) {
                    return Err(ElfError::malformed(
                        Malformed::Inconsistent,
                        format!(
                            "the dynamic symbol table the loader uses (DT_SYMTAB {:#x}) is not the .dynsym section (at {:#x})",
                            dynamic.symtab.unwrap_or(0),
                            section.addr
                        ),
                    ));
                }
                SymbolTable::parse(&header, &sections, index, &section, data)?
            }
            None => SymbolTable::default(),
        };
        Ok(ElfFile {
            data,
            header,
            sections,
            segments,
            dynamic,
            dynsym,
        })
    }

    /// The full symbol table (`.symtab`), if the file was not stripped of it.
    pub fn symtab(&self) -> Result<Option<SymbolTable<'data>>, ElfError> {
        self.sections
            .by_kind(SHT_SYMTAB)
            .map(|(index, section)| {
                SymbolTable::parse(&self.header, &self.sections, index, &section, self.data)
            })
            .transpose()
    }

    /// The address- or offset-sized word (4 bytes in ELF32, 8 in ELF64, in the file's byte
    /// order) at virtual address `address`, read through the `PT_LOAD` segment that contains
    /// it; `what` names it for the error.
    pub fn word_at_address(&self, address: u64, what: &str) -> Result<u64, ElfError> {
        use object::read::ReadRef;
        let size = self.header.word_size();
        let offset = self.segments.file_offset(address, size, what)?;
        let endian = self.header.endian;
        let word = match self.header.class {
            header::Class::Elf32 => self
                .data
                .read_at::<object::U32<object::Endianness>>(offset)
                .map(|w| u64::from(w.get(endian))),
            header::Class::Elf64 => self
                .data
                .read_at::<object::U64<object::Endianness>>(offset)
                .map(|w| w.get(endian)),
        };
        word.map_err(|()| {
            ElfError::malformed(
                Malformed::Truncated,
                format!(
                    "{what}: {size} bytes at offset {offset:#x} run past the end of the {}-byte file",
                    self.data.len()
                ),
            )
        })
    }

    /// The section called `name` and its bytes, if present.
    pub fn section(&self, name: &[u8]) -> Result<Option<(SectionHeader, &'data [u8])>, ElfError> {
        let Some(section) = self.sections.by_name(name)? else {
            return Ok(None);
        };
        let what = format!("section {}", String::from_utf8_lossy(name));
        let bytes = self.sections.data_of(&section, self.data, &what)?;
        Ok(Some((section, bytes)))
    }
}

/// A shared object for this host, decoded.
#[derive(Debug, Clone)]
pub struct ElfView<'data> {
    file: ElfFile<'data>,
}

impl<'data> ElfView<'data> {
    /// Checks the header (ELF, 64-bit little endian, this machine, shared object), then
    /// decodes the rest.
    pub fn parse(data: &'data [u8]) -> Result<ElfView<'data>, ElfError> {
        let header = Header::parse(data)?;
        header.check_host()?;
        Ok(ElfView {
            file: ElfFile::from_header(header, data)?,
        })
    }

    /// The decoded file.
    pub fn file(&self) -> &ElfFile<'data> {
        &self.file
    }

    /// The bytes of the section called `name`, if present.
    pub fn section(&self, name: &str) -> Result<Option<&'data [u8]>, ElfError> {
        Ok(self.file.section(name.as_bytes())?.map(|(_, bytes)| bytes))
    }

    /// The address range of the section called `name`.
    pub fn section_range(&self, name: &str) -> Option<std::ops::Range<u64>> {
        let section = self.file.sections.by_name(name.as_bytes()).ok()??;
        Some(section.addr..section.addr.checked_add(section.size)?)
    }

    /// The dynamic symbols (exports and imports), index 0 and unnamed ones left out.
    pub fn dynamic_symbols(&self) -> impl Iterator<Item = &symbols::Symbol<'data>> {
        self.file.dynsym.iter().filter(|s| !s.name.is_empty())
    }
}

/// The `DT_NEEDED` entries of a shared object for this host (the libraries the dynamic loader
/// will open for it); empty if the file is not such an object or is malformed.
pub fn needed_libraries(bytes: &[u8]) -> Vec<String> {
    let Ok(view) = ElfView::parse(bytes) else {
        return Vec::new();
    };
    view.file
        .dynamic
        .needed
        .iter()
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
            "ELF_TRUNCATED"
        );
    }

    #[test]
    fn the_test_binary_parses_and_has_no_manifest() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // PIE executables are ET_DYN, like shared objects; they simply have no manifest.
        let view = ElfView::parse(&me).unwrap();
        assert!(
            view.section(plugin_manifest::MANIFEST_SECTION)
                .unwrap()
                .is_none()
        );
        assert!(
            view.file()
                .dynamic
                .needed
                .iter()
                .any(|n| *n == b"libc.so.6")
        );
        assert!(view.file().symtab().unwrap().is_some_and(|t| t.len() > 100));
    }

    /// A minimal 64-bit x86-64 shared object: header, one PT_LOAD, and `sections` section
    /// headers (section 0 first) at offset 0x100.
    fn tiny(shnum: u16, shstrndx: u16, sections: &[[u8; 64]]) -> Vec<u8> {
        let mut file = vec![0u8; 0x100];
        file[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        file[16..18].copy_from_slice(&3u16.to_le_bytes());
        file[18..20].copy_from_slice(&header::HOST_MACHINE.0.to_le_bytes());
        file[40..48].copy_from_slice(&0x100u64.to_le_bytes());
        file[58..60].copy_from_slice(&64u16.to_le_bytes());
        file[60..62].copy_from_slice(&shnum.to_le_bytes());
        file[62..64].copy_from_slice(&shstrndx.to_le_bytes());
        for s in sections {
            file.extend_from_slice(s);
        }
        file
    }

    fn section(name: u32, kind: u32, offset: u64, size: u64, link: u32) -> [u8; 64] {
        let mut s = [0u8; 64];
        s[0..4].copy_from_slice(&name.to_le_bytes());
        s[4..8].copy_from_slice(&kind.to_le_bytes());
        s[24..32].copy_from_slice(&offset.to_le_bytes());
        s[32..40].copy_from_slice(&size.to_le_bytes());
        s[40..44].copy_from_slice(&link.to_le_bytes());
        s
    }

    #[test]
    fn a_32_bit_big_endian_file_decodes_through_object() {
        // Header, then two 40-byte section headers at 0x40 (null, .shstrtab), then the names.
        let names: &[u8] = b"\0.shstrtab\0";
        let mut file = vec![0u8; 0x40 + 80];
        file[..7].copy_from_slice(b"\x7fELF\x01\x02\x01");
        file[16..18].copy_from_slice(&3u16.to_be_bytes());
        file[18..20].copy_from_slice(&40u16.to_be_bytes()); // ARM
        file[32..36].copy_from_slice(&0x40u32.to_be_bytes()); // e_shoff
        file[46..48].copy_from_slice(&40u16.to_be_bytes()); // e_shentsize
        file[48..50].copy_from_slice(&2u16.to_be_bytes()); // e_shnum
        file[50..52].copy_from_slice(&1u16.to_be_bytes()); // e_shstrndx
        let strtab = 0x40 + 40;
        file[strtab..strtab + 4].copy_from_slice(&1u32.to_be_bytes()); // sh_name
        file[strtab + 4..strtab + 8].copy_from_slice(&3u32.to_be_bytes()); // SHT_STRTAB
        file[strtab + 16..strtab + 20].copy_from_slice(&(0x40u32 + 80).to_be_bytes());
        file[strtab + 20..strtab + 24].copy_from_slice(&(names.len() as u32).to_be_bytes());
        file.extend_from_slice(names);
        let elf = ElfFile::parse(&file).unwrap();
        assert_eq!(
            (elf.header.class, elf.header.endian, elf.header.machine),
            (header::Class::Elf32, header::Endian::Big, 40)
        );
        assert_eq!(elf.sections.len(), 2);
        assert!(elf.section(b".shstrtab").unwrap().is_some());
        // The host refuses it, naming what it is.
        let err = ElfView::parse(&file).unwrap_err();
        assert!(err.to_string().contains("32-bit, big endian, ARM"), "{err}");
        // A section header size that is not a 32-bit section header's.
        file[46..48].copy_from_slice(&64u16.to_be_bytes());
        assert_eq!(ElfFile::parse(&file).unwrap_err().code(), "ELF_BAD_ENTSIZE");
    }

    #[test]
    fn wrong_entry_sizes_and_versions_are_refused_with_codes() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let header = header::Header::parse(&me).unwrap();
        // EI_VERSION other than EV_CURRENT.
        let mut bad = me.clone();
        bad[6] = 2;
        assert_eq!(ElfView::parse(&bad).unwrap_err().code(), "ELF_BAD_IDENT");
        // e_phentsize that is not one program header.
        let mut bad = me.clone();
        bad[54..56].copy_from_slice(&57u16.to_le_bytes());
        assert_eq!(ElfView::parse(&bad).unwrap_err().code(), "ELF_BAD_ENTSIZE");
        // .dynsym's sh_entsize 0 and 25.
        let (index, _) = ElfView::parse(&me)
            .unwrap()
            .file()
            .sections
            .by_kind(SHT_DYNSYM)
            .unwrap();
        let at = usize::try_from(header.shoff).unwrap() + usize::try_from(index).unwrap() * 64;
        for entsize in [0u64, 25] {
            let mut bad = me.clone();
            bad[at + 56..at + 64].copy_from_slice(&entsize.to_le_bytes());
            let err = ElfView::parse(&bad).unwrap_err();
            assert_eq!(err.code(), "ELF_BAD_ENTSIZE", "{err}");
            assert!(err.to_string().contains("sh_entsize"), "{err}");
        }
    }

    #[test]
    fn extended_section_numbering_and_byte_names() {
        // Name table at offset 0x40 (inside the zeroed header padding): "\0.x\0\xff\xfe\0".
        let names: &[u8] = b"\0.x\0\xff\xfe\0";
        // e_shnum = 0: the count (3) is in section 0's sh_size; e_shstrndx = SHN_XINDEX: the
        // name table's index (1) is in section 0's sh_link.
        let mut file = tiny(
            0,
            0xffff,
            &[
                section(0, 0, 0, 3, 1),
                section(1, 3, 0x40, names.len() as u64, 0),
                section(4, 1, 0x40, 1, 0),
            ],
        );
        file[0x40..0x40 + names.len()].copy_from_slice(names);
        let view = ElfView::parse(&file).unwrap();
        assert_eq!(view.file().sections.len(), 3);
        // A non-UTF-8 name is a name like any other.
        // A non-UTF-8 name is a name like any other: found by its bytes, never by a lossy
        // decoding of them.
        assert_eq!(view.section("\u{fffd}\u{fffd}").unwrap(), None);
        assert!(view.file().section(b"\xff\xfe").unwrap().is_some());
        assert!(view.section(".x").unwrap().is_some());

        // A section past the end of the file.
        let file = tiny(
            2,
            0,
            &[section(0, 0, 0, 0, 0), section(0, 1, 0x1000, 16, 0)],
        );
        assert_eq!(ElfView::parse(&file).unwrap_err().code(), "ELF_TRUNCATED");
        // A huge claimed count: refused before any allocation.
        let file = tiny(0, 0, &[section(0, 0, 0, u64::MAX / 2, 0)]);
        assert_eq!(ElfView::parse(&file).unwrap_err().code(), "ELF_BAD_COUNT");
        // A name table index out of range.
        let file = tiny(1, 7, &[section(0, 0, 0, 0, 0)]);
        assert_eq!(ElfView::parse(&file).unwrap_err().code(), "ELF_BAD_INDEX");
        // A bogus name offset.
        let mut file = tiny(2, 1, &[section(0, 0, 0, 0, 0), section(999, 3, 0x40, 2, 0)]);
        file[0x40] = 0;
        assert_eq!(
            ElfView::parse(&file)
                .unwrap()
                .section(".x")
                .unwrap_err()
                .code(),
            "ELF_BAD_STRING"
        );
    }
}
