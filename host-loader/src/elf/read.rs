//! Bounds-checked reads from the file's bytes: the only place hostile offsets, sizes and
//! counts meet the data.
//!
//! [`Reader`] knows the file's class (32/64-bit) and byte order and reads integers at an
//! offset, returning an [`ElfError`] instead of panicking when the bytes are not there.
//! [`Table`] is a checked array of fixed-size entries: its count times its entry size is
//! checked against the bytes present *before* anything is allocated for it, so a file that
//! claims four billion entries costs nothing.

use super::error::{ElfError, Malformed};

/// ELF class: the width of addresses and offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `ELFCLASS32`.
    Elf32,
    /// `ELFCLASS64`.
    Elf64,
}

/// ELF data encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// `ELFDATA2LSB`.
    Little,
    /// `ELFDATA2MSB`.
    Big,
}

/// Integer reads at offsets of one file, in its class and byte order.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'data> {
    /// The whole file.
    pub data: &'data [u8],
    /// Its class.
    pub class: Class,
    /// Its byte order.
    pub endian: Endian,
}

/// `offset + len` as a range of `data`, if every byte is present.
pub fn slice_at(data: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let len = usize::try_from(len).ok()?;
    data.get(start..start.checked_add(len)?)
}

impl<'data> Reader<'data> {
    /// `len` bytes at `offset`; `what` names the structure for the error.
    pub fn bytes(&self, offset: u64, len: u64, what: &str) -> Result<&'data [u8], ElfError> {
        slice_at(self.data, offset, len).ok_or_else(|| {
            ElfError::malformed(
                Malformed::Truncated,
                format!(
                    "{what}: {len} bytes at offset {offset:#x} run past the end of the {}-byte file",
                    self.data.len()
                ),
            )
        })
    }

    fn array<const N: usize>(&self, offset: u64, what: &str) -> Result<[u8; N], ElfError> {
        let bytes = self.bytes(offset, N as u64, what)?;
        // `bytes` has exactly N bytes, so this cannot fail; the error is for completeness.
        <[u8; N]>::try_from(bytes)
            .map_err(|_| ElfError::malformed(Malformed::Truncated, format!("{what}: short read")))
    }

    /// A byte.
    pub fn u8(&self, offset: u64, what: &str) -> Result<u8, ElfError> {
        Ok(self.array::<1>(offset, what)?[0])
    }

    /// A 16-bit integer.
    pub fn u16(&self, offset: u64, what: &str) -> Result<u16, ElfError> {
        let raw = self.array(offset, what)?;
        Ok(match self.endian {
            Endian::Little => u16::from_le_bytes(raw),
            Endian::Big => u16::from_be_bytes(raw),
        })
    }

    /// A 32-bit integer.
    pub fn u32(&self, offset: u64, what: &str) -> Result<u32, ElfError> {
        let raw = self.array(offset, what)?;
        Ok(match self.endian {
            Endian::Little => u32::from_le_bytes(raw),
            Endian::Big => u32::from_be_bytes(raw),
        })
    }

    /// A 64-bit integer.
    pub fn u64(&self, offset: u64, what: &str) -> Result<u64, ElfError> {
        let raw = self.array(offset, what)?;
        Ok(match self.endian {
            Endian::Little => u64::from_le_bytes(raw),
            Endian::Big => u64::from_be_bytes(raw),
        })
    }

    /// An address or offset: 32 bits in ELF32, 64 bits in ELF64.
    pub fn word(&self, offset: u64, what: &str) -> Result<u64, ElfError> {
        match self.class {
            Class::Elf32 => self.u32(offset, what).map(u64::from),
            Class::Elf64 => self.u64(offset, what),
        }
    }

    /// The size of a word in this class.
    pub fn word_size(&self) -> u64 {
        match self.class {
            Class::Elf32 => 4,
            Class::Elf64 => 8,
        }
    }

    /// A checked table of `count` entries of `entsize` bytes at `offset`, whose entries must
    /// be at least `min_entsize` bytes.
    pub fn table(
        &self,
        offset: u64,
        count: u64,
        entsize: u64,
        min_entsize: u64,
        what: &str,
    ) -> Result<Table, ElfError> {
        if count == 0 {
            return Ok(Table {
                offset,
                count: 0,
                entsize,
            });
        }
        if entsize < min_entsize {
            return Err(ElfError::malformed(
                Malformed::BadEntrySize,
                format!(
                    "{what}: entry size {entsize} is smaller than the {min_entsize} bytes of one entry"
                ),
            ));
        }
        let total = count.checked_mul(entsize).ok_or_else(|| {
            ElfError::malformed(
                Malformed::BadCount,
                format!("{what}: {count} entries of {entsize} bytes overflow"),
            )
        })?;
        if slice_at(self.data, offset, total).is_none() {
            return Err(ElfError::malformed(
                Malformed::Truncated,
                format!(
                    "{what}: {count} entries of {entsize} bytes at offset {offset:#x} run past the end of the {}-byte file",
                    self.data.len()
                ),
            ));
        }
        Ok(Table {
            offset,
            count,
            entsize,
        })
    }
}

