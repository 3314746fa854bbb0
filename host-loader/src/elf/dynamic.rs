//! The dynamic section, as the loader reads it: through `PT_DYNAMIC` and addresses
//! translated by the loadable segments.
//!
//! [`Dynamic::parse`] collects what inspection needs: `DT_NEEDED`, `DT_RPATH`, `DT_RUNPATH`
//! (as bytes), text relocation flags, the constructor arrays, the symbol and string table
//! addresses, and the relocation tables ([`Rela`]). Counts come from sizes that are checked
//! against the segment bytes present before anything is allocated.

use super::error::{ElfError, Malformed};
use super::header::Header;
use super::read::{Class, Reader, Table, string_at};
use super::segments::{PT_DYNAMIC, Segments};

/// `DT_NULL`: end of the dynamic section.
pub const DT_NULL: u64 = 0;
/// `DT_NEEDED`: a library to load.
pub const DT_NEEDED: u64 = 1;
/// `DT_PLTRELSZ`.
pub const DT_PLTRELSZ: u64 = 2;
/// `DT_STRTAB`.
pub const DT_STRTAB: u64 = 5;
/// `DT_SYMTAB`.
pub const DT_SYMTAB: u64 = 6;
/// `DT_RELA`.
pub const DT_RELA: u64 = 7;
/// `DT_RELASZ`.
pub const DT_RELASZ: u64 = 8;
/// `DT_RELAENT`.
pub const DT_RELAENT: u64 = 9;
/// `DT_STRSZ`.
pub const DT_STRSZ: u64 = 10;
/// `DT_RPATH`.
pub const DT_RPATH: u64 = 15;
/// `DT_TEXTREL`.
pub const DT_TEXTREL: u64 = 22;
/// `DT_JMPREL`.
pub const DT_JMPREL: u64 = 23;
/// `DT_INIT_ARRAY`.
pub const DT_INIT_ARRAY: u64 = 25;
/// `DT_INIT_ARRAYSZ`.
pub const DT_INIT_ARRAYSZ: u64 = 27;
/// `DT_RUNPATH`.
pub const DT_RUNPATH: u64 = 29;
/// `DT_FLAGS`.
pub const DT_FLAGS: u64 = 30;
/// `DT_PREINIT_ARRAYSZ`.
pub const DT_PREINIT_ARRAYSZ: u64 = 33;
/// `DF_TEXTREL` in `DT_FLAGS`.
pub const DF_TEXTREL: u64 = 4;

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
        let Some(phdr) = segments.by_kind(PT_DYNAMIC) else {
            return Ok(Dynamic::default());
        };
        let r = header.reader(data);
        let entsize = r.word_size().saturating_mul(2);
        let count = phdr.filesz.checked_div(entsize).unwrap_or(0);
        let table = r.table(phdr.offset, count, entsize, entsize, "dynamic section")?;
        let mut entries = Vec::new();
        for at in table.entries() {
            let tag = r.word(at, "dynamic entry")?;
            if tag == DT_NULL {
                break;
            }
            let value = r.word(at.saturating_add(r.word_size()), "dynamic entry")?;
            entries.push((tag, value));
        }
        let first = |tag: u64| entries.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
        let mut dynamic = Dynamic {
            textrel: first(DT_TEXTREL).is_some()
                || first(DT_FLAGS).is_some_and(|f| f & DF_TEXTREL != 0),
            init_array: first(DT_INIT_ARRAY).map(|a| (a, first(DT_INIT_ARRAYSZ).unwrap_or(0))),
            preinit_array_size: first(DT_PREINIT_ARRAYSZ).unwrap_or(0),
            symtab: first(DT_SYMTAB),
            strtab: first(DT_STRTAB),
            ..Dynamic::default()
        };

        let string_tags = [DT_NEEDED, DT_RPATH, DT_RUNPATH];
        if entries.iter().any(|(t, _)| string_tags.contains(t)) {
            let (Some(strtab), Some(strsz)) = (dynamic.strtab, first(DT_STRSZ)) else {
                return Err(ElfError::malformed(
                    Malformed::BadString,
                    "dynamic section: DT_NEEDED/DT_RPATH/DT_RUNPATH without DT_STRTAB and DT_STRSZ",
                ));
            };
            let offset = segments.file_offset(strtab, strsz, "dynamic string table (DT_STRTAB)")?;
            let strings = r.bytes(offset, strsz, "dynamic string table")?;
            for (tag, value) in &entries {
                let list = match *tag {
                    DT_NEEDED => &mut dynamic.needed,
                    DT_RPATH => &mut dynamic.rpath,
                    DT_RUNPATH => &mut dynamic.runpath,
                    _ => continue,
                };
                list.push(string_at(strings, *value, "dynamic entry string")?);
            }
        }

        let relaent = first(DT_RELAENT).unwrap_or(rela_size(r.class));
        for (addr_tag, size_tag, what) in [
            (DT_RELA, DT_RELASZ, "relocation table (DT_RELA)"),
            (DT_JMPREL, DT_PLTRELSZ, "PLT relocation table (DT_JMPREL)"),
        ] {
            let (Some(addr), Some(size)) = (first(addr_tag), first(size_tag)) else {
                continue;
            };
            if size == 0 {
                continue;
            }
            let offset = segments.file_offset(addr, size, what)?;
            let count = size.checked_div(relaent).unwrap_or(0);
            let table = r.table(offset, count, relaent, rela_size(r.class), what)?;
            read_relocations(&r, &table, &mut dynamic.relocations)?;
        }
        Ok(dynamic)
    }
}

/// Bytes of one `Elf*_Rela`.
pub fn rela_size(class: Class) -> u64 {
    match class {
        Class::Elf32 => 12,
        Class::Elf64 => 24,
    }
}

fn read_relocations(r: &Reader<'_>, table: &Table, out: &mut Vec<Rela>) -> Result<(), ElfError> {
    const W: &str = "relocation";
    out.reserve(usize::try_from(table.count).unwrap_or(0));
    for at in table.entries() {
        let word = r.word_size();
        let offset = r.word(at, W)?;
        let info = r.word(at.saturating_add(word), W)?;
        let addend = r.word(at.saturating_add(word.saturating_mul(2)), W)?;
        let (symbol, kind, addend) = match r.class {
            Class::Elf64 => (
                u32::try_from(info >> 32).unwrap_or(u32::MAX),
                u32::try_from(info & 0xffff_ffff).unwrap_or(u32::MAX),
                i64::from_ne_bytes(addend.to_ne_bytes()),
            ),
            Class::Elf32 => (
                u32::try_from(info >> 8).unwrap_or(u32::MAX),
                u32::try_from(info & 0xff).unwrap_or(u32::MAX),
                i64::from(i32::from_ne_bytes(
                    u32::try_from(addend).unwrap_or(0).to_ne_bytes(),
                )),
            ),
        };
        out.push(Rela {
            offset,
            symbol,
            kind,
            addend,
        });
    }
    Ok(())
}
