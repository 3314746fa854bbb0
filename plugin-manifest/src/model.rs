//! The manifest types, and their assembly from records.
//!
//! The section holds three kinds of record ([`crate::record`]); [`Manifest::from_records`]
//! decodes them, checks that there is exactly one identity record and one ABI record and that
//! no entry point appears twice, then validates every field, reporting all problems at once.

use crate::level::{LimitRequest, SecurityLevel};
use crate::permission::Grant;
use crate::record::{Record, RecordKind};
use crate::signature::{Signature, WireType};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest plugin name allowed.
pub const MAX_NAME_LEN: usize = 64;

/// Identity, permissions and requested limits: the manifest record a plugin author writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    /// kebab-case name, at most 64 characters.
    pub name: String,
    /// semver version of the plugin.
    pub version: String,
    /// One line saying what the plugin does.
    pub description: String,
    /// Who wrote it.
    pub author: String,
    /// The security level the plugin asks to run at.
    pub security_level: SecurityLevel,
    /// Requested permissions.
    pub permissions: Vec<Grant>,
    /// Requested limits (each at most the level's).
    pub limits: LimitRequest,
}

/// How the plugin was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbiFacts {
    /// The SDK ABI version the entry points follow.
    pub sdk_abi_version: u32,
    /// The plugin-sdk crate version.
    pub sdk_version: String,
    /// `rustc --version` of the compiler that built the SDK.
    pub rustc: String,
    /// Target triple.
    pub target: String,
    /// `unwind` or `abort`. With `abort`, a panic cannot be caught at the boundary and ends the
    /// worker instead (reported as `crashed`).
    pub panic: String,
}

/// One exported entry point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryPoint {
    /// The hook it serves, e.g. `analyze`.
    pub hook: String,
    /// The exported function symbol, `__plugin_hook_<hook>`.
    pub symbol: String,
    /// What it takes and returns.
    pub signature: Signature,
    /// [`Signature::hash`] at the ABI version of the plugin.
    pub signature_hash: String,
}

impl EntryPoint {
    /// An entry point for `hook` with the canonical symbol and a freshly computed hash.
    pub fn new(hook: &str, input: WireType, output: WireType, abi_version: u32) -> EntryPoint {
        let signature = Signature { input, output };
        EntryPoint {
            hook: hook.to_string(),
            symbol: crate::hook_symbol(hook),
            signature_hash: signature.hash(abi_version),
            signature,
        }
    }
}

/// A complete, validated manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ManifestFields")]
pub struct Manifest {
    /// Identity, permissions, limits.
    #[serde(flatten)]
    pub info: PluginInfo,
    /// Build facts.
    pub abi: AbiFacts,
    /// Entry points, sorted by hook.
    pub entry_points: Vec<EntryPoint>,
}

/// A manifest as JSON reads it: every field at one level. serde's `flatten` cannot refuse
/// unknown fields (they would be silently dropped, so a mistyped `"permisions"` read as no
/// permissions at all); this flat twin of [`Manifest`] can.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFields {
    name: String,
    version: String,
    description: String,
    author: String,
    security_level: SecurityLevel,
    permissions: Vec<Grant>,
    limits: LimitRequest,
    abi: AbiFacts,
    entry_points: Vec<EntryPoint>,
}

impl From<ManifestFields> for Manifest {
    fn from(fields: ManifestFields) -> Manifest {
        Manifest {
            info: PluginInfo {
                name: fields.name,
                version: fields.version,
                description: fields.description,
                author: fields.author,
                security_level: fields.security_level,
                permissions: fields.permissions,
                limits: fields.limits,
            },
            abi: fields.abi,
            entry_points: fields.entry_points,
        }
    }
}

