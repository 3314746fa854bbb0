//! Symbol tables (`.dynsym`, `.symtab`) with names as bytes and extended section indices.
//!
//! `object` reads the table ([`object::read::elf::SymbolTable`]): the symbols of a
//! `SHT_DYNSYM` or `SHT_SYMTAB` section, its linked string table, and the `SHT_SYMTAB_SHNDX`
//! section that holds the real section index of a symbol whose `st_shndx` is `SHN_XINDEX`.
//! [`SymbolTable::parse`] checks what `object` does not (the entry size must be one symbol:
//! zero or any other value is an error, not a division; the link must name a string table)
//! and turns every failure into an error with a code.

use super::error::{ElfError, Malformed};
use super::header::{Class, Header};
use super::read::{entsize_error, object_error, string_at};
use super::sections::{SHN_XINDEX, SHT_STRTAB, SectionHeader, SectionTable, raw_table};
use object::Endianness;
use object::elf::{FileHeader32, FileHeader64};
use object::read::SectionIndex;
use object::read::elf::{FileHeader, Sym as _};

pub use object::elf::{
    SHN_ABS, SHN_UNDEF, STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FUNC, STT_GNU_IFUNC, STT_OBJECT,
    STV_DEFAULT, STV_PROTECTED,
};

/// One symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol<'data> {
    /// Its name, as bytes.
    pub name: &'data [u8],
    /// `STB_*`.
    pub bind: u8,
    /// `STT_*`.
    pub kind: u8,
    /// `STV_*`.
    pub visibility: u8,
    /// The section it is defined in (`SHN_XINDEX` already resolved); `SHN_UNDEF` (0) for an
    /// import.
    pub section: u32,
    /// `st_value`.
    pub value: u64,
    /// `st_size`.
    pub size: u64,
}

impl Symbol<'_> {
    /// Defined in this object.
    pub fn is_defined(&self) -> bool {
        self.section != u32::from(SHN_UNDEF)
    }

    /// A function (including indirect functions).
    pub fn is_function(&self) -> bool {
        self.kind == STT_FUNC || self.kind == STT_GNU_IFUNC
    }

    /// Global or weak, with default or protected visibility.
    pub fn is_visible(&self) -> bool {
        matches!(self.bind, STB_GLOBAL | STB_WEAK)
            && matches!(self.visibility, STV_DEFAULT | STV_PROTECTED)
    }

    /// Its name, lossily decoded for messages.
    pub fn display_name(&self) -> String {
        String::from_utf8_lossy(self.name).into_owned()
    }
}

/// A symbol table's symbols, in index order (index 0, the null symbol, included).
#[derive(Debug, Clone, Default)]
pub struct SymbolTable<'data> {
    symbols: Vec<Symbol<'data>>,
}

fn parse_as<'data, Elf: FileHeader<Endian = Endianness>>(
    header: &Header,
    sections: &SectionTable<'data>,
    index: u32,
    section: &SectionHeader,
    data: &'data [u8],
) -> Result<SymbolTable<'data>, ElfError> {
    let what = format!("symbol table (section {index})");
    let entsize = size_of::<Elf::Sym>();
    if section.entsize != entsize as u64 {
        return Err(entsize_error(&what, "sh_entsize", section.entsize, entsize));
    }
    let strings = sections.require(section.link, &format!("{what}: its string table"))?;
    if section.link != 0 && strings.kind != SHT_STRTAB {
        return Err(ElfError::malformed(
            Malformed::Inconsistent,
            format!(
                "{what}: sh_link {} names a section of type {:#x}, not a string table",
                section.link, strings.kind
            ),
        ));
    }
    // The names are looked up in the linked section's bytes (with `object`'s string table),
    // so an error can say how large the table is.
    let string_bytes = sections.data_of(&strings, data, &format!("{what}: its string table"))?;
    let endian = header.endian;
    let raw_sections = raw_table::<Elf>(header, data)?;
    let index_usize = usize::try_from(index).unwrap_or(usize::MAX);
    let raw_section = raw_sections
        .section(SectionIndex(index_usize))
        .map_err(|error| object_error(Malformed::BadIndex, &what, error))?;
    let table = object::read::elf::SymbolTable::parse(
        endian,
        data,
        &raw_sections,
        SectionIndex(index_usize),
        raw_section,
    )
    .map_err(|error| object_error(Malformed::Truncated, &what, error))?;
    // `table` is a slice of the file: this allocation is bounded by the file's size.
    let mut symbols = Vec::with_capacity(table.len());
    for (number, symbol) in table.enumerate() {
        let section = match symbol.st_shndx(endian) {
            SHN_XINDEX => table.shndx(endian, number).ok_or_else(|| {
                ElfError::malformed(
                    Malformed::BadIndex,
                    format!(
                        "symbol {} has section index SHN_XINDEX but no extended section index entry",
                        number.0
                    ),
                )
            })?,
            other => u32::from(other),
        };
        let name = string_at(string_bytes, symbol.st_name(endian).into(), "symbol name").map_err(
            |error| match error {
                ElfError::Malformed { kind, detail } => {
                    ElfError::malformed(kind, format!("symbol {}: {detail}", number.0))
                }
                other => other,
            },
        )?;
        symbols.push(Symbol {
            name,
            bind: symbol.st_bind(),
            kind: symbol.st_type(),
            visibility: symbol.st_visibility(),
            section,
            value: symbol.st_value(endian).into(),
            size: symbol.st_size(endian).into(),
        });
    }
    Ok(SymbolTable { symbols })
}

impl<'data> SymbolTable<'data> {
    /// Reads the symbol table in section `index` (`section`).
    pub fn parse(
        header: &Header,
        sections: &SectionTable<'data>,
        index: u32,
        section: &SectionHeader,
        data: &'data [u8],
    ) -> Result<SymbolTable<'data>, ElfError> {
        match header.class {
            Class::Elf32 => {
                parse_as::<FileHeader32<Endianness>>(header, sections, index, section, data)
            }
            Class::Elf64 => {
                parse_as::<FileHeader64<Endianness>>(header, sections, index, section, data)
            }
        }
    }

    /// Every symbol.
    pub fn iter(&self) -> impl Iterator<Item = &Symbol<'data>> {
        self.symbols.iter()
    }

    /// Symbol `index`.
    pub fn get(&self, index: u32) -> Option<&Symbol<'data>> {
        self.symbols.get(usize::try_from(index).ok()?)
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }
}
