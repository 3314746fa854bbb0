//! Entry point signatures and their hash.
//!
//! Every entry point crosses the FFI boundary with the same C shape (see `plugin_sdk::abi`):
//! bytes in, a status plus bytes out. What differs between entry points is how those bytes are
//! encoded: the [`WireKind`] of the input and of the output. The signature hash covers exactly
//! what a caller must agree on to call the entry point correctly:
//!
//! - the SDK ABI version (the C shape itself),
//! - the input's wire kind and, for JSON, the input type's name (the host must send a value the
//!   plugin can decode),
//! - the output's wire kind (the output's Rust type name is recorded, but is not part of the
//!   hash: JSON output is self-describing, so renaming the output struct breaks nothing).
//!
//! Whether the function returns `Result` is not ABI-relevant either: both shapes produce the
//! same status-plus-bytes answer.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// How a value is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireKind {
    /// serde JSON of a named Rust type.
    Json,
    /// UTF-8 text, passed as is.
    Text,
    /// Raw bytes, passed as is.
    Bytes,
    /// Nothing (`()`): the bytes are empty.
    None,
}

impl WireKind {
    fn as_str(self) -> &'static str {
        match self {
            WireKind::Json => "json",
            WireKind::Text => "text",
            WireKind::Bytes => "bytes",
            WireKind::None => "none",
        }
    }
}

/// One side (input or output) of an entry point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireType {
    /// How it is encoded.
    pub kind: WireKind,
    /// The Rust type as written by the author, e.g. `Story`; `()` for [`WireKind::None`].
    #[serde(rename = "type")]
    pub type_name: String,
}

impl WireType {
    /// A JSON value of the named type.
    pub fn json(type_name: &str) -> WireType {
        WireType {
            kind: WireKind::Json,
            type_name: type_name.to_string(),
        }
    }

    /// The given kind, with the canonical type name for non-JSON kinds.
    pub fn plain(kind: WireKind) -> WireType {
        let type_name = match kind {
            WireKind::Json => "Value",
            WireKind::Text => "String",
            WireKind::Bytes => "Vec<u8>",
            WireKind::None => "()",
        };
        WireType {
            kind,
            type_name: type_name.to_string(),
        }
    }
}

impl fmt::Display for WireType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WireKind::Json => write!(f, "json {}", self.type_name),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The ABI-relevant shape of an entry point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// What the entry point takes.
    pub input: WireType,
    /// What it returns.
    pub output: WireType,
}

impl Signature {
    /// The canonical text the hash is computed from (see the module docs for what is in it).
    pub fn canonical(&self, abi_version: u32) -> String {
        let input = match self.input.kind {
            WireKind::Json => format!("json:{}", self.input.type_name),
            other => other.as_str().to_string(),
        };
        format!(
            "plugin-abi:{abi_version};fn(bytes)->(status,bytes);in={input};out={}",
            self.output.kind.as_str()
        )
    }

    /// The signature hash: 16 hex digits of the SHA-256 of [`Signature::canonical`].
    pub fn hash(&self, abi_version: u32) -> String {
        let digest = Sha256::digest(self.canonical(abi_version).as_bytes());
        digest
            .iter()
            .take(8)
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}) -> {}", self.input, self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn story_to_json(output: &str) -> Signature {
        Signature {
            input: WireType::json("Story"),
            output: WireType::json(output),
        }
    }

    #[test]
    fn hash_ignores_the_output_type_name_only() {
        let base = story_to_json("WordStats");
        assert_eq!(base.hash(1), story_to_json("Renamed").hash(1));
        assert_ne!(
            base.hash(1),
            base.hash(2),
            "the ABI version is part of the hash"
        );
        let text_in = Signature {
            input: WireType::plain(WireKind::Text),
            ..base.clone()
        };
        assert_ne!(base.hash(1), text_in.hash(1));
        let other_input = Signature {
            input: WireType::json("Chapter"),
            ..base.clone()
        };
        assert_ne!(base.hash(1), other_input.hash(1));
        let text_out = Signature {
            output: WireType::plain(WireKind::Text),
            ..base.clone()
        };
        assert_ne!(base.hash(1), text_out.hash(1));
        assert_eq!(base.hash(1).len(), 16);
    }
}
