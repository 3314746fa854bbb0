//! The section header table, with extended section numbering, and section names as bytes.
//!
//! `object` reads the table ([`object::read::elf::FileHeader::section_headers`]): it checks
//! that every entry the header claims is inside the file before handing out a slice of them,
//! and resolves the gABI's extended numbering (when `e_shnum` is 0 the count is in section
//! 0's `sh_size`; when `e_shstrndx` is `SHN_XINDEX` the name table's index is in section 0's
//! `sh_link`; used by files with 65280 sections or more). [`SectionTable::parse`] turns each
//! failure into an error with a code, and keeps the decoded headers. Names are compared as
//! bytes: a name that is not UTF-8 is just a name that matches nothing we look for.

use super::error::{ElfError, Malformed};
use super::header::{Class, Header, raw};
use super::read::{bytes_at, entsize_error, object_error, string_at, table_error};
use object::Endianness;
use object::elf::{FileHeader32, FileHeader64, SHN_UNDEF};
use object::read::StringTable;
use object::read::elf::{FileHeader, SectionHeader as _};

pub use object::elf::{
    SHN_XINDEX, SHT_DYNSYM, SHT_NOBITS, SHT_STRTAB, SHT_SYMTAB, SHT_SYMTAB_SHNDX,
};

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

/// `object`'s section headers of the file described by `header` (extended numbering
/// resolved), every one of them inside the file.
pub(crate) fn raw_headers<'data, Elf: FileHeader<Endian = Endianness>>(
    header: &Header,
    data: &'data [u8],
) -> Result<&'data [Elf::SectionHeader], ElfError> {
    const W: &str = "section header table";
    if header.shoff == 0 {
        return Ok(&[]);
    }
    let elf = raw::<Elf>(data)?;
    let endian = header.endian;
    let entsize = size_of::<Elf::SectionHeader>();
    if usize::from(header.shentsize) != entsize {
        return Err(entsize_error(
            W,
            "e_shentsize",
            header.shentsize.into(),
            entsize,
        ));
    }
    // With e_shnum 0 the count is section 0's sh_size: `object` reads section 0 first.
    let count = elf.shnum(endian, data).map_err(|error| {
        object_error(
            Malformed::Truncated,
            "section header table (section 0, which holds the extended section count)",
            error,
        )
    })?;
    elf.section_headers(endian, data)
        .map_err(|_| table_error(W, count as u64, entsize as u64, header.shoff, data.len()))
}

fn decode<Elf: FileHeader<Endian = Endianness>>(
    raw: &Elf::SectionHeader,
    endian: Endianness,
) -> SectionHeader {
    SectionHeader {
        name: raw.sh_name(endian),
        kind: raw.sh_type(endian),
        flags: raw.sh_flags(endian).into(),
        addr: raw.sh_addr(endian).into(),
        offset: raw.sh_offset(endian).into(),
        size: raw.sh_size(endian).into(),
        link: raw.sh_link(endian),
        info: raw.sh_info(endian),
        entsize: raw.sh_entsize(endian).into(),
    }
}

fn parse_as<'data, Elf: FileHeader<Endian = Endianness>>(
    header: &Header,
    data: &'data [u8],
) -> Result<SectionTable<'data>, ElfError> {
    let raws = raw_headers::<Elf>(header, data)?;
    // No table at all; an empty one (e_shnum 0 and section 0's sh_size 0) still has to agree
    // with e_shstrndx, checked below.
    if header.shoff == 0 || (raws.is_empty() && header.shstrndx == SHN_UNDEF) {
        return Ok(SectionTable::default());
    }
    // `raws` is a slice of the file: this allocation is bounded by the file's size.
    let headers: Vec<SectionHeader> = raws
        .iter()
        .map(|raw| decode::<Elf>(raw, header.endian))
        .collect();
    let mut sections = SectionTable {
        headers,
        names: &[],
    };
    // SHN_UNDEF: the file has no section name table.
    if header.shstrndx != SHN_UNDEF {
        let elf = raw::<Elf>(data)?;
        let names_index = elf.shstrndx(header.endian, data).map_err(|error| {
            object_error(
                Malformed::BadIndex,
                &format!(
                    "the section name table index (e_shstrndx {:#x}, SHN_XINDEX means section 0's sh_link)",
                    header.shstrndx
                ),
                error,
            )
        })?;
        let names = sections.get(names_index).ok_or_else(|| {
            ElfError::malformed(
                Malformed::BadIndex,
                format!(
                    "the section name table index {names_index} is not below the section count {}",
                    sections.len()
                ),
            )
        })?;
        sections.names = sections.data_of(&names, data, "section name table")?;
    }
    Ok(sections)
}

/// `object`'s view of the section headers, for its symbol table reader.
pub(crate) fn raw_table<'data, Elf: FileHeader<Endian = Endianness>>(
    header: &Header,
    data: &'data [u8],
) -> Result<object::read::elf::SectionTable<'data, Elf>, ElfError> {
    Ok(object::read::elf::SectionTable::new(
        raw_headers::<Elf>(header, data)?,
        StringTable::default(),
    ))
}

impl<'data> SectionTable<'data> {
    /// Reads the section header table described by `header`.
    pub fn parse(header: &Header, data: &'data [u8]) -> Result<SectionTable<'data>, ElfError> {
        match header.class {
            Class::Elf32 => parse_as::<FileHeader32<Endianness>>(header, data),
            Class::Elf64 => parse_as::<FileHeader64<Endianness>>(header, data),
        }
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
        bytes_at(data, section.offset, section.size, what)
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
