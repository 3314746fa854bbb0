//! The glue between `object`'s readers and our errors.
//!
//! The byte-level reading is `object`'s ([`object::read::ReadRef`] for `&[u8]`: offsets and
//! sizes checked, `Result` instead of panics; [`object::read::StringTable`] for names). What
//! is ours is the error each failure becomes: an [`ElfError`] with a stable code and a message
//! that names the structure, the field and the fault.

use super::error::{ElfError, Malformed};
use object::read::{ReadRef, StringTable};

/// `len` bytes at `offset` of `data`; `what` names the structure for the error.
pub(crate) fn bytes_at<'data>(
    data: &'data [u8],
    offset: u64,
    len: u64,
    what: &str,
) -> Result<&'data [u8], ElfError> {
    // `object` hands out zero bytes at any offset; an offset past the end is still wrong.
    let past_end = len == 0 && offset > data.len() as u64;
    let bytes = if past_end {
        Err(())
    } else {
        data.read_bytes_at(offset, len)
    };
    bytes.map_err(|()| {
        ElfError::malformed(
            Malformed::Truncated,
            format!(
                "{what}: {len} bytes at offset {offset:#x} run past the end of the {}-byte file",
                data.len()
            ),
        )
    })
}

/// Why a table of `count` entries of `entsize` bytes at `offset` could not be read from a
/// file of `file_len` bytes: its size overflows ([`Malformed::BadCount`]) or it runs past the
/// end of the file ([`Malformed::Truncated`]).
pub(crate) fn table_error(
    what: &str,
    count: u64,
    entsize: u64,
    offset: u64,
    file_len: usize,
) -> ElfError {
    if count.checked_mul(entsize).is_none() {
        return ElfError::malformed(
            Malformed::BadCount,
            format!("{what}: {count} entries of {entsize} bytes overflow"),
        );
    }
    ElfError::malformed(
        Malformed::Truncated,
        format!(
            "{what}: {count} entries of {entsize} bytes at offset {offset:#x} run past the end of the {file_len}-byte file"
        ),
    )
}

/// The error for an entry size that is not the size of the structure `what` holds.
pub(crate) fn entsize_error(what: &str, field: &str, entsize: u64, expected: usize) -> ElfError {
    let detail = if entsize == 0 {
        format!("{what}: {field} is 0")
    } else {
        format!("{what}: {field} is {entsize}, but one entry is {expected} bytes")
    };
    ElfError::malformed(Malformed::BadEntrySize, detail)
}

/// An error `object` reported, as a malformed-file error of `kind` about `what` (object's
/// message is the detail).
pub(crate) fn object_error(kind: Malformed, what: &str, error: object::Error) -> ElfError {
    ElfError::malformed(kind, format!("{what}: {error}"))
}

/// The NUL-terminated string at `offset` in the string table `strings`.
pub(crate) fn string_at<'data>(
    strings: &'data [u8],
    offset: u64,
    what: &str,
) -> Result<&'data [u8], ElfError> {
    let table = StringTable::new(strings, 0, strings.len() as u64);
    u32::try_from(offset)
        .ok()
        .and_then(|offset| table.get(offset).ok())
        .ok_or_else(|| {
            let fault = if offset < strings.len() as u64 {
                "is not NUL-terminated".to_string()
            } else {
                format!("is outside its {}-byte string table", strings.len())
            };
            ElfError::malformed(
                Malformed::BadString,
                format!("{what}: the name at offset {offset:#x} {fault}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fail_cleanly_past_the_end() {
        let data = [1u8, 2, 3, 4, 5];
        assert_eq!(bytes_at(&data, 1, 4, "x").unwrap(), &data[1..]);
        assert_eq!(
            bytes_at(&data, 2, 4, "x").unwrap_err().code(),
            "ELF_TRUNCATED"
        );
        assert_eq!(
            bytes_at(&data, u64::MAX, 1, "x").unwrap_err().code(),
            "ELF_TRUNCATED"
        );
        assert_eq!(bytes_at(&data, 5, 0, "x").unwrap(), b"");
        assert_eq!(
            bytes_at(&data, 6, 0, "x").unwrap_err().code(),
            "ELF_TRUNCATED"
        );
        assert_eq!(table_error("t", u64::MAX, 8, 0, 5).code(), "ELF_BAD_COUNT");
        assert_eq!(table_error("t", 2, 8, 0, 5).code(), "ELF_TRUNCATED");
        assert_eq!(
            entsize_error("t", "sh_entsize", 0, 24).code(),
            "ELF_BAD_ENTSIZE"
        );
        assert_eq!(string_at(b"ab\0cd\0", 3, "s").unwrap(), b"cd");
        let err = string_at(b"ab", 0, "s").unwrap_err();
        assert_eq!(err.code(), "ELF_BAD_STRING");
        assert!(err.to_string().contains("not NUL-terminated"), "{err}");
        let err = string_at(b"ab\0", 9, "s").unwrap_err();
        assert_eq!(err.code(), "ELF_BAD_STRING");
        assert!(err.to_string().contains("outside"), "{err}");
        assert_eq!(
            string_at(b"ab\0", u64::MAX, "s").unwrap_err().code(),
            "ELF_BAD_STRING"
        );
    }
}
