//! The section header table, with extended section numbering, and section names as bytes.
//!
//! [`SectionTable::parse`] reads the table once, after checking that every entry it claims is
//! inside the file. When `e_shnum` is 0 the count is in section 0's `sh_size`; when
//! `e_shstrndx` is `SHN_XINDEX` the name table's index is in section 0's `sh_link` (the gABI's
//! extended numbering, used by files with 65280 sections or more). Names are compared as
//! bytes: a name that is not UTF-8 is just a name that matches nothing we look for.

use super::error::{ElfError, Malformed};
use super::header::Header;
use super::read::{Class, Reader, slice_at, string_at};

/// `SHT_SYMTAB`.
pub const SHT_SYMTAB: u32 = 2;
/// `SHT_NOBITS`: occupies no file bytes (`.bss`).
pub const SHT_NOBITS: u32 = 8;
/// `SHT_DYNSYM`.
pub const SHT_DYNSYM: u32 = 11;
/// `SHT_SYMTAB_SHNDX`: the extended section indices of a symbol table.
pub const SHT_SYMTAB_SHNDX: u32 = 18;
/// `SHN_XINDEX`: the real index is elsewhere.
pub const SHN_XINDEX: u16 = 0xffff;

/// One section header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionHeader {
    /// `sh_name`: offset in the section name table.
    pub name: u32,
    /// `sh_type`.
    pub kind: u32,
    /// `sh_flags`.
    pub flags: u64,
    /// `sh_addr`.
    pub addr: u64,
    /// `sh_offset`.
    pub offset: u64,
    /// `sh_size`.
    pub size: u64,
    /// `sh_link`.
    pub link: u32,
    /// `sh_info`.
    pub info: u32,
    /// `sh_entsize`.
    pub entsize: u64,
}

/// Every section header, and the name table.
#[derive(Debug, Clone, Default)]
pub struct SectionTable<'data> {
    headers: Vec<SectionHeader>,
    names: &'data [u8],
}

fn read_header(r: &Reader<'_>, at: u64) -> Result<SectionHeader, ElfError> {
    const W: &str = "section header";
    let field = |offset: u64| at.saturating_add(offset);
    Ok(match r.class {
        Class::Elf64 => SectionHeader {
            name: r.u32(field(0), W)?,
            kind: r.u32(field(4), W)?,
            flags: r.u64(field(8), W)?,
            addr: r.u64(field(16), W)?,
            offset: r.u64(field(24), W)?,
            size: r.u64(field(32), W)?,
            link: r.u32(field(40), W)?,
            info: r.u32(field(44), W)?,
            entsize: r.u64(field(56), W)?,
        },
        Class::Elf32 => SectionHeader {
            name: r.u32(field(0), W)?,
            kind: r.u32(field(4), W)?,
            flags: r.u32(field(8), W)?.into(),
            addr: r.u32(field(12), W)?.into(),
            offset: r.u32(field(16), W)?.into(),
            size: r.u32(field(20), W)?.into(),
            link: r.u32(field(24), W)?,
            info: r.u32(field(28), W)?,
            entsize: r.u32(field(36), W)?.into(),
        },
    })
}

/// Bytes of one section header in this class.
pub fn header_size(class: Class) -> u64 {
    match class {
        Class::Elf32 => 40,
        Class::Elf64 => 64,
    }
}

impl<'data> SectionTable<'data> {
    /// Reads the section header table described by `header`.
    pub fn parse(header: &Header, data: &'data [u8]) -> Result<SectionTable<'data>, ElfError> {
        if header.shoff == 0 {
            return Ok(SectionTable::default());
        }
        let r = header.reader(data);
        let min = header_size(r.class);
        let entsize = u64::from(header.shentsize);
        // Section 0 holds the extended counts; read it through a one-entry table first.
        let first = r.table(header.shoff, 1, entsize, min, "section header table")?;
        let zero = read_header(&r, first.offset)?;
        let count = match header.shnum {
            0 => zero.size,
            n => u64::from(n),
        };
        let table = r.table(header.shoff, count, entsize, min, "section header table")?;
        // `table` proved count * entsize bytes are present, so this allocation is bounded by
        // the file's size.
        let mut headers = Vec::with_capacity(usize::try_from(table.count).unwrap_or(0));
        for at in table.entries() {
            headers.push(read_header(&r, at)?);
        }
        let names_index = match header.shstrndx {
            SHN_XINDEX => zero.link,
            n => u32::from(n),
        };
        let mut sections = SectionTable {
            headers,
            names: &[],
        };
        if names_index != 0 {
            let names = sections.get(names_index).ok_or_else(|| {
                ElfError::malformed(
                    Malformed::BadIndex,
                    format!(
                        "the section name table index {names_index} is not below the section count {count}"
                    ),
                )
            })?;
            sections.names = sections.data_of(&names, data, "section name table")?;
        }
        Ok(sections)
    }

    /// Every section header.
    pub fn iter(&self) -> impl Iterator<Item = &SectionHeader> {
        self.headers.iter()
    }

    /// Number of sections.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether the file has no section table.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Section `index`.
    pub fn get(&self, index: u32) -> Option<SectionHeader> {
        self.headers.get(usize::try_from(index).ok()?).copied()
    }

    /// Section `index`, or an error naming `what` refers to it.
    pub fn require(&self, index: u32, what: &str) -> Result<SectionHeader, ElfError> {
        self.get(index).ok_or_else(|| {
            ElfError::malformed(
                Malformed::BadIndex,
                format!(
                    "{what}: section index {index} is not below the section count {}",
                    self.len()
                ),
            )
        })
    }

    /// The name of a section, as bytes.
    pub fn name(&self, section: &SectionHeader) -> Result<&'data [u8], ElfError> {
        string_at(self.names, section.name.into(), "section name")
    }

    /// The first section called `name`.
    pub fn by_name(&self, name: &[u8]) -> Result<Option<SectionHeader>, ElfError> {
        for section in &self.headers {
            if self.name(section)? == name {
                return Ok(Some(*section));
            }
        }
        Ok(None)
    }

    /// The file bytes of a section (none for `SHT_NOBITS`).
    pub fn data_of(
        &self,
        section: &SectionHeader,
        data: &'data [u8],
        what: &str,
    ) -> Result<&'data [u8], ElfError> {
        if section.kind == SHT_NOBITS {
            return Ok(&[]);
        }
        slice_at(data, section.offset, section.size).ok_or_else(|| {
            ElfError::malformed(
                Malformed::Truncated,
                format!(
                    "{what}: section of {} bytes at offset {:#x} runs past the end of the {}-byte file",
                    section.size,
                    section.offset,
                    data.len()
                ),
            )
        })
    }

    /// The first section of type `kind`, with its index.
    pub fn by_kind(&self, kind: u32) -> Option<(u32, SectionHeader)> {
        self.headers
            .iter()
            .zip(0u32..)
            .find(|(s, _)| s.kind == kind)
            .map(|(s, i)| (i, *s))
    }
}
