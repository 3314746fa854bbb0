//! The dynamic section, as the loader reads it: through `PT_DYNAMIC` and addresses
//! translated by the loadable segments.
//!
//! `object` decodes the entries ([`object::read::elf::Dyn`]) and the relocations
//! ([`object::read::elf::Rela`]); [`Dynamic::parse`] collects what
//! inspection needs: `DT_NEEDED`, `DT_RPATH`, `DT_RUNPATH` (as bytes), text relocation flags,
//! the constructor arrays, the symbol and string table addresses, and the relocation tables
//! ([`Rela`]). Every table is a slice of bytes already checked to be in the file, so counts
//! cost nothing before they are checked.

use super::error::{ElfError, Malformed};
use super::header::{Class, Header, raw};
use super::read::{bytes_at, entsize_error, string_at, table_error};
use super::segments::{PT_DYNAMIC, Segments};
use object::Endianness;
use object::elf::{FileHeader32, FileHeader64};
use object::read::ReadRef;
use object::read::elf::{Dyn as _, FileHeader, Rela as _};

pub use object::elf::{
    DF_TEXTREL, DT_FLAGS, DT_INIT_ARRAY, DT_INIT_ARRAYSZ, DT_JMPREL, DT_NEEDED, DT_NULL, DT_PLTREL,
    DT_PLTRELSZ, DT_PREINIT_ARRAYSZ, DT_REL, DT_RELA, DT_RELAENT, DT_RELASZ, DT_RPATH, DT_RUNPATH,
    DT_STRSZ, DT_STRTAB, DT_SYMTAB, DT_TEXTREL,
};

/// One relocation with addend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rela {
    /// `r_offset`: the address patched.
    pub offset: u64,
    /// Symbol index in the dynamic symbol table (0: none).
    pub symbol: u32,
    /// Relocation type (machine-specific).
    pub kind: u32,
    /// `r_addend`.
    pub addend: i64,
}

/// What the dynamic section says.
#[derive(Debug, Clone, Default)]
pub struct Dynamic<'data> {
    /// `DT_NEEDED` names.
    pub needed: Vec<&'data [u8]>,
    /// `DT_RPATH` values (colon-separated lists).
    pub rpath: Vec<&'data [u8]>,
    /// `DT_RUNPATH` values.
    pub runpath: Vec<&'data [u8]>,
    /// `DT_TEXTREL` present or `DF_TEXTREL` set.
    pub textrel: bool,
    /// `DT_INIT_ARRAY` address and `DT_INIT_ARRAYSZ`.
    pub init_array: Option<(u64, u64)>,
    /// `DT_PREINIT_ARRAYSZ`.
    pub preinit_array_size: u64,
    /// `DT_SYMTAB`.
    pub symtab: Option<u64>,
    /// `DT_STRTAB`.
    pub strtab: Option<u64>,
    /// `DT_RELA` and `DT_JMPREL` relocations.
    pub relocations: Vec<Rela>,
}

impl<'data> Dynamic<'data> {
    /// Reads the dynamic section through `PT_DYNAMIC` (an empty result if there is none).
    pub fn parse(
        header: &Header,
        segments: &Segments,
        data: &'data [u8],
    ) -> Result<Dynamic<'data>, ElfError> {
        match header.class {
            Class::Elf32 => parse_as::<FileHeader32<Endianness>>(header, segments, data),
            Class::Elf64 => parse_as::<FileHeader64<Endianness>>(header, segments, data),
        }
    }
}

