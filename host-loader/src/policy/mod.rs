//! The host's policy: which plugins may run, at which level, with which permissions
//! (SPEC §4, §5, §11).
//!
//! - [`Policy`] is the operator's file (TOML): the default level, accepted SDK versions, the
//!   filesystem roots and network hosts that scopes may name, and per-plugin overrides (level,
//!   tighter limits, permissions refused, dangerous combinations acknowledged).
//! - [`engine::evaluate`] applies the policy and the level's rules to a plugin's manifest (and
//!   its static inspection report) and returns a [`engine::Decision`]: `allow` or `deny`, with
//!   every finding and its reason. `run` applies the same decision before starting a worker.

pub mod engine;

use crate::broker::OpLimitAction;
use plugin_manifest::level::LimitRequest;
use plugin_manifest::{Grant, SecurityLevel};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest policy file read.
const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// The operator's policy. [`Policy::default`] is what applies without a file: level
/// `standard`, any SDK version, no absolute filesystem roots, any named network host.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The level plugins run at unless overridden; a plugin that asks for a stricter level gets
    /// that one.
    #[serde(default)]
    pub default_level: SecurityLevel,
    /// Accepted `plugin-sdk` versions, as a semver requirement (e.g. `">=0.1, <0.2"`).
    #[serde(default, deserialize_with = "de_version_req")]
    pub sdk_versions: Option<semver::VersionReq>,
    /// Absolute directories an `fs.*` scope may name (relative scopes are inside the plugin's
    /// own data dir and always allowed).
    #[serde(default)]
    pub allowed_fs_roots: Vec<PathBuf>,
    /// Hosts a `net.*` scope may name: exact names or `*.domain` patterns. Empty means any
    /// named host (wildcards are still too broad).
    #[serde(default)]
    pub allowed_net_hosts: Vec<String>,
    /// What a call past one of its operation counts (file operations, network requests, db
    /// queries) gets: `end_call` (the default: the call ends `violation` at once) or `refuse`
    /// (that request fails; the call goes on and still ends `violation`).
    #[serde(default)]
    pub on_op_limit: OpLimitAction,
    /// Overrides per plugin name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginPolicy>,
}

/// Overrides for one plugin.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginPolicy {
    /// The level this plugin runs at (instead of `default_level`).
    #[serde(default)]
    pub level: Option<SecurityLevel>,
    /// Tighter limits for this plugin (same keys as the manifest's `limits`).
    #[serde(default)]
    pub limits: LimitRequest,
    /// Permission kinds (e.g. `net.http`) this plugin may not have, whatever its level.
    #[serde(default, deserialize_with = "de_kinds")]
    pub deny: Vec<String>,
    /// Dangerous combinations accepted for this plugin, each exactly the permission kinds of
    /// one combination, e.g. `[["fs.write", "net.http"]]`. Acknowledging one never accepts
    /// another.
    #[serde(default, deserialize_with = "de_combinations")]
    pub acknowledge: Vec<Vec<String>>,
    /// This plugin's `on_op_limit` (instead of the policy's).
    #[serde(default)]
    pub on_op_limit: Option<OpLimitAction>,
}

/// Why a policy file could not be used.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{path}: cannot read the policy: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not a valid policy; the message names the key and the problem.
    #[error("{path}: invalid policy: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and key.
        message: String,
    },
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let read_error = |error| PolicyError::Read {
            path: path.to_path_buf(),
            error,
        };
        let bytes =
            crate::bounded::read_file(path, MAX_POLICY_BYTES, "policy").map_err(read_error)?;
        let text = String::from_utf8(bytes).map_err(|_| PolicyError::Invalid {
            path: path.to_path_buf(),
            message: "not UTF-8 text".into(),
        })?;
        Policy::parse(&text).map_err(|message| PolicyError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses policy text; the error names the key and the problem.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        for root in &policy.allowed_fs_roots {
            if !root.is_absolute() {
                return Err(format!(
                    "allowed_fs_roots: `{}` is not an absolute path (relative scopes are already inside each plugin's data dir)",
                    root.display()
                ));
            }
        }
        for host in &policy.allowed_net_hosts {
            let name = host.strip_prefix("*.").unwrap_or(host);
            if name.is_empty() || name.contains(['*', '/', ':', ' ']) {
                return Err(format!(
                    "allowed_net_hosts: `{host}` is not a host name or a `*.domain` pattern"
                ));
            }
        }
        for (name, plugin) in &policy.plugins {
            plugin_manifest::model::validate_name(name)
                .map_err(|e| format!("plugins.{name}: {e}"))?;
            let max = plugin.level.unwrap_or(SecurityLevel::Minimal).max_limits();
            let excesses = max.excesses(&plugin.limits);
            if !excesses.is_empty() {
                return Err(format!(
                    "plugins.{name}.limits: {} (a policy can only tighten)",
                    excesses.join(", ")
                ));
            }
            let zeros = plugin.limits.unrunnable();
            if !zeros.is_empty() {
                return Err(format!(
                    "plugins.{name}.limits: {}: no call could run within it; to stop the plugin \
                     from running, disable it or add its permissions to `deny`",
                    zeros.join(", ")
                ));
            }
        }
        Ok(policy)
    }

    /// The overrides for `plugin`, if any.
    pub fn plugin(&self, plugin: &str) -> Option<&PluginPolicy> {
        self.plugins.get(plugin)
    }

    /// What `plugin` gets when it goes past an operation count.
    pub fn on_op_limit(&self, plugin: &str) -> OpLimitAction {
        self.plugin(plugin)
            .and_then(|p| p.on_op_limit)
            .unwrap_or(self.on_op_limit)
    }
}