/// Why the records do not make a valid manifest.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// No record of a required kind.
    #[error("manifest has no {0} record; was the plugin built with `plugin_sdk::plugin!`?")]
    Missing(&'static str),
    /// Two records where one is allowed.
    #[error(
        "manifest has {count} {what} records; a plugin must declare exactly one (two `plugin!` invocations linked into one library?)"
    )]
    Duplicate {
        /// Which record.
        what: &'static str,
        /// How many were found.
        count: usize,
    },
    /// Two entry points for one hook.
    #[error("entry point `{0}` is declared more than once")]
    DuplicateEntry(String),
    /// A record's JSON does not decode.
    #[error("{what} record at section offset {offset} does not decode: {message}")]
    Decode {
        /// Which record.
        what: &'static str,
        /// Its offset in the section.
        offset: usize,
        /// The decoder's message.
        message: String,
    },
    /// The records decode but some fields are invalid; every problem is listed.
    #[error("invalid manifest: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl Manifest {
    /// Assembles and validates a manifest from the section's records.
    pub fn from_records(records: &[Record<'_>]) -> Result<Manifest, ManifestError> {
        let mut infos = Vec::new();
        let mut abis = Vec::new();
        let mut entry_points: Vec<EntryPoint> = Vec::new();
        for record in records {
            match record.kind {
                RecordKind::Manifest => infos.push(decode::<PluginInfo>("manifest", record)?),
                RecordKind::Abi => abis.push(decode::<AbiFacts>("ABI", record)?),
                RecordKind::Entry => {
                    let entry = decode::<EntryPoint>("entry point", record)?;
                    if entry_points.iter().any(|e| e.hook == entry.hook) {
                        return Err(ManifestError::DuplicateEntry(entry.hook));
                    }
                    entry_points.push(entry);
                }
            }
        }
        let info = exactly_one("manifest", infos)?;
        let abi = exactly_one("ABI", abis)?;
        entry_points.sort_by(|a, b| a.hook.cmp(&b.hook));
        let manifest = Manifest {
            info,
            abi,
            entry_points,
        };
        let problems = manifest.problems();
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError::Invalid(problems))
        }
    }

    /// Every validation problem of this manifest (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let info = &self.info;
        problems.extend(validate_name(&info.name).err());
        if let Err(e) = validate_version(&info.version) {
            problems.push(format!("version: {e}"));
        }
        if let Err(e) = validate_version(&self.abi.sdk_version) {
            problems.push(format!("sdk_version: {e}"));
        }
        for field in [("description", &info.description), ("author", &info.author)] {
            if field.1.len() > 1024 || field.1.chars().any(|c| c.is_control()) {
                problems.push(format!(
                    "{}: at most 1024 characters, no control characters",
                    field.0
                ));
            }
        }
        for excess in info.security_level.max_limits().excesses(&info.limits) {
            problems.push(format!("limit {excess} at level {}", info.security_level));
        }
        for zero in info.limits.unrunnable() {
            problems.push(format!("limit {zero}: no call could run within it"));
        }
        for entry in &self.entry_points {
            if let Err(e) = validate_hook(&entry.hook) {
                problems.push(e);
                continue;
            }
            if entry.symbol != crate::hook_symbol(&entry.hook) {
                problems.push(format!(
                    "entry point `{}`: symbol `{}` should be `{}`",
                    entry.hook,
                    entry.symbol,
                    crate::hook_symbol(&entry.hook)
                ));
            }
            let computed = entry.signature.hash(self.abi.sdk_abi_version);
            if entry.signature_hash != computed {
                problems.push(format!(
                    "entry point `{}`: recorded signature hash {} does not match its declared types {} (hash {computed})",
                    entry.hook, entry.signature_hash, entry.signature
                ));
            }
        }
        problems
    }

    /// The entry point for `hook`, if the plugin exports one.
    pub fn entry_point(&self, hook: &str) -> Option<&EntryPoint> {
        self.entry_points.iter().find(|e| e.hook == hook)
    }
}

fn decode<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    record: &Record<'_>,
) -> Result<T, ManifestError> {
    serde_json::from_slice(record.payload).map_err(|e| ManifestError::Decode {
        what,
        offset: record.offset,
        message: e.to_string(),
    })
}

fn exactly_one<T>(what: &'static str, mut items: Vec<T>) -> Result<T, ManifestError> {
    match items.len() {
        0 => Err(ManifestError::Missing(what)),
        1 => Ok(items.remove(0)),
        count => Err(ManifestError::Duplicate { what, count }),
    }
}

/// Checks a plugin name: kebab-case (`[a-z][a-z0-9]*(-[a-z0-9]+)*`), at most 64 characters.
pub fn validate_name(name: &str) -> Result<(), String> {
    let kebab = name.split('-').enumerate().all(|(i, part)| {
        let mut chars = part.chars();
        match chars.next() {
            Some(c) if c.is_ascii_lowercase() || (i > 0 && c.is_ascii_digit()) => {
                chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            }
            _ => false,
        }
    });
    if name.is_empty() || name.len() > MAX_NAME_LEN || !kebab {
        return Err(format!(
            "name `{}` is not kebab-case of at most {MAX_NAME_LEN} characters (lowercase letters and digits in words joined by `-`, e.g. `word-stats`)",
            name.escape_debug()
        ));
    }
    Ok(())
}

/// Checks a semver version such as `1.2.3` or `0.1.0-beta.1`.
pub fn validate_version(version: &str) -> Result<(), String> {
    semver::Version::parse(version).map(drop).map_err(|e| {
        format!(
            "`{}` is not a semver version ({e}); write e.g. `0.1.0`",
            version.escape_debug()
        )
    })
}

