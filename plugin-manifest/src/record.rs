//! The framed record format of the `.plugin_manifest` section.
//!
//! The section is a concatenation of records, one per `static` the macros emitted (the linker
//! merges them in any order, possibly with zero padding between them):
//!
//! ```text
//! offset  size  field
//! 0       4     magic  b"PLGR"
//! 4       1     format version (1)
//! 5       1     kind: 1 manifest, 2 ABI facts, 3 entry point
//! 6       2     reserved, zero
//! 8       4     payload length, little endian
//! 12      n     payload: UTF-8 JSON of the kind's type
//! ```
//!
//! [`parse_section`] reads hostile bytes: every length is checked against the bytes present
//! before use, and nothing is allocated from a claimed size.

use thiserror::Error;

/// Magic bytes opening every record.
pub const MAGIC: [u8; 4] = *b"PLGR";
/// The record format version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Size of the record header.
pub const HEADER_LEN: usize = 12;
/// Largest payload a record may carry. Manifests are small; this bounds what a hostile file can
/// make the host parse.
pub const MAX_PAYLOAD_LEN: usize = 64 * 1024;
/// Largest number of records a section may hold (one manifest, one ABI record, entry points).
pub const MAX_RECORDS: usize = 256;

/// What a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// Identity, permissions, limits ([`crate::model::PluginInfo`]).
    Manifest = 1,
    /// How the plugin was built ([`crate::model::AbiFacts`]).
    Abi = 2,
    /// One entry point ([`crate::model::EntryPoint`]).
    Entry = 3,
}

impl RecordKind {
    fn from_byte(byte: u8) -> Option<RecordKind> {
        match byte {
            1 => Some(RecordKind::Manifest),
            2 => Some(RecordKind::Abi),
            3 => Some(RecordKind::Entry),
            _ => None,
        }
    }
}

/// One record, borrowing its payload from the section bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// What it describes.
    pub kind: RecordKind,
    /// Offset of the record's header within the section.
    pub offset: usize,
    /// The JSON payload.
    pub payload: &'a [u8],
}

/// Why the section bytes are not a valid sequence of records.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes at `offset` do not start with the record magic.
    #[error(
        "manifest record at offset {offset}: bad magic (expected \"PLGR\"); the section is corrupt or not written by plugin-macros"
    )]
    BadMagic {
        /// Offset within the section.
        offset: usize,
    },
    /// The record was written by a newer or older format.
    #[error(
        "manifest record at offset {offset}: format version {version} is not supported (this host reads version {FORMAT_VERSION}); rebuild the plugin with a compatible plugin-sdk"
    )]
    UnsupportedVersion {
        /// Offset within the section.
        offset: usize,
        /// The version found.
        version: u8,
    },
    /// The kind byte is unknown.
    #[error("manifest record at offset {offset}: unknown record kind {kind}")]
    UnknownKind {
        /// Offset within the section.
        offset: usize,
        /// The kind byte found.
        kind: u8,
    },
    /// The header or payload runs past the end of the section.
    #[error(
        "manifest record at offset {offset}: truncated (needs {needed} bytes, {available} present)"
    )]
    Truncated {
        /// Offset within the section.
        offset: usize,
        /// Bytes the record claims.
        needed: usize,
        /// Bytes actually present from `offset`.
        available: usize,
    },
    /// The payload is larger than [`MAX_PAYLOAD_LEN`].
    #[error(
        "manifest record at offset {offset}: payload of {len} bytes exceeds the {MAX_PAYLOAD_LEN}-byte maximum"
    )]
    TooLarge {
        /// Offset within the section.
        offset: usize,
        /// Claimed length.
        len: usize,
    },
    /// More than [`MAX_RECORDS`] records.
    #[error("manifest section holds more than {MAX_RECORDS} records")]
    TooMany,
}

/// Encodes one record (used by the macros at compile time).
pub fn encode(kind: RecordKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header(kind, payload.len()));
    out.extend_from_slice(payload);
    out
}

const fn header(kind: RecordKind, len: usize) -> [u8; HEADER_LEN] {
    assert!(len <= MAX_PAYLOAD_LEN, "manifest record payload too large");
    let len = (len as u32).to_le_bytes();
    [
        MAGIC[0],
        MAGIC[1],
        MAGIC[2],
        MAGIC[3],
        FORMAT_VERSION,
        kind as u8,
        0,
        0,
        len[0],
        len[1],
        len[2],
        len[3],
    ]
}