fn parse_as<'data, Elf: FileHeader<Endian = Endianness>>(
    header: &Header,
    segments: &Segments,
    data: &'data [u8],
) -> Result<Dynamic<'data>, ElfError> {
    let Some(phdr) = segments.by_kind(PT_DYNAMIC) else {
        return Ok(Dynamic::default());
    };
    let endian = header.endian;
    let bytes = bytes_at(
        data,
        phdr.offset,
        phdr.filesz,
        "dynamic section (PT_DYNAMIC)",
    )?;
    let entries: &[Elf::Dyn] = object::pod::slice_from_all_bytes(bytes).map_err(|()| {
        ElfError::malformed(
            Malformed::Inconsistent,
            format!(
                "dynamic section (PT_DYNAMIC): offset {:#x} is not aligned for its entries",
                phdr.offset
            ),
        )
    })?;
    let end = entries
        .iter()
        .position(|d| d.d_tag(endian).into() == u64::from(DT_NULL))
        .unwrap_or(entries.len());
    let entries = entries.get(..end).unwrap_or_default();
    let first = |tag: u32| {
        entries
            .iter()
            .find(|d| d.d_tag(endian).into() == u64::from(tag))
            .map(|d| d.d_val(endian).into())
    };
    let mut dynamic = Dynamic {
        textrel: first(DT_TEXTREL).is_some()
            || first(DT_FLAGS).is_some_and(|f| f & u64::from(DF_TEXTREL) != 0),
        init_array: first(DT_INIT_ARRAY).map(|a| (a, first(DT_INIT_ARRAYSZ).unwrap_or(0))),
        preinit_array_size: first(DT_PREINIT_ARRAYSZ).unwrap_or(0),
        symtab: first(DT_SYMTAB),
        strtab: first(DT_STRTAB),
        ..Dynamic::default()
    };

    let string_tags = [DT_NEEDED, DT_RPATH, DT_RUNPATH].map(u64::from);
    if entries
        .iter()
        .any(|d| string_tags.contains(&d.d_tag(endian).into()))
    {
        let (Some(strtab), Some(strsz)) = (dynamic.strtab, first(DT_STRSZ)) else {
            return Err(ElfError::malformed(
                Malformed::BadString,
                "dynamic section: DT_NEEDED/DT_RPATH/DT_RUNPATH without DT_STRTAB and DT_STRSZ",
            ));
        };
        let offset = segments.file_offset(strtab, strsz, "dynamic string table (DT_STRTAB)")?;
        let strings = bytes_at(data, offset, strsz, "dynamic string table")?;
        for entry in entries {
            let tag = entry.d_tag(endian).into();
            let (list, what) = match u32::try_from(tag) {
                Ok(DT_NEEDED) => (&mut dynamic.needed, "DT_NEEDED entry"),
                Ok(DT_RPATH) => (&mut dynamic.rpath, "DT_RPATH entry"),
                Ok(DT_RUNPATH) => (&mut dynamic.runpath, "DT_RUNPATH entry"),
                _ => continue,
            };
            list.push(string_at(strings, entry.d_val(endian).into(), what)?);
        }
    }

    // DT_RELA, and DT_JMPREL unless DT_PLTREL says its entries are DT_REL (no addend; not
    // used on the hosts we run on).
    let entsize = size_of::<Elf::Rela>();
    let mips64el = raw::<Elf>(data)?.is_mips64el(endian);
    for (addr_tag, size_tag, what) in [
        (DT_RELA, DT_RELASZ, "relocation table (DT_RELA)"),
        (DT_JMPREL, DT_PLTRELSZ, "PLT relocation table (DT_JMPREL)"),
    ] {
        let (Some(addr), Some(size)) = (first(addr_tag), first(size_tag)) else {
            continue;
        };
        if size == 0 || (addr_tag == DT_JMPREL && first(DT_PLTREL) == Some(u64::from(DT_REL))) {
            continue;
        }
        if let Some(declared) = first(DT_RELAENT)
            && declared != entsize as u64
        {
            return Err(entsize_error(what, "DT_RELAENT", declared, entsize));
        }
        let offset = segments.file_offset(addr, size, what)?;
        let count = size.checked_div(entsize as u64).unwrap_or(0);
        let table: &[Elf::Rela] = usize::try_from(count)
            .ok()
            .and_then(|count| data.read_slice_at(offset, count).ok())
            .ok_or_else(|| table_error(what, count, entsize as u64, offset, data.len()))?;
        // `table` is a slice of the file: this allocation is bounded by the file's size.
        dynamic.relocations.reserve(table.len());
        dynamic.relocations.extend(table.iter().map(|rela| Rela {
            offset: rela.r_offset(endian).into(),
            symbol: rela.r_sym(endian, mips64el),
            kind: rela.r_type(endian, mips64el),
            addend: rela.r_addend(endian).into(),
        }));
    }
    Ok(dynamic)
}