/// Checks a hook name: a lowercase identifier (`[a-z][a-z0-9_]*`), at most 64 characters.
pub fn validate_hook(hook: &str) -> Result<(), String> {
    let mut chars = hook.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && hook.len() <= MAX_NAME_LEN;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "hook `{}` is not a lowercase identifier (`[a-z][a-z0-9_]*`, at most {MAX_NAME_LEN} characters)",
            hook.escape_debug()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{encode, parse_section};
    use crate::signature::WireKind;

    fn info_json(name: &str) -> String {
        format!(
            r#"{{"name":"{name}","version":"0.1.0","description":"d","author":"a","security_level":"standard","permissions":["notify"],"limits":{{"wall_ms":1000}}}}"#
        )
    }

    fn abi_json() -> &'static str {
        r#"{"sdk_abi_version":1,"sdk_version":"0.1.0","rustc":"rustc 1.95.0","target":"x86_64-unknown-linux-gnu","panic":"unwind"}"#
    }

    fn entry_json(hook: &str) -> String {
        let entry = EntryPoint::new(
            hook,
            WireType::json("Story"),
            WireType::plain(WireKind::Text),
            1,
        );
        serde_json::to_string(&entry).unwrap()
    }

    fn section(parts: &[(RecordKind, String)]) -> Vec<u8> {
        parts
            .iter()
            .flat_map(|(kind, json)| encode(*kind, json.as_bytes()))
            .collect()
    }

    #[test]
    fn assembles_a_manifest() {
        let bytes = section(&[
            (RecordKind::Entry, entry_json("summarize")),
            (RecordKind::Manifest, info_json("word-stats")),
            (RecordKind::Abi, abi_json().to_string()),
            (RecordKind::Entry, entry_json("analyze")),
        ]);
        let manifest = Manifest::from_records(&parse_section(&bytes).unwrap()).unwrap();
        assert_eq!(manifest.info.name, "word-stats");
        let hooks: Vec<_> = manifest
            .entry_points
            .iter()
            .map(|e| e.hook.as_str())
            .collect();
        assert_eq!(hooks, ["analyze", "summarize"]);
    }

    #[test]
    fn manifest_json_round_trips_and_refuses_unknown_fields() {
        let bytes = section(&[
            (RecordKind::Manifest, info_json("word-stats")),
            (RecordKind::Abi, abi_json().to_string()),
            (RecordKind::Entry, entry_json("analyze")),
        ]);
        let manifest = Manifest::from_records(&parse_section(&bytes).unwrap()).unwrap();
        let json = serde_json::to_value(&manifest).unwrap();
        assert_eq!(
            serde_json::from_value::<Manifest>(json.clone()).unwrap(),
            manifest
        );
        for (key, value) in [
            ("permisions", serde_json::json!(["net.http:*"])),
            ("totally_unknown", serde_json::json!({})),
        ] {
            let mut typo = json.clone();
            typo.as_object_mut().unwrap().insert(key.into(), value);
            let error = serde_json::from_value::<Manifest>(typo).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains(&format!("unknown field `{key}`")),
                "{error}"
            );
        }
    }

    #[test]
    fn reports_structural_errors() {
        let only_abi = section(&[(RecordKind::Abi, abi_json().to_string())]);
        assert_eq!(
            Manifest::from_records(&parse_section(&only_abi).unwrap()),
            Err(ManifestError::Missing("manifest"))
        );
        let twice = section(&[
            (RecordKind::Manifest, info_json("a")),
            (RecordKind::Manifest, info_json("b")),
            (RecordKind::Abi, abi_json().to_string()),
        ]);
        assert!(matches!(
            Manifest::from_records(&parse_section(&twice).unwrap()),
            Err(ManifestError::Duplicate {
                what: "manifest",
                count: 2
            })
        ));
        let dup_entry = section(&[
            (RecordKind::Entry, entry_json("analyze")),
            (RecordKind::Entry, entry_json("analyze")),
        ]);
        assert_eq!(
            Manifest::from_records(&parse_section(&dup_entry).unwrap()),
            Err(ManifestError::DuplicateEntry("analyze".into()))
        );
        let garbage = section(&[(RecordKind::Manifest, "{\"name\":".into())]);
        assert!(matches!(
            Manifest::from_records(&parse_section(&garbage).unwrap()),
            Err(ManifestError::Decode {
                what: "manifest",
                ..
            })
        ));
    }

    #[test]
    fn lists_every_invalid_field() {
        let bad = info_json("Bad_Name")
            .replace("0.1.0", "one")
            .replace("1000", "999999");
        let bytes = section(&[
            (RecordKind::Manifest, bad),
            (RecordKind::Abi, abi_json().to_string()),
        ]);
        let Err(ManifestError::Invalid(problems)) =
            Manifest::from_records(&parse_section(&bytes).unwrap())
        else {
            panic!("expected Invalid");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("kebab-case"));
        assert!(problems[1].contains("semver"));
        assert!(problems[2].contains("wall_ms = 999999"));
    }

    #[test]
    fn detects_a_forged_signature_hash() {
        let mut entry = EntryPoint::new(
            "analyze",
            WireType::json("Story"),
            WireType::plain(WireKind::Text),
            1,
        );
        entry.signature_hash = "0000000000000000".into();
        let bytes = section(&[
            (RecordKind::Manifest, info_json("x")),
            (RecordKind::Abi, abi_json().to_string()),
            (RecordKind::Entry, serde_json::to_string(&entry).unwrap()),
        ]);
        let err = Manifest::from_records(&parse_section(&bytes).unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains("does not match its declared types"),
            "{err}"
        );
    }

    #[test]
    fn names() {
        for good in ["word-stats", "a", "story-2", "x1-y2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Word",
            "word_stats",
            "-a",
            "a-",
            "a--b",
            "1a",
            &"a".repeat(65),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
