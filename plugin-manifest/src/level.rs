//! Security levels and resource limits (SPEC §5).
//!
//! A level is a preset of maximum limits. A plugin's manifest may request less than its level
//! allows, never more; the host takes the tighter of the request, the level and its policy
//! ([`Limits::tighten`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One of the four security levels. `Standard` is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum SecurityLevel {
    /// Loosest: generous limits, every permission allowed.
    Minimal,
    /// The default.
    #[default]
    Standard,
    /// Tight limits, no direct network, no process spawning.
    Strict,
    /// Tightest: no I/O at all except `notify`.
    Isolated,
}

impl SecurityLevel {
    /// Every level, loosest first.
    pub const ALL: [SecurityLevel; 4] = [
        SecurityLevel::Minimal,
        SecurityLevel::Standard,
        SecurityLevel::Strict,
        SecurityLevel::Isolated,
    ];

    /// The lowercase name used in manifests, policies and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityLevel::Minimal => "minimal",
            SecurityLevel::Standard => "standard",
            SecurityLevel::Strict => "strict",
            SecurityLevel::Isolated => "isolated",
        }
    }

    /// The maximum limits of this level (SPEC §5 table).
    pub fn max_limits(self) -> Limits {
        const MB: u64 = 1024 * 1024;
        match self {
            SecurityLevel::Minimal => Limits {
                memory_bytes: 512 * MB,
                cpu_ms: 30_000,
                wall_ms: 60_000,
                file_ops: 1000,
                net_requests: 500,
                db_queries: 1000,
                max_file_size_bytes: 100 * MB,
            },
            SecurityLevel::Standard => Limits {
                memory_bytes: 100 * MB,
                cpu_ms: 5_000,
                wall_ms: 10_000,
                file_ops: 100,
                net_requests: 50,
                db_queries: 200,
                max_file_size_bytes: 10 * MB,
            },
            SecurityLevel::Strict => Limits {
                memory_bytes: 64 * MB,
                cpu_ms: 2_000,
                wall_ms: 5_000,
                file_ops: 20,
                net_requests: 5,
                db_queries: 50,
                max_file_size_bytes: MB,
            },
            SecurityLevel::Isolated => Limits {
                memory_bytes: 32 * MB,
                cpu_ms: 1_000,
                wall_ms: 2_000,
                file_ops: 0,
                net_requests: 0,
                db_queries: 0,
                max_file_size_bytes: 0,
            },
        }
    }
}

/// What a level allows besides limits (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LevelRules {
    /// Most permissions a plugin may hold.
    pub max_permissions: usize,
    /// File extensions the broker lets a plugin read or write (without the dot); `*` is any.
    pub allowed_extensions: &'static [&'static str],
    /// Enforcement layers a worker must have at this level: a worker that lacks one refuses
    /// to load the plugin, naming the layer.
    pub required_layers: &'static [&'static str],
    /// Which permissions the level allows, in words.
    pub allowed_permissions: &'static str,
}

impl SecurityLevel {
    /// The level's rules besides limits.
    pub fn rules(self) -> LevelRules {
        const TEXT: &[&str] = &["txt", "md", "json", "jsonl", "csv", "toml", "yaml", "yml"];
        match self {
            SecurityLevel::Minimal => LevelRules {
                max_permissions: 16,
                allowed_extensions: &["*"],
                required_layers: &["rlimits", "watchdog"],
                allowed_permissions: "all",
            },
            SecurityLevel::Standard => LevelRules {
                max_permissions: 8,
                allowed_extensions: TEXT,
                required_layers: &["rlimits", "watchdog", "seccomp", "landlock"],
                allowed_permissions: "all but process.spawn",
            },
            SecurityLevel::Strict => LevelRules {
                max_permissions: 4,
                allowed_extensions: &["txt", "json", "csv"],
                required_layers: &[
                    "rlimits",
                    "watchdog",
                    "seccomp",
                    "landlock",
                    "namespaces",
                    "pid-namespace",
                    "uid-drop",
                ],
                allowed_permissions: "no net.connect, no process.spawn, fs.write only inside the data dir",
            },
            SecurityLevel::Isolated => LevelRules {
                max_permissions: 1,
                allowed_extensions: &[],
                required_layers: &[
                    "rlimits",
                    "watchdog",
                    "seccomp",
                    "landlock",
                    "namespaces",
                    "pid-namespace",
                    "uid-drop",
                    "no-new-privs",
                    "private-tmpfs",
                    "cgroup-memory",
                ],
                allowed_permissions: "none but notify",
            },
        }
    }

