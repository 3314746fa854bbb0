//! The program header table: what the loader maps, and address-to-file translation.
//!
//! `object` reads the table ([`object::read::elf::FileHeader::program_headers`], with
//! `PN_XNUM` resolved through section 0); [`Segments::parse`] turns each failure into an error
//! with a code and keeps the decoded headers. [`Segments::file_offset`] (ours: `object` has no
//! such lookup) translates a virtual address, as found in the dynamic section, to a file
//! offset through the `PT_LOAD` segment that *contains* it, checking that the whole range lies
//! in that segment's file bytes; the first segment is not assumed to be the one.

use super::error::{ElfError, Malformed};
use super::header::{Class, Header, raw};
use super::read::{bytes_at, entsize_error, object_error, table_error};
use object::Endianness;
use object::elf::{FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader as _};

pub use object::elf::{PF_R, PF_W, PF_X, PN_XNUM, PT_DYNAMIC, PT_GNU_STACK, PT_LOAD};

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    /// `p_type`.
    pub kind: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

/// Every program header.
#[derive(Debug, Clone, Default)]
pub struct Segments {
    headers: Vec<ProgramHeader>,
}

impl ProgramHeader {
    /// The segment's bytes in the file (`p_offset`, `p_filesz`).
    pub fn file_bytes<'data>(&self, data: &'data [u8]) -> Result<&'data [u8], ElfError> {
        bytes_at(data, self.offset, self.filesz, "segment")
    }
}

fn parse_as<Elf: FileHeader<Endian = Endianness>>(
    header: &Header,
    data: &[u8],
) -> Result<Segments, ElfError> {
    const W: &str = "program header table";
    if header.phoff == 0 {
        return Ok(Segments::default());
    }
    let elf = raw::<Elf>(data)?;
    let endian = header.endian;
    // With e_phnum PN_XNUM the count is section 0's sh_info: `object` reads section 0.
    let count = elf.phnum(endian, data).map_err(|error| {
        let section_entsize = size_of::<Elf::SectionHeader>();
        if header.shoff == 0 {
            ElfError::malformed(
                Malformed::BadCount,
                "program header table: e_phnum is PN_XNUM (0xffff) but there is no section 0 to hold the count",
            )
        } else if usize::from(header.shentsize) != section_entsize {
            entsize_error(
                "section header table",
                "e_shentsize",
                header.shentsize.into(),
                section_entsize,
            )
        } else {
            object_error(
                Malformed::Truncated,
                "program header table (section 0, which holds the extended count)",
                error,
            )
        }
    })?;
    if count == 0 {
        return Ok(Segments::default());
    }
    let entsize = size_of::<Elf::ProgramHeader>();
    if usize::from(header.phentsize) != entsize {
        return Err(entsize_error(
            W,
            "e_phentsize",
            header.phentsize.into(),
            entsize,
        ));
    }
    let raws = elf
        .program_headers(endian, data)
        .map_err(|_| table_error(W, count as u64, entsize as u64, header.phoff, data.len()))?;
    // `raws` is a slice of the file: this allocation is bounded by the file's size.
    let headers = raws
        .iter()
        .map(|p| ProgramHeader {
            kind: p.p_type(endian),
            flags: p.p_flags(endian),
            offset: p.p_offset(endian).into(),
            vaddr: p.p_vaddr(endian).into(),
            filesz: p.p_filesz(endian).into(),
            memsz: p.p_memsz(endian).into(),
        })
        .collect();
    Ok(Segments { headers })
}

impl Segments {
    /// Reads the program header table described by `header`.
    pub fn parse(header: &Header, data: &[u8]) -> Result<Segments, ElfError> {
        match header.class {
            Class::Elf32 => parse_as::<FileHeader32<Endianness>>(header, data),
            Class::Elf64 => parse_as::<FileHeader64<Endianness>>(header, data),
        }
    }

    /// Every program header.
    pub fn iter(&self) -> impl Iterator<Item = &ProgramHeader> {
        self.headers.iter()
    }

    /// The first program header of type `kind`.
    pub fn by_kind(&self, kind: u32) -> Option<&ProgramHeader> {
        self.headers.iter().find(|p| p.kind == kind)
    }

    /// The file offset of the `len` bytes at virtual address `addr`, through the `PT_LOAD`
    /// segment whose file bytes contain all of them.
    pub fn file_offset(&self, addr: u64, len: u64, what: &str) -> Result<u64, ElfError> {
        let end = addr.checked_add(len);
        self.headers
            .iter()
            .filter(|p| p.kind == PT_LOAD)
            .find_map(|p| {
                let segment_end = p.vaddr.checked_add(p.filesz)?;
                if addr >= p.vaddr && end? <= segment_end {
                    p.offset.checked_add(addr.checked_sub(p.vaddr)?)
                } else {
                    None
                }
            })
            .ok_or_else(|| {
                ElfError::malformed(
                    Malformed::BadAddress,
                    format!(
                        "{what}: {len} bytes at address {addr:#x} are not inside any loadable segment's file bytes"
                    ),
                )
            })
    }

    /// The virtual address of file offset `offset`, if a `PT_LOAD` segment maps it.
    pub fn address_of(&self, offset: u64) -> Option<u64> {
        self.headers
            .iter()
            .filter(|p| p.kind == PT_LOAD)
            .find_map(|p| {
                let inside = offset >= p.offset && offset < p.offset.checked_add(p.filesz)?;
                inside.then(|| p.vaddr.checked_add(offset.checked_sub(p.offset)?))?
            })
    }
}