/// A table whose every entry is known to be inside the file (see [`Reader::table`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// File offset of the first entry.
    pub offset: u64,
    /// Number of entries.
    pub count: u64,
    /// Bytes per entry.
    pub entsize: u64,
}

impl Table {
    /// File offset of entry `index`, if `index < count`.
    pub fn entry(&self, index: u64) -> Option<u64> {
        if index >= self.count {
            return None;
        }
        self.offset.checked_add(index.checked_mul(self.entsize)?)
    }

    /// File offsets of every entry.
    pub fn entries(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.count).filter_map(|index| self.entry(index))
    }
}

/// The NUL-terminated string at `offset` in the string table `strings`.
pub fn string_at<'data>(
    strings: &'data [u8],
    offset: u64,
    what: &str,
) -> Result<&'data [u8], ElfError> {
    let rest = usize::try_from(offset)
        .ok()
        .and_then(|start| strings.get(start..))
        .ok_or_else(|| {
            ElfError::malformed(
                Malformed::BadString,
                format!(
                    "{what}: name offset {offset:#x} is outside its {}-byte string table",
                    strings.len()
                ),
            )
        })?;
    let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
        ElfError::malformed(
            Malformed::BadString,
            format!("{what}: the name at offset {offset:#x} is not NUL-terminated"),
        )
    })?;
    Ok(rest.get(..end).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fail_cleanly_past_the_end() {
        let data = [1u8, 2, 3, 4, 5];
        let le = Reader {
            data: &data,
            class: Class::Elf64,
            endian: Endian::Little,
        };
        assert_eq!(le.u32(0, "x").unwrap(), 0x0403_0201);
        let be = Reader {
            endian: Endian::Big,
            ..le
        };
        assert_eq!(be.u16(0, "x").unwrap(), 0x0102);
        assert_eq!(le.u32(2, "x").unwrap_err().code(), "ELF_TRUNCATED");
        assert_eq!(le.u64(u64::MAX, "x").unwrap_err().code(), "ELF_TRUNCATED");
        assert_eq!(
            le.table(0, u64::MAX, 8, 8, "t").unwrap_err().code(),
            "ELF_BAD_COUNT"
        );
        assert_eq!(
            le.table(0, 2, 0, 8, "t").unwrap_err().code(),
            "ELF_BAD_ENTSIZE"
        );
        assert_eq!(
            le.table(1, 1, 8, 8, "t").unwrap_err().code(),
            "ELF_TRUNCATED"
        );
        assert_eq!(string_at(b"ab\0cd\0", 3, "s").unwrap(), b"cd");
        assert_eq!(
            string_at(b"ab", 0, "s").unwrap_err().code(),
            "ELF_BAD_STRING"
        );
        assert_eq!(
            string_at(b"ab\0", 9, "s").unwrap_err().code(),
            "ELF_BAD_STRING"
        );
    }
}