    /// Why `grant` is not allowed at this level; `None` if it is.
    pub fn refusal(self, grant: &crate::Grant) -> Option<String> {
        let kind = grant.kind.as_str();
        let refused = match self {
            SecurityLevel::Minimal => false,
            SecurityLevel::Standard => kind == "process.spawn",
            SecurityLevel::Strict => {
                matches!(kind, "net.connect" | "process.spawn")
                    || (kind == "fs.write" && grant.scope.as_deref().is_some_and(is_absolute))
            }
            SecurityLevel::Isolated => kind != "notify",
        };
        refused.then(|| {
            format!(
                "`{grant}` is not allowed at level {self}, which allows {}",
                self.rules().allowed_permissions
            )
        })
    }
}

/// An absolute path scope (outside the plugin's data dir).
fn is_absolute(scope: &str) -> bool {
    scope.starts_with('/')
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecurityLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SecurityLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown security level `{s}`: expected one of minimal, standard, strict, isolated")
            })
    }
}

/// Written as its lowercase name, in every format.
impl Serialize for SecurityLevel {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Read from its lowercase name only. Written by hand so that anything else (`level = 3` in a
/// policy file, `"Strict"` in a manifest) is refused with the accepted names, not with the
/// format's generic "wanted string or table".
impl<'de> Deserialize<'de> for SecurityLevel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = SecurityLevel;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a security level: \"minimal\", \"standard\", \"strict\" or \"isolated\"",
                )
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<SecurityLevel, E> {
                SecurityLevel::ALL
                    .into_iter()
                    .find(|level| level.as_str() == name)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(name), &self))
            }
        }
        deserializer.deserialize_str(Name)
    }
}

/// Resource limits for one plugin: all of them, with a value each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Address space of the worker process, in bytes.
    pub memory_bytes: u64,
    /// CPU time per call, in milliseconds.
    pub cpu_ms: u64,
    /// Wall-clock time per call, in milliseconds.
    pub wall_ms: u64,
    /// Brokered file operations per call.
    pub file_ops: u64,
    /// Brokered network requests per call.
    pub net_requests: u64,
    /// Brokered database queries per call.
    pub db_queries: u64,
    /// Largest file the plugin may read or write through the broker, in bytes.
    pub max_file_size_bytes: u64,
}

impl Limits {
    /// The tighter of `self` and a request: each requested value replaces the current one when
    /// it is smaller.
    pub fn tighten(self, request: &LimitRequest) -> Limits {
        fn min(current: u64, requested: Option<u64>) -> u64 {
            requested.map_or(current, |r| r.min(current))
        }
        Limits {
            memory_bytes: min(
                self.memory_bytes,
                request.memory_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
            ),
            cpu_ms: min(self.cpu_ms, request.cpu_ms),
            wall_ms: min(self.wall_ms, request.wall_ms),
            file_ops: min(self.file_ops, request.file_ops),
            net_requests: min(self.net_requests, request.net_requests),
            db_queries: min(self.db_queries, request.db_queries),
            max_file_size_bytes: min(
                self.max_file_size_bytes,
                request
                    .max_file_size_mb
                    .map(|mb| mb.saturating_mul(1024 * 1024)),
            ),
        }
    }

    /// Names of the requested values that exceed these limits, with both numbers, e.g.
    /// `memory_mb = 200 (the level allows 100)`.
    pub fn excesses(&self, request: &LimitRequest) -> Vec<String> {
        const MB: u64 = 1024 * 1024;
        let checks: [(&str, Option<u64>, u64); 7] = [
            ("memory_mb", request.memory_mb, self.memory_bytes / MB),
            ("cpu_ms", request.cpu_ms, self.cpu_ms),
            ("wall_ms", request.wall_ms, self.wall_ms),
            ("file_ops", request.file_ops, self.file_ops),
            ("net_requests", request.net_requests, self.net_requests),
            ("db_queries", request.db_queries, self.db_queries),
            (
                "max_file_size_mb",
                request.max_file_size_mb,
                self.max_file_size_bytes / MB,
            ),
        ];
        checks
            .into_iter()
            .filter_map(|(name, requested, max)| {
                let requested = requested?;
                (requested > max).then(|| format!("{name} = {requested} (the level allows {max})"))
            })
            .collect()
    }
}