/// Encodes one record into an array in a `const` context, so that a `static` can hold it.
/// `N` must be `HEADER_LEN + payload.len()`; anything else fails to compile.
pub const fn encode_array<const N: usize>(kind: RecordKind, payload: &[u8]) -> [u8; N] {
    assert!(
        N == HEADER_LEN + payload.len(),
        "record array length must be HEADER_LEN + payload length"
    );
    let header = header(kind, payload.len());
    let mut out = [0u8; N];
    let mut i = 0;
    while i < HEADER_LEN {
        out[i] = header[i];
        i += 1;
    }
    while i < N {
        out[i] = payload[i - HEADER_LEN];
        i += 1;
    }
    out
}

/// Splits section bytes into records. Zero bytes between records (linker alignment padding)
/// are skipped.
pub fn parse_section(section: &[u8]) -> Result<Vec<Record<'_>>, RecordError> {
    let mut records = Vec::new();
    let mut offset = 0;
    while offset < section.len() {
        let rest = section.get(offset..).unwrap_or_default();
        if rest.first() == Some(&0) {
            offset += 1;
            continue;
        }
        if records.len() == MAX_RECORDS {
            return Err(RecordError::TooMany);
        }
        let record = parse_one(rest, offset)?;
        offset += HEADER_LEN + record.payload.len();
        records.push(record);
    }
    Ok(records)
}

/// Reads the record at the start of `bytes`; `offset` is only used in error messages.
pub fn parse_one(bytes: &[u8], offset: usize) -> Result<Record<'_>, RecordError> {
    let truncated = |needed| RecordError::Truncated {
        offset,
        needed,
        available: bytes.len(),
    };
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(truncated(HEADER_LEN))?;
    if header[..4] != MAGIC {
        return Err(RecordError::BadMagic { offset });
    }
    if header[4] != FORMAT_VERSION {
        return Err(RecordError::UnsupportedVersion {
            offset,
            version: header[4],
        });
    }
    let kind = RecordKind::from_byte(header[5]).ok_or(RecordError::UnknownKind {
        offset,
        kind: header[5],
    })?;
    let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if len > MAX_PAYLOAD_LEN {
        return Err(RecordError::TooLarge { offset, len });
    }
    let payload = bytes
        .get(HEADER_LEN..HEADER_LEN + len)
        .ok_or(truncated(HEADER_LEN + len))?;
    Ok(Record {
        kind,
        offset,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_padding() {
        let mut section = encode(RecordKind::Manifest, b"{\"a\":1}");
        section.extend_from_slice(&[0, 0, 0]);
        section.extend_from_slice(&encode_array::<14>(RecordKind::Entry, b"{}"));
        let records = parse_section(&section).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].payload, b"{\"a\":1}");
        assert_eq!(records[1].kind, RecordKind::Entry);
        assert_eq!(records[1].offset, 19 + 3);
    }

    #[test]
    fn rejects_hostile_headers() {
        let good = encode(RecordKind::Abi, b"{}");
        assert!(matches!(
            parse_section(&good[..5]),
            Err(RecordError::Truncated { .. })
        ));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(
            parse_section(&bad),
            Err(RecordError::BadMagic { offset: 0 })
        );
        let mut bad = good.clone();
        bad[4] = 9;
        assert!(matches!(
            parse_section(&bad),
            Err(RecordError::UnsupportedVersion { version: 9, .. })
        ));
        let mut bad = good.clone();
        bad[5] = 77;
        assert!(matches!(
            parse_section(&bad),
            Err(RecordError::UnknownKind { kind: 77, .. })
        ));
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_section(&bad),
            Err(RecordError::TooLarge { .. })
        ));
        let mut bad = good;
        bad[8..12].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            parse_section(&bad),
            Err(RecordError::Truncated { needed: 112, .. })
        ));
    }

    #[test]
    fn bounds_the_record_count() {
        let one = encode(RecordKind::Entry, b"");
        let section: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(one.len() * (MAX_RECORDS + 1))
            .collect();
        assert_eq!(parse_section(&section), Err(RecordError::TooMany));
    }
}