fn de_version_req<'de, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Option<semver::VersionReq>, D::Error> {
    let text = String::deserialize(de)?;
    semver::VersionReq::parse(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a semver requirement: {e}")))
}

fn check_kind<E: serde::de::Error>(kind: &str) -> Result<(), E> {
    if plugin_manifest::permission::kind(kind).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = plugin_manifest::permission::CATALOG
        .iter()
        .map(|k| k.id)
        .collect();
    Err(E::custom(format!(
        "unknown permission `{kind}` (a kind without scope): known are {}",
        known.join(", ")
    )))
}

fn de_kinds<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    let kinds = Vec::<String>::deserialize(de)?;
    for kind in &kinds {
        check_kind(kind)?;
    }
    Ok(kinds)
}

fn de_combinations<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<Vec<String>>, D::Error> {
    let combinations = Vec::<Vec<String>>::deserialize(de)?;
    for combination in &combinations {
        if combination.len() < 2 {
            return Err(serde::de::Error::custom(format!(
                "{combination:?} is not a combination: list the two (or more) permission kinds it is made of"
            )));
        }
        for kind in combination {
            check_kind(kind)?;
        }
    }
    Ok(combinations)
}

/// Whether `grant`'s host is allowed by `allowed` (exact names, or `*.domain`).
pub(crate) fn host_allowed(allowed: &[String], host: &str) -> bool {
    allowed
        .iter()
        .any(|pattern| match pattern.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.')),
            None => pattern.eq_ignore_ascii_case(host),
        })
}

/// The host part of a `net.*` scope (`host`, `host:port`).
pub(crate) fn scope_host(grant: &Grant) -> Option<&str> {
    let scope = grant.scope.as_deref()?;
    Some(scope.rsplit_once(':').map_or(scope, |(host, _)| host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_policy_parses() {
        let policy = Policy::parse(
            r#"
            default_level = "strict"
            sdk_versions = ">=0.1, <0.2"
            allowed_fs_roots = ["/srv/stories"]
            allowed_net_hosts = ["api.example.org", "*.example.net"]

            [plugins.greedy-exfil]
            level = "isolated"
            limits = { memory_mb = 16 }
            deny = ["net.http"]
            acknowledge = [["user_data.read", "net.http"]]
            "#,
        )
        .unwrap();
        assert_eq!(policy.default_level, SecurityLevel::Strict);
        let plugin = policy.plugin("greedy-exfil").unwrap();
        assert_eq!(plugin.limits.memory_mb, Some(16));
        assert_eq!(plugin.acknowledge, [["user_data.read", "net.http"]]);
        assert!(host_allowed(&policy.allowed_net_hosts, "cdn.example.net"));
        assert!(!host_allowed(&policy.allowed_net_hosts, "example.net.evil"));
        assert!(!host_allowed(&policy.allowed_net_hosts, "xexample.net"));
    }

    #[test]
    fn errors_name_the_key_and_the_problem() {
        let cases = [
            ("default_levle = \"strict\"", "default_levle"),
            (
                "default_level = \"lax\"",
                "invalid value: string \"lax\", expected a security level: \"minimal\"",
            ),
            (
                "default_level = 3",
                "invalid type: integer `3`, expected a security level: \"minimal\"",
            ),
            ("sdk_versions = \"one\"", "not a semver requirement"),
            (
                "allowed_fs_roots = [\"data\"]",
                "allowed_fs_roots: `data` is not an absolute path",
            ),
            (
                "[plugins.x]\ndeny = [\"fs.delete\"]",
                "unknown permission `fs.delete`",
            ),
            (
                "[plugins.x]\nacknowledge = [[\"fs.write\"]]",
                "is not a combination",
            ),
            ("[plugins.x]\nlimits = { memory_gb = 1 }", "memory_gb"),
            (
                "[plugins.x]\nlevel = \"isolated\"\nlimits = { memory_mb = 64 }",
                "plugins.x.limits: memory_mb = 64 (the level allows 32)",
            ),
            (
                "[plugins.x]\nlimits = { memory_mb = 0, wall_ms = 0, file_ops = 0 }",
                "plugins.x.limits: memory_mb = 0, wall_ms = 0: no call could run within it",
            ),
            ("[plugins.Bad_Name]\nlevel = \"strict\"", "plugins.Bad_Name"),
            ("allowed_net_hosts = [\"*\"]", "allowed_net_hosts: `*`"),
        ];
        for (text, expected) in cases {
            let error = Policy::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }
}