/// The limits a plugin asks for in its manifest; each field left out means "the level's value".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRequest {
    /// Memory in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    /// CPU time per call in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// Wall-clock time per call in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<u64>,
    /// File operations per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_ops: Option<u64>,
    /// Network requests per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_requests: Option<u64>,
    /// Database queries per call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_queries: Option<u64>,
    /// Largest brokered file in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size_mb: Option<u64>,
}

impl LimitRequest {
    /// The limits set to zero that no call could ever meet (memory, CPU time, wall time), each
    /// as `name = 0`: every call would end `memory_limit` or `timeout`, and the plugin would be
    /// blamed for a limit it cannot keep. Zero file, network or database operations is a real
    /// limit (none allowed) and is not listed.
    pub fn unrunnable(&self) -> Vec<&'static str> {
        [
            ("memory_mb = 0", self.memory_mb),
            ("cpu_ms = 0", self.cpu_ms),
            ("wall_ms = 0", self.wall_ms),
        ]
        .into_iter()
        .filter(|(_, value)| *value == Some(0))
        .map(|(name, _)| name)
        .collect()
    }

    /// The field names a manifest may use, in order.
    pub const FIELDS: [&'static str; 7] = [
        "memory_mb",
        "cpu_ms",
        "wall_ms",
        "file_ops",
        "net_requests",
        "db_queries",
        "max_file_size_mb",
    ];

    /// Sets the field called `name`; `false` when there is no such field.
    pub fn set(&mut self, name: &str, value: u64) -> bool {
        let slot = match name {
            "memory_mb" => &mut self.memory_mb,
            "cpu_ms" => &mut self.cpu_ms,
            "wall_ms" => &mut self.wall_ms,
            "file_ops" => &mut self.file_ops,
            "net_requests" => &mut self.net_requests,
            "db_queries" => &mut self.db_queries,
            "max_file_size_mb" => &mut self.max_file_size_mb,
            _ => return false,
        };
        *slot = Some(value);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_is_its_lowercase_name_and_nothing_else_is_one() {
        for level in SecurityLevel::ALL {
            let json = serde_json::to_string(&level).unwrap();
            assert_eq!(json, format!("\"{}\"", level.as_str()));
            assert_eq!(serde_json::from_str::<SecurityLevel>(&json).unwrap(), level);
        }
        for bad in ["3", "\"Strict\"", "\"paranoid\"", "{}"] {
            let error = serde_json::from_str::<SecurityLevel>(bad).unwrap_err();
            assert!(
                error.to_string().contains(
                    "expected a security level: \"minimal\", \"standard\", \"strict\" or \"isolated\""
                ),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn levels_get_tighter() {
        for pair in SecurityLevel::ALL.windows(2) {
            let (loose, tight) = (pair[0].max_limits(), pair[1].max_limits());
            assert!(tight.memory_bytes < loose.memory_bytes);
            assert!(tight.cpu_ms < loose.cpu_ms);
            assert!(tight.wall_ms < loose.wall_ms);
        }
    }

    #[test]
    fn tighten_takes_the_smaller_value() {
        let request = LimitRequest {
            wall_ms: Some(1000),
            cpu_ms: Some(99_999),
            ..Default::default()
        };
        let limits = SecurityLevel::Standard.max_limits().tighten(&request);
        assert_eq!(limits.wall_ms, 1000);
        assert_eq!(limits.cpu_ms, 5000);
        assert_eq!(
            SecurityLevel::Standard.max_limits().excesses(&request),
            vec!["cpu_ms = 99999 (the level allows 5000)".to_string()]
        );
    }

    #[test]
    fn level_names_round_trip() {
        for level in SecurityLevel::ALL {
            assert_eq!(level.as_str().parse::<SecurityLevel>(), Ok(level));
        }
        assert!(
            "paranoid"
                .parse::<SecurityLevel>()
                .unwrap_err()
                .contains("expected one of")
        );
    }
}
