//! The program header table: what the loader maps, and address-to-file translation.
//!
//! [`Segments::file_offset`] translates a virtual address (as found in the dynamic section)
//! to a file offset through the `PT_LOAD` segment that *contains* it, checking that the whole
//! range lies in that segment's file bytes; the first segment is not assumed to be the one.

use super::error::{ElfError, Malformed};
use super::header::Header;
use super::read::{Class, Reader};
use super::sections::SectionTable;

/// `PT_LOAD`.
pub const PT_LOAD: u32 = 1;
/// `PT_DYNAMIC`.
pub const PT_DYNAMIC: u32 = 2;
/// `PT_GNU_STACK`: its flags say whether the stack is executable.
pub const PT_GNU_STACK: u32 = 0x6474_e551;
/// Segment flag: executable.
pub const PF_X: u32 = 1;
/// Segment flag: writable.
pub const PF_W: u32 = 2;
/// Segment flag: readable.
pub const PF_R: u32 = 4;
/// `e_phnum` value meaning the count is in section 0's `sh_info`.
pub const PN_XNUM: u16 = 0xffff;

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

fn read_header(r: &Reader<'_>, at: u64) -> Result<ProgramHeader, ElfError> {
    const W: &str = "program header";
    let field = |offset: u64| at.saturating_add(offset);
    Ok(match r.class {
        Class::Elf64 => ProgramHeader {
            kind: r.u32(field(0), W)?,
            flags: r.u32(field(4), W)?,
            offset: r.u64(field(8), W)?,
            vaddr: r.u64(field(16), W)?,
            filesz: r.u64(field(32), W)?,
            memsz: r.u64(field(40), W)?,
        },
        Class::Elf32 => ProgramHeader {
            kind: r.u32(field(0), W)?,
            offset: r.u32(field(4), W)?.into(),
            vaddr: r.u32(field(8), W)?.into(),
            filesz: r.u32(field(16), W)?.into(),
            memsz: r.u32(field(20), W)?.into(),
            flags: r.u32(field(24), W)?,
        },
    })
}

impl Segments {
    /// Reads the program header table described by `header` (`sections` supplies the count
    /// when `e_phnum` is `PN_XNUM`).
    pub fn parse(
        header: &Header,
        sections: &SectionTable<'_>,
        data: &[u8],
    ) -> Result<Segments, ElfError> {
        let count = match header.phnum {
            PN_XNUM => sections.get(0).map_or(0, |zero| u64::from(zero.info)),
            n => u64::from(n),
        };
        if header.phoff == 0 || count == 0 {
            return Ok(Segments::default());
        }
        let r = header.reader(data);
        let min = match r.class {
            Class::Elf32 => 32,
            Class::Elf64 => 56,
        };
        let table = r.table(
            header.phoff,
            count,
            header.phentsize.into(),
            min,
            "program header table",
        )?;
        let mut headers = Vec::with_capacity(usize::try_from(table.count).unwrap_or(0));
        for at in table.entries() {
            headers.push(read_header(&r, at)?);
        }
        Ok(Segments { headers })
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
