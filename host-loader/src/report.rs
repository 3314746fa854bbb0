//! Security reports and plugin summaries (SPEC §10): the serializable answers shared by the
//! CLI's `--json` output and the HTTP API, so both say the same thing for the same question.
//!
//! [`PluginSummary`] is one line of `list` (`GET /plugins`, `GET /plugins/{id}`);
//! [`SecurityReport`] is `report <ID>` (`GET /plugins/{id}/security`): manifest, permissions
//! with their risk, static and policy findings, enforcement layers, usage statistics, violation
//! history and status; [`Reports`] is `report` (`GET /security/reports`). They are built from
//! the audit store by [`crate::service::Host`]; this module only shapes them.
#![forbid(unsafe_code)]

use crate::audit::{PluginRow, Status, StoredFinding, UsageStats, ViolationEntry, format_time};
use plugin_manifest::permission::Risk;
use serde::Serialize;

/// An installed plugin, briefly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginSummary {
    /// The plugin's id: the SHA-256 of its file, hex.
    pub id: String,
    /// Manifest name.
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// Manifest description.
    pub description: String,
    /// Whether it is called.
    pub status: Status,
    /// Why it has that status.
    pub status_reason: Option<String>,
    /// When the status last changed (RFC 3339, UTC).
    pub status_since: String,
    /// When it was installed (RFC 3339, UTC).
    pub installed_at: String,
    /// Where it was installed from (a path, or `upload`).
    pub source: String,
    /// The level it runs at (from the decision at install).
    pub level: serde_json::Value,
    /// The hooks it exports that the host can call.
    pub hooks: Vec<String>,
}

impl PluginSummary {
    /// The summary of a stored plugin.
    pub fn from_row(row: &PluginRow) -> PluginSummary {
        let hooks = row.report["entry_points"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["callable"] == true)
                    .filter_map(|e| e["hook"].as_str())
                    .filter(|hook| !plugin_manifest::is_lifecycle_hook(hook))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        PluginSummary {
            id: row.id.clone(),
            name: row.name.clone(),
            version: row.version.clone(),
            description: row.manifest["description"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            status: row.status,
            status_reason: row.status_reason.clone(),
            status_since: format_time(row.status_since),
            installed_at: format_time(row.installed_at),
            source: row.source.clone(),
            level: row.decision["level"].clone(),
            hooks,
        }
    }
}

/// A permission the plugin holds, with what the catalog says about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PermissionReport {
    /// As written in the manifest, e.g. `fs.read:data/words.txt`.
    pub permission: String,
    /// The catalog kind.
    pub kind: String,
    /// The scope, if any.
    pub scope: Option<String>,
    /// The kind's risk (`low`, `medium`, `high`), raised to `high` for a too-broad scope.
    pub risk: Option<Risk>,
    /// What enforces it.
    pub enforced_by: Option<String>,
    /// What it allows.
    pub description: Option<String>,
}

/// How the plugin is confined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enforcement {
    /// The level it runs at.
    pub level: serde_json::Value,
    /// The layers that level requires.
    pub required_layers: serde_json::Value,
    /// The effective limits.
    pub limits: serde_json::Value,
    /// The layers active in the worker of its latest call (empty before the first call).
    pub active_layers: Vec<String>,
}

/// Everything known about one installed plugin's security.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityReport {
    /// The summary (id, name, status, ...).
    #[serde(flatten)]
    pub plugin: PluginSummary,
    /// The manifest.
    pub manifest: serde_json::Value,
    /// Its permissions with their risk.
    pub permissions: Vec<PermissionReport>,
    /// The decision at install: `allow`, with every finding.
    pub decision: serde_json::Value,
    /// Static inspection and policy findings recorded at install.
    pub findings: Vec<StoredFinding>,
    /// Level, limits and layers.
    pub enforcement: Enforcement,
    /// Usage statistics over every recorded call.
    pub usage: UsageStats,
    /// The latest violations (at most [`crate::audit::REPORTED_VIOLATIONS`]), oldest first;
    /// `usage.violations` counts them all.
    pub violations: Vec<ViolationEntry>,
}

/// Totals over every installed plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Installed plugins.
    pub plugins: u64,
    /// Of which enabled.
    pub enabled: u64,
    /// Disabled.
    pub disabled: u64,
    /// Quarantined.
    pub quarantined: u64,
    /// Recorded calls.
    pub calls: u64,
    /// Recorded violations.
    pub violations: u64,
}

/// The security report of every installed plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reports {
    /// Totals.
    pub totals: Totals,
    /// One report per plugin, by name.
    pub plugins: Vec<SecurityReport>,
}

impl Reports {
    /// The reports with their totals.
    pub fn new(plugins: Vec<SecurityReport>) -> Reports {
        let mut totals = Totals::default();
        for report in &plugins {
            totals.plugins += 1;
            match report.plugin.status {
                Status::Enabled => totals.enabled += 1,
                Status::Disabled => totals.disabled += 1,
                Status::Quarantined => totals.quarantined += 1,
            }
            totals.calls += report.usage.calls;
            totals.violations += report.usage.violations;
        }
        Reports { totals, plugins }
    }
}

/// The permissions of a manifest (as stored JSON), each with the catalog's risk.
pub fn permissions(
    manifest: &serde_json::Value,
    decision: &serde_json::Value,
) -> Vec<PermissionReport> {
    let broad: Vec<String> = decision["findings"]
        .as_array()
        .map(|findings| {
            findings
                .iter()
                .filter(|f| f["code"] == "PERM_SCOPE_TOO_BROAD")
                .filter_map(|f| f["evidence"].as_array())
                .flatten()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    manifest["permissions"]
        .as_array()
        .map(|grants| {
            grants
                .iter()
                .filter_map(|g| g.as_str())
                .map(|text| {
                    let grant = plugin_manifest::Grant::parse(text).ok();
                    let entry = grant.as_ref().and_then(|g| g.catalog_entry());
                    let risk = entry.map(|e| {
                        if broad.iter().any(|b| b == text) {
                            Risk::High
                        } else {
                            e.risk
                        }
                    });
                    PermissionReport {
                        permission: text.to_string(),
                        kind: grant
                            .as_ref()
                            .map_or_else(|| text.to_string(), |g| g.kind.clone()),
                        scope: grant.as_ref().and_then(|g| g.scope.clone()),
                        risk,
                        enforced_by: entry.map(|e| e.enforced_by.to_string()),
                        description: entry.map(|e| e.description.to_string()),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}
