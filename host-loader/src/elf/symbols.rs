//! Symbol tables (`.dynsym`, `.symtab`) with names as bytes and extended section indices.
//!
//! [`SymbolTable::parse`] reads the table of a `SHT_DYNSYM` or `SHT_SYMTAB` section: the entry
//! size must be at least one symbol (zero is an error, not a division), the entries and the
//! linked string table must be inside the file, and a symbol whose `st_shndx` is `SHN_XINDEX`
//! takes its section index from the table's `SHT_SYMTAB_SHNDX` section.

use super::error::{ElfError, Malformed};
use super::header::Header;
use super::read::{Class, Reader, string_at};
use super::sections::{SHN_XINDEX, SHT_SYMTAB_SHNDX, SectionHeader, SectionTable};

/// `STB_LOCAL`.
pub const STB_LOCAL: u8 = 0;
/// `STB_GLOBAL`.
pub const STB_GLOBAL: u8 = 1;
/// `STB_WEAK`.
pub const STB_WEAK: u8 = 2;
/// `STT_OBJECT`.
pub const STT_OBJECT: u8 = 1;
/// `STT_FUNC`.
pub const STT_FUNC: u8 = 2;
/// `STT_GNU_IFUNC`: a function resolved at load time.
pub const STT_GNU_IFUNC: u8 = 10;
/// `STV_DEFAULT`.
pub const STV_DEFAULT: u8 = 0;
/// `STV_PROTECTED`.
pub const STV_PROTECTED: u8 = 3;
/// `SHN_UNDEF`.
pub const SHN_UNDEF: u16 = 0;
/// `SHN_ABS`.
pub const SHN_ABS: u16 = 0xfff1;

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

fn symbol_size(class: Class) -> u64 {
    match class {
        Class::Elf32 => 16,
        Class::Elf64 => 24,
    }
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
        let r = header.reader(data);
        let what = "symbol table";
        if section.entsize == 0 {
            return Err(ElfError::malformed(
                Malformed::BadEntrySize,
                format!("{what} (section {index}): sh_entsize is 0"),
            ));
        }
        let count = section.size.checked_div(section.entsize).unwrap_or(0);
        let table = r.table(
            section.offset,
            count,
            section.entsize,
            symbol_size(r.class),
            what,
        )?;
        let strings_section = sections.require(section.link, "symbol table's string table")?;
        let strings = sections.data_of(&strings_section, data, "symbol string table")?;
        // Extended section indices, if the table has them.
        let shndx = sections
            .iter()
            .find(|s| s.kind == SHT_SYMTAB_SHNDX && s.link == index)
            .map(|s| sections.data_of(s, data, "extended section index table"))
            .transpose()?;
        let mut symbols = Vec::with_capacity(usize::try_from(table.count).unwrap_or(0));
        for (number, at) in (0u64..).zip(table.entries()) {
            symbols.push(read_symbol(&r, at, number, strings, shndx)?);
        }
        Ok(SymbolTable { symbols })
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

fn read_symbol<'data>(
    r: &Reader<'data>,
    at: u64,
    number: u64,
    strings: &'data [u8],
    shndx: Option<&'data [u8]>,
) -> Result<Symbol<'data>, ElfError> {
    const W: &str = "symbol";
    let field = |offset: u64| at.saturating_add(offset);
    let (name, info, other, section, value, size) = match r.class {
        Class::Elf64 => (
            r.u32(field(0), W)?,
            r.u8(field(4), W)?,
            r.u8(field(5), W)?,
            r.u16(field(6), W)?,
            r.u64(field(8), W)?,
            r.u64(field(16), W)?,
        ),
        Class::Elf32 => (
            r.u32(field(0), W)?,
            r.u8(field(12), W)?,
            r.u8(field(13), W)?,
            r.u16(field(14), W)?,
            r.u32(field(4), W)?.into(),
            r.u32(field(8), W)?.into(),
        ),
    };
    let section = if section == SHN_XINDEX {
        let extended = Reader {
            data: shndx.unwrap_or_default(),
            ..*r
        };
        extended
            .u32(number.saturating_mul(4), "extended section index")
            .map_err(|_| {
                ElfError::malformed(
                    Malformed::BadIndex,
                    format!(
                        "symbol {number} has section index SHN_XINDEX but no extended section index entry"
                    ),
                )
            })?
    } else {
        u32::from(section)
    };
    Ok(Symbol {
        name: string_at(strings, name.into(), "symbol name")?,
        bind: info >> 4,
        kind: info & 0xf,
        visibility: other & 0x3,
        section,
        value,
        size,
    })
}
