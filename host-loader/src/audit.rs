//! The audit store: an embedded SQLite database (`<data-dir>/audit.db`) holding the installed
//! plugins and everything that happened to them (SPEC §10).
//!
//! [`Audit`] owns one connection. Tables:
//!
//! - `plugins`: one row per installed plugin (id = SHA-256 of the file, name, status and its
//!   reason, the manifest, the inspection report and the policy decision as JSON);
//! - `events`: installs, refused installs (with the decision), uninstalls, enable, disable,
//!   quarantine and release, each with a JSON detail;
//! - `findings`: the static and policy findings recorded at install;
//! - `calls`: every call's outcome, error, usage counters (all of [`Usage`]'s fields), worker
//!   pid and enforcement layers;
//! - `violations`: every violation of every call (rule and detail), linked to its call.
//!
//! Durability: the database runs in WAL mode with `synchronous = FULL`. A record is written by
//! one transaction, and a function that records something returns only after that transaction
//! committed; with `FULL` the commit also waits for the WAL to reach the disk, so a committed
//! record survives a killed process (which WAL alone guarantees) and a power loss too. The
//! cost, one `fsync` per commit, is paid once per call or per install, never per row:
//! [`Audit::record_call`] writes a call and its violations in one transaction.
//!
//! This module stores and queries; it does not decide anything (that is [`crate::service`]).
#![forbid(unsafe_code)]

use crate::outcome::{CallResult, Usage, Violation};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// The schema version this code reads and writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// How long a writer waits for another process holding the database (e.g. `serve` and the
/// CLI on the same data dir).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Version 1 to 2: the global order of calls and events (`seq`).
const MIGRATE_1_TO_2: &str = "
ALTER TABLE calls ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE TABLE sequence (value INTEGER NOT NULL);
INSERT INTO sequence VALUES (0);
";

const SCHEMA: &str = "
-- One counter for calls and events together: their order in the trail, which two records
-- of the same millisecond cannot get from their times.
CREATE TABLE sequence (value INTEGER NOT NULL);
INSERT INTO sequence VALUES (0);
CREATE TABLE plugins (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    version      TEXT NOT NULL,
    installed_at INTEGER NOT NULL,
    source       TEXT NOT NULL,
    status       TEXT NOT NULL,
    status_reason TEXT,
    status_since INTEGER NOT NULL,
    manifest     TEXT NOT NULL,
    report       TEXT NOT NULL,
    decision     TEXT NOT NULL
);
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    time        INTEGER NOT NULL,
    plugin_id   TEXT NOT NULL,
    plugin_name TEXT NOT NULL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    seq         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_by_plugin ON events (plugin_id, time);
CREATE TABLE findings (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id  INTEGER NOT NULL REFERENCES events (id),
    plugin_id TEXT NOT NULL,
    source    TEXT NOT NULL,
    code      TEXT NOT NULL,
    severity  TEXT NOT NULL,
    message   TEXT NOT NULL
);
CREATE INDEX findings_by_plugin ON findings (plugin_id);
CREATE TABLE calls (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    time         INTEGER NOT NULL,
    plugin_id    TEXT NOT NULL,
    plugin_name  TEXT NOT NULL,
    hook         TEXT NOT NULL,
    status       TEXT NOT NULL,
    error        TEXT,
    cpu_ms       INTEGER NOT NULL,
    wall_ms      INTEGER NOT NULL,
    peak_rss_kb  INTEGER NOT NULL,
    file_ops     INTEGER NOT NULL,
    net_requests INTEGER NOT NULL,
    db_queries   INTEGER NOT NULL,
    bytes_in     INTEGER NOT NULL,
    bytes_out    INTEGER NOT NULL,
    worker_pid   INTEGER,
    layers       TEXT NOT NULL,
    seq          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX calls_by_plugin ON calls (plugin_id, time);
CREATE TABLE violations (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id   INTEGER NOT NULL REFERENCES calls (id),
    time      INTEGER NOT NULL,
    plugin_id TEXT NOT NULL,
    rule      TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX violations_by_plugin ON violations (plugin_id, time);
";

/// Why the audit store failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// SQLite refused an operation on the database.
    #[error("{}: audit store: {error}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        error: rusqlite::Error,
    },
    /// The database file could not be created or its mode set.
    #[error("{}: audit store: {error}", path.display())]
    Io {
        /// The database file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The database was written by a newer plugin-host.
    #[error(
        "{}: audit store has schema version {found}, this plugin-host knows version {SCHEMA_VERSION}; use a newer plugin-host",
        path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: i64,
    },
    /// A stored JSON column does not decode (the database was edited by hand?).
    #[error("{}: audit store: corrupt {what}: {error}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// Which column.
        what: &'static str,
        /// The decoder's message.
        error: serde_json::Error,
    },
}

/// Whether an installed plugin is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Installed and called by `invoke` and `dispatch`.
    Enabled,
    /// Installed, not called (an operator's choice).
    Disabled,
    /// Installed, not called, because of repeated violations; only `release` lifts it (`enable` and
    /// `disable` refuse).
    Quarantined,
}

impl Status {
    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enabled => "enabled",
            Status::Disabled => "disabled",
            Status::Quarantined => "quarantined",
        }
    }

    fn parse(text: &str) -> Status {
        match text {
            "enabled" => Status::Enabled,
            "quarantined" => Status::Quarantined,
            // Anything unexpected is not called: the safe reading.
            _ => Status::Disabled,
        }
    }
}

/// One installed plugin, as stored.
#[derive(Debug, Clone)]
pub struct PluginRow {
    /// SHA-256 of the file, hex: the plugin's id.
    pub id: String,
    /// Manifest name (unique among installed plugins).
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// Unix time of the install, in milliseconds.
    pub installed_at: i64,
    /// Where it was installed from (a path, or `upload`).
    pub source: String,
    /// Whether it is called.
    pub status: Status,
    /// Why it has that status (operator, quarantine reason).
    pub status_reason: Option<String>,
    /// Unix time of the last status change, in milliseconds.
    pub status_since: i64,
    /// The manifest, as JSON.
    pub manifest: serde_json::Value,
    /// The inspection report, as JSON.
    pub report: serde_json::Value,
    /// The policy decision at install, as JSON.
    pub decision: serde_json::Value,
}

/// A finding as recorded at install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredFinding {
    /// `inspect` (static inspection) or `policy` (the policy engine).
    pub source: String,
    /// Stable code.
    pub code: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    /// What was found.
    pub message: String,
}

/// A call to record.
#[derive(Debug, Clone, Copy)]
pub struct CallEntry<'a> {
    /// The plugin's id.
    pub plugin_id: &'a str,
    /// Its name.
    pub plugin_name: &'a str,
    /// The hook called.
    pub hook: &'a str,
    /// How it ended.
    pub result: &'a CallResult,
}

/// One violation, with the call it happened in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViolationEntry {
    /// The call's id.
    pub call_id: i64,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// The rule broken.
    pub rule: String,
    /// The evidence.
    pub detail: String,
}

/// Usage statistics over every recorded call of a plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageStats {
    /// Calls recorded.
    pub calls: u64,
    /// Calls per outcome (`ok`, `violation`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// CPU time, summed over calls.
    pub cpu_ms_total: u64,
    /// CPU time of the most expensive call.
    pub cpu_ms_max: u64,
    /// Wall-clock time, summed over calls.
    pub wall_ms_total: u64,
    /// Wall-clock time of the slowest call.
    pub wall_ms_max: u64,
    /// Highest peak resident memory of any call, in KiB.
    pub peak_rss_kb_max: u64,
    /// Brokered file operations, summed.
    pub file_ops: u64,
    /// Brokered network requests, summed.
    pub net_requests: u64,
    /// Brokered database queries, summed.
    pub db_queries: u64,
    /// Bytes the plugin received through the broker (files read, responses, rows), summed.
    pub bytes_in: u64,
    /// Bytes the plugin sent through the broker (files written, request bodies), summed.
    pub bytes_out: u64,
    /// Violations recorded.
    pub violations: u64,
}

/// One entry of the audit trail: a call or an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AuditEntry {
    /// A call and its outcome.
    Call {
        /// The call's id.
        id: i64,
        /// When it ended (RFC 3339, UTC).
        time: String,
        /// The plugin's id.
        plugin_id: String,
        /// The plugin's name.
        plugin: String,
        /// The hook.
        hook: String,
        /// The outcome.
        status: String,
        /// The error, for every outcome but `ok`.
        error: Option<String>,
        /// What it used.
        usage: Usage,
        /// Rules broken.
        violations: Vec<Violation>,
        /// The worker's host-side pid.
        worker_pid: Option<i32>,
    },
    /// Something that happened to a plugin: `install`, `install_refused`, `uninstall`,
    /// `enable`, `disable`, `quarantine`, `release`.
    Event {
        /// The event's id.
        id: i64,
        /// When (RFC 3339, UTC).
        time: String,
        /// The plugin's id.
        plugin_id: String,
        /// The plugin's name.
        plugin: String,
        /// What happened.
        event: String,
        /// The details (the decision for installs, the reason for status changes).
        detail: serde_json::Value,
    },
}

/// Which entries [`Audit::entries`] returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this plugin id.
    pub plugin_id: Option<String>,
    /// Only entries at or after this Unix time, in milliseconds.
    pub since_ms: Option<i64>,
    /// Only the latest this many entries (still oldest first); `None` for all. Bounds what
    /// one query loads and holds the store's lock for.
    pub limit: Option<usize>,
}

/// The audit store. Share it by reference: the connection is behind a mutex.
#[derive(Debug)]
pub struct Audit {
    path: PathBuf,
    connection: Mutex<Connection>,
}

/// Creates `path` with mode 0600 if missing, and makes it and its `-wal`/`-shm` companions
/// 0600 if they exist.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // O_NONBLOCK: a FIFO put in its place must not block the open; it is refused below.
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (the audit store is a SQLite database file)",
        ));
    }
    opened?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        match std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// The plugin's (`?1`) calls at or after `?2` (Unix ms) with a violation, counting only calls
/// after its latest `release` or `install`.
const VIOLATING_CALLS_SINCE: &str = "SELECT COUNT(*) FROM calls WHERE plugin_id = ?1
     AND time >= MAX(?2, COALESCE((SELECT MAX(time) FROM events
         WHERE plugin_id = ?1 AND kind IN ('release', 'install')), 0))
     AND (status = 'violation' OR id IN (SELECT call_id FROM violations WHERE plugin_id = ?1))";

/// The name of the installed plugin `plugin_id`, if it is installed.
fn installed_name(
    tx: &rusqlite::Transaction<'_>,
    plugin_id: &str,
) -> rusqlite::Result<Option<String>> {
    tx.query_row(
        "SELECT name FROM plugins WHERE id = ?1",
        [plugin_id],
        |row| row.get(0),
    )
    .optional()
}

/// Sets the plugin's status and records the change as the event `event`.
fn update_status(
    tx: &rusqlite::Transaction<'_>,
    now: i64,
    plugin_id: &str,
    name: &str,
    status: Status,
    reason: Option<&str>,
    event: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE plugins SET status = ?2, status_reason = ?3, status_since = ?4 WHERE id = ?1",
        params![plugin_id, status.as_str(), reason, now],
    )?;
    let detail = serde_json::json!({ "status": status, "reason": reason });
    insert_event(tx, now, plugin_id, name, event, &detail)?;
    Ok(())
}

/// How many of a plugin's violations a report lists (the latest); the count covers them all.
pub const REPORTED_VIOLATIONS: i64 = 100;

/// Now, as Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix milliseconds as RFC 3339 (UTC, milliseconds).
pub fn format_time(ms: i64) -> String {
    // RFC 3339 ends at year 9999 (humantime's Display fails past it): a tampered or absurd
    // time in the store is shown as the last representable millisecond, not a panic.
    const LAST_RFC3339_MS: u64 = 253_402_300_799_999;
    let ms = u64::try_from(ms).unwrap_or(0).min(LAST_RFC3339_MS);
    let time = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_millis(time).to_string()
}

/// Parses a `--since` value: an RFC 3339 time (`2026-12-04T05:00:00Z`) or a duration before
/// `now_ms` (`10m`, `2h 30m`, `7days`). Returns Unix milliseconds.
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        let ms = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| format!("`{text}` is before 1970"))?
            .as_millis();
        return i64::try_from(ms).map_err(|_| format!("`{text}` is too far in the future"));
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(now_ms.saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX))),
        Err(_) => Err(format!(
            "`{text}` is neither an RFC 3339 time (e.g. 2026-12-04T05:00:00Z) nor a duration (e.g. 10m, 2h)"
        )),
    }
}

impl Audit {
    /// Opens (creating it if needed) the database at `path`, in WAL mode with
    /// `synchronous = FULL`, and creates the schema on first use.
    pub fn open(path: &Path) -> Result<Audit, AuditError> {
        let sqlite = |error| AuditError::Sqlite {
            path: path.to_path_buf(),
            error,
        };
        // Created 0600 before SQLite opens it: SQLite gives the -wal and -shm files the
        // database's mode, and the trail is the operator's, not everyone's.
        create_private(path).map_err(|error| AuditError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let connection = Connection::open(path).map_err(sqlite)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(sqlite)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(sqlite(rusqlite::Error::InvalidParameterName(format!(
                "cannot switch to WAL mode (journal mode is {mode})"
            ))));
        }
        connection
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(sqlite)?;
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(sqlite)?;
        match version {
            0 => upgrade(&connection, SCHEMA).map_err(sqlite)?,
            SCHEMA_VERSION => {}
            1 => upgrade(&connection, MIGRATE_1_TO_2).map_err(sqlite)?,
            found => {
                return Err(AuditError::NewerSchema {
                    path: path.to_path_buf(),
                    found,
                });
            }
        }
        Ok(Audit {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sqlite(&self, error: rusqlite::Error) -> AuditError {
        AuditError::Sqlite {
            path: self.path.clone(),
            error,
        }
    }

    fn json(&self, what: &'static str, text: &str) -> Result<serde_json::Value, AuditError> {
        serde_json::from_str(text).map_err(|error| AuditError::Corrupt {
            path: self.path.clone(),
            what,
            error,
        })
    }

    /// Runs `work` in one transaction and commits it. IMMEDIATE: the write lock is taken up
    /// front, so a writer in another process (the CLI beside `serve`) waits out the busy
    /// timeout instead of failing between a read and a write.
    fn write<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, AuditError> {
        let mut connection = self.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sqlite(e))?;
        let value = work(&tx).map_err(|e| self.sqlite(e))?;
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(value)
    }

    /// Records an installed plugin, its `install` event and its findings, in one transaction.
    pub fn insert_plugin(
        &self,
        row: &PluginRow,
        findings: &[StoredFinding],
    ) -> Result<(), AuditError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO plugins (id, name, version, installed_at, source, status, status_reason,
                 status_since, manifest, report, decision) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    row.id,
                    row.name,
                    row.version,
                    row.installed_at,
                    row.source,
                    row.status.as_str(),
                    row.status_reason,
                    row.status_since,
                    row.manifest.to_string(),
                    row.report.to_string(),
                    row.decision.to_string()
                ],
            )?;
            let detail = serde_json::json!({ "source": row.source, "decision": row.decision });
            let event = insert_event(
                tx,
                row.installed_at,
                &row.id,
                &row.name,
                "install",
                &detail,
            )?;
            for finding in findings {
                tx.execute(
                    "INSERT INTO findings (event_id, plugin_id, source, code, severity, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        event,
                        row.id,
                        finding.source,
                        finding.code,
                        finding.severity,
                        finding.message
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Records an event (`install_refused`, `uninstall`, ...) on its own.
    pub fn record_event(
        &self,
        plugin_id: &str,
        plugin_name: &str,
        kind: &str,
        detail: &serde_json::Value,
    ) -> Result<i64, AuditError> {
        self.write(|tx| insert_event(tx, now_ms(), plugin_id, plugin_name, kind, detail))
    }

    /// Changes a plugin's status and records the event (`enable`, `disable`, `quarantine`,
    /// `release`) in one transaction. Returns false if no such plugin is installed.
    pub fn set_status(
        &self,
        plugin_id: &str,
        status: Status,
        reason: Option<&str>,
        event: &str,
    ) -> Result<bool, AuditError> {
        let now = now_ms();
        self.write(|tx| {
            let Some(name) = installed_name(tx, plugin_id)? else {
                return Ok(false);
            };
            update_status(tx, now, plugin_id, &name, status, reason, event)?;
            Ok(true)
        })
    }

    /// Removes an installed plugin's row and records `uninstall`. Its calls, events, findings
    /// and violations stay: the trail outlives the plugin. Returns false if it was not
    /// installed.
    pub fn delete_plugin(&self, plugin_id: &str) -> Result<bool, AuditError> {
        self.write(|tx| {
            let Some(name) = installed_name(tx, plugin_id)? else {
                return Ok(false);
            };
            tx.execute("DELETE FROM plugins WHERE id = ?1", [plugin_id])?;
            insert_event(
                tx,
                now_ms(),
                plugin_id,
                &name,
                "uninstall",
                &serde_json::json!({}),
            )?;
            Ok(true)
        })
    }

    /// Records a call, its usage and every violation in one transaction; returns the call's id
    /// once it is committed.
    pub fn record_call(&self, entry: &CallEntry<'_>) -> Result<i64, AuditError> {
        let now = now_ms();
        let result = entry.result;
        let usage = &result.usage;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO calls (time, plugin_id, plugin_name, hook, status, error, cpu_ms, wall_ms,
                 peak_rss_kb, file_ops, net_requests, db_queries, bytes_in, bytes_out, worker_pid,
                 layers, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                 ?17)",
                params![
                    now,
                    entry.plugin_id,
                    entry.plugin_name,
                    entry.hook,
                    result.status.as_str(),
                    result.error,
                    clamp(usage.cpu_ms),
                    clamp(usage.wall_ms),
                    clamp(usage.peak_rss_kb),
                    clamp(usage.file_ops),
                    clamp(usage.net_requests),
                    clamp(usage.db_queries),
                    clamp(usage.bytes_in),
                    clamp(usage.bytes_out),
                    result.worker_pid,
                    serde_json::to_string(&result.layers).unwrap_or_else(|_| "[]".into()),
                    next_seq(tx)?,
                ],
            )?;
            let id = tx.last_insert_rowid();
            for violation in &result.violations {
                tx.execute(
                    "INSERT INTO violations (call_id, time, plugin_id, rule, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, now, entry.plugin_id, violation.rule, violation.detail],
                )?;
            }
            Ok(id)
        })
    }

    /// Every installed plugin, by name.
    pub fn plugins(&self) -> Result<Vec<PluginRow>, AuditError> {
        self.select_plugins("ORDER BY name", [])
    }

    /// One installed plugin.
    pub fn plugin(&self, plugin_id: &str) -> Result<Option<PluginRow>, AuditError> {
        Ok(self
            .select_plugins("WHERE id = ?1", [plugin_id])?
            .into_iter()
            .next())
    }

    fn select_plugins<P: rusqlite::Params>(
        &self,
        clause: &str,
        params: P,
    ) -> Result<Vec<PluginRow>, AuditError> {
        type Raw = (
            String,
            String,
            String,
            i64,
            String,
            String,
            Option<String>,
            i64,
            String,
            String,
            String,
        );
        let raw: Vec<Raw> = {
            let connection = self.lock();
            let mut statement = connection
                .prepare(&format!(
                    "SELECT id, name, version, installed_at, source, status, status_reason,
                     status_since, manifest, report, decision FROM plugins {clause}"
                ))
                .map_err(|e| self.sqlite(e))?;
            statement
                .query_map(params, |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                        row.get(6)?,
                        row.get(7)?,
                        row.get(8)?,
                        row.get(9)?,
                        row.get(10)?,
                    ))
                })
                .and_then(|rows| rows.collect())
                .map_err(|e| self.sqlite(e))?
        };
        // A row whose JSON does not decode (edited by hand?) is shown disabled with the
        // reason, not an error: one bad row must not make every plugin unusable, and the
        // operator can still uninstall it.
        Ok(raw
            .into_iter()
            .map(|r| {
                let mut corrupt = Vec::new();
                let mut decode = |what: &'static str, text: &str| {
                    self.json(what, text).unwrap_or_else(|error| {
                        corrupt.push(error.to_string());
                        serde_json::Value::Null
                    })
                };
                let manifest = decode("manifest", &r.8);
                let report = decode("report", &r.9);
                let decision = decode("decision", &r.10);
                let (status, status_reason) = if corrupt.is_empty() {
                    (Status::parse(&r.5), r.6)
                } else {
                    (
                        Status::Disabled,
                        Some(format!(
                            "its audit row is corrupt ({}); `plugin-host uninstall {}` and install \
                             it again",
                            corrupt.join("; "),
                            r.0
                        )),
                    )
                };
                PluginRow {
                    id: r.0,
                    name: r.1,
                    version: r.2,
                    installed_at: r.3,
                    source: r.4,
                    status,
                    status_reason,
                    status_since: r.7,
                    manifest,
                    report,
                    decision,
                }
            })
            .collect())
    }

    /// A plugin's status, if it is installed.
    /// A row whose JSON columns are not valid JSON is `disabled` (see `select_plugins`).
    pub fn status(&self, plugin_id: &str) -> Result<Option<(Status, Option<String>)>, AuditError> {
        let connection = self.lock();
        connection
            .query_row(
                "SELECT status, status_reason,
                 json_valid(manifest) AND json_valid(report) AND json_valid(decision)
                 FROM plugins WHERE id = ?1",
                [plugin_id],
                |row| {
                    if row.get::<_, bool>(2)? {
                        Ok((Status::parse(&row.get::<_, String>(0)?), row.get(1)?))
                    } else {
                        Ok((
                            Status::Disabled,
                            Some(format!(
                                "its audit row is corrupt; `plugin-host uninstall {plugin_id}` \
                                 and install it again"
                            )),
                        ))
                    }
                },
            )
            .optional()
            .map_err(|e| self.sqlite(e))
    }

    /// The findings recorded at the plugin's latest install.
    pub fn findings(&self, plugin_id: &str) -> Result<Vec<StoredFinding>, AuditError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(
                "SELECT source, code, severity, message FROM findings
                 WHERE event_id = (SELECT MAX(event_id) FROM findings WHERE plugin_id = ?1)
                 ORDER BY id",
            )
            .map_err(|e| self.sqlite(e))?;
        statement
            .query_map([plugin_id], |row| {
                Ok(StoredFinding {
                    source: row.get(0)?,
                    code: row.get(1)?,
                    severity: row.get(2)?,
                    message: row.get(3)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sqlite(e))
    }

    /// Usage statistics over every recorded call of the plugin.
    pub fn usage(&self, plugin_id: &str) -> Result<UsageStats, AuditError> {
        let connection = self.lock();
        let mut stats = connection
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(cpu_ms), 0), COALESCE(MAX(cpu_ms), 0),
                 COALESCE(SUM(wall_ms), 0), COALESCE(MAX(wall_ms), 0), COALESCE(MAX(peak_rss_kb), 0),
                 COALESCE(SUM(file_ops), 0), COALESCE(SUM(net_requests), 0), COALESCE(SUM(db_queries), 0),
                 (SELECT COUNT(*) FROM violations WHERE plugin_id = ?1),
                 COALESCE(SUM(bytes_in), 0), COALESCE(SUM(bytes_out), 0)
                 FROM calls WHERE plugin_id = ?1",
                [plugin_id],
                |row| {
                    let get = |i| row.get::<_, i64>(i).map(unclamp);
                    Ok(UsageStats {
                        calls: get(0)?,
                        outcomes: BTreeMap::new(),
                        cpu_ms_total: get(1)?,
                        cpu_ms_max: get(2)?,
                        wall_ms_total: get(3)?,
                        wall_ms_max: get(4)?,
                        peak_rss_kb_max: get(5)?,
                        file_ops: get(6)?,
                        net_requests: get(7)?,
                        db_queries: get(8)?,
                        bytes_in: get(10)?,
                        bytes_out: get(11)?,
                        violations: get(9)?,
                    })
                },
            )
            .map_err(|e| self.sqlite(e))?;
        let mut statement = connection
            .prepare("SELECT status, COUNT(*) FROM calls WHERE plugin_id = ?1 GROUP BY status")
            .map_err(|e| self.sqlite(e))?;
        stats.outcomes = statement
            .query_map([plugin_id], |row| {
                Ok((row.get::<_, String>(0)?, unclamp(row.get(1)?)))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sqlite(e))?;
        Ok(stats)
    }

    /// The latest [`REPORTED_VIOLATIONS`] violations of the plugin, oldest first (the total is
    /// in [`UsageStats::violations`]).
    pub fn violations(&self, plugin_id: &str) -> Result<Vec<ViolationEntry>, AuditError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare(
                "SELECT call_id, time, rule, detail FROM violations WHERE plugin_id = ?1
                 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| self.sqlite(e))?;
        let latest: Vec<ViolationEntry> = statement
            .query_map(params![plugin_id, REPORTED_VIOLATIONS], |row| {
                Ok(ViolationEntry {
                    call_id: row.get(0)?,
                    time: format_time(row.get(1)?),
                    rule: row.get(2)?,
                    detail: row.get(3)?,
                })
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sqlite(e))?;
        Ok(latest.into_iter().rev().collect())
    }

    /// How many of the plugin's calls at or after `since_ms` had a violation, counting only
    /// calls after its latest `release` or `install` (a released plugin starts afresh).
    pub fn calls_with_violations_since(
        &self,
        plugin_id: &str,
        since_ms: i64,
    ) -> Result<u64, AuditError> {
        let connection = self.lock();
        connection
            .query_row(VIOLATING_CALLS_SINCE, params![plugin_id, since_ms], |row| {
                row.get::<_, i64>(0).map(unclamp)
            })
            .map_err(|e| self.sqlite(e))
    }

    /// Quarantines the plugin if it is enabled and at least `threshold` of its calls since
    /// `since_ms` (counted as [`Audit::calls_with_violations_since`]) had violations, with the
    /// reason `reason(count)`; returns the count when it did. Count, status check and update
    /// are one transaction: two calls finishing at once quarantine once, and an operator's
    /// `disable` or `release` in between is never overwritten.
    pub fn quarantine_if_repeated(
        &self,
        plugin_id: &str,
        since_ms: i64,
        threshold: u64,
        reason: impl FnOnce(u64) -> String,
    ) -> Result<Option<u64>, AuditError> {
        self.write(|tx| {
            let count: u64 =
                tx.query_row(VIOLATING_CALLS_SINCE, params![plugin_id, since_ms], |row| {
                    row.get::<_, i64>(0).map(unclamp)
                })?;
            let state: Option<(String, String)> = tx
                .query_row(
                    "SELECT status, name FROM plugins WHERE id = ?1",
                    [plugin_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((status, name)) = state else {
                return Ok(None);
            };
            if Status::parse(&status) != Status::Enabled || count < threshold {
                return Ok(None);
            }
            let reason = reason(count);
            update_status(
                tx,
                now_ms(),
                plugin_id,
                &name,
                Status::Quarantined,
                Some(&reason),
                "quarantine",
            )?;
            Ok(Some(count))
        })
    }

    /// The enforcement layers and Landlock ABI of the plugin's latest call that ran in a
    /// worker.
    pub fn last_layers(&self, plugin_id: &str) -> Result<Vec<String>, AuditError> {
        let connection = self.lock();
        let text: Option<String> = connection
            .query_row(
                "SELECT layers FROM calls WHERE plugin_id = ?1 AND layers != '[]' ORDER BY id DESC LIMIT 1",
                [plugin_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        match text {
            Some(text) => serde_json::from_str(&text).map_err(|error| AuditError::Corrupt {
                path: self.path.clone(),
                what: "layers",
                error,
            }),
            None => Ok(Vec::new()),
        }
    }

    /// The audit trail, oldest first: calls and events, filtered.
    pub fn entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, AuditError> {
        let plugin = filter.plugin_id.as_deref();
        let since = filter.since_ms.unwrap_or(i64::MIN);
        // SQLite's LIMIT -1 is no limit.
        let limit = filter
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let connection = self.lock();
        // The calls first (the latest `limit`), so the violations can be bounded to them.
        // Sorted by (seq, time): seq is the commit order (0 for records of schema 1).
        let calls: Vec<((i64, i64), i64, AuditEntry)>;
        let mut entries: Vec<((i64, i64), u8, i64, AuditEntry)> = Vec::new();

        {
            let mut statement = connection
                .prepare(
                    "SELECT id, time, plugin_id, plugin_name, hook, status, error, cpu_ms, wall_ms,
                     peak_rss_kb, file_ops, net_requests, db_queries, worker_pid, bytes_in,
                     bytes_out, seq FROM calls
                     WHERE (?1 IS NULL OR plugin_id = ?1) AND time >= ?2
                     ORDER BY id DESC LIMIT ?3",
                )
                .map_err(|e| self.sqlite(e))?;
            let rows = statement
                .query_map(params![plugin, since, limit], |row| {
                    let id: i64 = row.get(0)?;
                    let time: i64 = row.get(1)?;
                    let seq: i64 = row.get(16)?;
                    let get = |i| row.get::<_, i64>(i).map(unclamp);
                    Ok((
                        (seq, time),
                        id,
                        AuditEntry::Call {
                            id,
                            time: format_time(time),
                            plugin_id: row.get(2)?,
                            plugin: row.get(3)?,
                            hook: row.get(4)?,
                            status: row.get(5)?,
                            error: row.get(6)?,
                            usage: Usage {
                                cpu_ms: get(7)?,
                                wall_ms: get(8)?,
                                peak_rss_kb: get(9)?,
                                file_ops: get(10)?,
                                net_requests: get(11)?,
                                db_queries: get(12)?,
                                bytes_in: get(14)?,
                                bytes_out: get(15)?,
                            },
                            violations: Vec::new(),
                            worker_pid: row.get(13)?,
                        },
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.sqlite(e))?;
            calls = rows.into_iter().rev().collect();
        }
        let mut violations: BTreeMap<i64, Vec<Violation>> = BTreeMap::new();
        {
            let mut statement = connection
                .prepare(
                    "SELECT call_id, rule, detail FROM violations
                     WHERE (?1 IS NULL OR plugin_id = ?1) AND time >= ?2 AND call_id >= ?3
                     ORDER BY id",
                )
                .map_err(|e| self.sqlite(e))?;
            let first_call = calls.first().map_or(i64::MAX, |(_, id, _)| *id);
            let rows = statement
                .query_map(params![plugin, since, first_call], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        Violation {
                            rule: row.get(1)?,
                            detail: row.get(2)?,
                        },
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.sqlite(e))?;
            for (call, violation) in rows {
                violations.entry(call).or_default().push(violation);
            }
        }
        for (time, id, mut entry) in calls {
            if let AuditEntry::Call {
                violations: list, ..
            } = &mut entry
            {
                *list = violations.remove(&id).unwrap_or_default();
            }
            entries.push((time, 1, id, entry));
        }
        {
            let mut statement = connection
                .prepare(
                    "SELECT id, time, plugin_id, plugin_name, kind, detail, seq FROM events
                     WHERE (?1 IS NULL OR plugin_id = ?1) AND time >= ?2
                     ORDER BY id DESC LIMIT ?3",
                )
                .map_err(|e| self.sqlite(e))?;
            let rows = statement
                .query_map(params![plugin, since, limit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, String>(5)?,
                        row.get::<_, i64>(6)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| self.sqlite(e))?;
            for (id, time, plugin_id, plugin, event, detail, seq) in rows {
                let detail = self.json("event detail", &detail)?;
                entries.push((
                    (seq, time),
                    0,
                    id,
                    AuditEntry::Event {
                        id,
                        time: format_time(time),
                        plugin_id,
                        plugin,
                        event,
                        detail,
                    },
                ));
            }
        }
        entries.sort_by_key(|(time, kind, id, _)| (*time, *kind, *id));
        let skip = filter
            .limit
            .map_or(0, |limit| entries.len().saturating_sub(limit));
        Ok(entries
            .into_iter()
            .skip(skip)
            .map(|(_, _, _, entry)| entry)
            .collect())
    }

    /// Plugin ids and names that appear in the trail (installed or not), for resolving an id
    /// given to `audit --plugin` after an uninstall.
    pub fn known_plugins(&self) -> Result<Vec<(String, String)>, AuditError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT DISTINCT plugin_id, plugin_name FROM events ORDER BY plugin_name")
            .map_err(|e| self.sqlite(e))?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sqlite(e))
    }

    /// SQLite's `PRAGMA integrity_check`: `ok`, or the problems found.
    pub fn integrity_check(&self) -> Result<String, AuditError> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.sqlite(e))?;
        let lines: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sqlite(e))?;
        Ok(lines.join("\n"))
    }
}

fn insert_event(
    connection: &Connection,
    time: i64,
    plugin_id: &str,
    plugin_name: &str,
    kind: &str,
    detail: &serde_json::Value,
) -> rusqlite::Result<i64> {
    let seq = next_seq(connection)?;
    connection.execute(
        "INSERT INTO events (time, plugin_id, plugin_name, kind, detail, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![time, plugin_id, plugin_name, kind, detail.to_string(), seq],
    )?;
    Ok(connection.last_insert_rowid())
}

/// Runs `steps` (the schema, or a migration to it) and sets the schema version, in one
/// IMMEDIATE transaction. Another process opening the same store may have done it first: then
/// the version is already current and its error is not ours.
fn upgrade(connection: &Connection, steps: &str) -> rusqlite::Result<()> {
    connection
        .execute_batch(&format!(
            "BEGIN IMMEDIATE; {steps} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
        .or_else(|error| {
            let version: i64 = connection
                .query_row("PRAGMA user_version", [], |row| row.get(0))
                .unwrap_or(0);
            let _ = connection.execute_batch("ROLLBACK");
            if version == SCHEMA_VERSION {
                Ok(())
            } else {
                Err(error)
            }
        })
}

/// The next number of the trail's order. Called inside the write transaction, so the order
/// is the order of commits.
fn next_seq(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row(
        "UPDATE sequence SET value = value + 1 RETURNING value",
        [],
        |row| row.get(0),
    )
}

/// SQLite integers are signed; counters never reach 2^63, but clamp rather than wrap.
fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn unclamp(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;

    #[test]
    fn quarantine_happens_once_and_only_to_an_enabled_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(&dir.path().join("audit.db")).unwrap();
        let row = |id: &str, name: &str, status| PluginRow {
            id: id.into(),
            name: name.into(),
            version: "0.1.0".into(),
            installed_at: 0,
            source: "test".into(),
            status,
            status_reason: None,
            status_since: 0,
            manifest: serde_json::json!({}),
            report: serde_json::json!({}),
            decision: serde_json::json!({}),
        };
        audit
            .insert_plugin(&row("a", "on", Status::Enabled), &[])
            .unwrap();
        audit
            .insert_plugin(&row("b", "off", Status::Disabled), &[])
            .unwrap();
        for plugin_id in ["a", "b"] {
            for _ in 0..2 {
                let mut result = CallResult::failed(Outcome::Violation, "x", Usage::default());
                result.violations.push(Violation {
                    rule: "path".into(),
                    detail: "/etc".into(),
                });
                let entry = CallEntry {
                    plugin_id,
                    plugin_name: "p",
                    hook: "analyze",
                    result: &result,
                };
                audit.record_call(&entry).unwrap();
            }
        }
        let reason = |count| format!("{count} violating calls");
        assert_eq!(
            audit.quarantine_if_repeated("a", 0, 3, reason).unwrap(),
            None
        );
        assert_eq!(
            audit.quarantine_if_repeated("a", 0, 2, reason).unwrap(),
            Some(2)
        );
        // Already quarantined: not again (one event), and a disabled plugin stays disabled.
        assert_eq!(
            audit.quarantine_if_repeated("a", 0, 2, reason).unwrap(),
            None
        );
        assert_eq!(
            audit.quarantine_if_repeated("b", 0, 2, reason).unwrap(),
            None
        );
        let status = audit.status("a").unwrap().unwrap();
        assert_eq!(
            status,
            (Status::Quarantined, Some("2 violating calls".into()))
        );
        assert_eq!(audit.status("b").unwrap().unwrap().0, Status::Disabled);
    }

    #[test]
    fn the_trail_keeps_commit_order_within_a_millisecond() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(&dir.path().join("audit.db")).unwrap();
        let ok = CallResult::ok(serde_json::json!(1), Usage::default());
        for _ in 0..20 {
            audit
                .record_call(&CallEntry {
                    plugin_id: "abc",
                    plugin_name: "p",
                    hook: "analyze",
                    result: &ok,
                })
                .unwrap();
            audit
                .record_event("abc", "p", "enable", &serde_json::json!({}))
                .unwrap();
        }
        let filter = AuditFilter {
            plugin_id: None,
            since_ms: None,
            limit: None,
        };
        let kinds: Vec<bool> = audit
            .entries(&filter)
            .unwrap()
            .iter()
            .map(|e| matches!(e, AuditEntry::Call { .. }))
            .collect();
        let alternating: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
        assert_eq!(kinds, alternating);
    }

    #[test]
    fn a_schema_1_store_is_migrated_and_keeps_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        {
            // Schema 1: no sequence, no seq columns.
            let v1 = SCHEMA
                .replace("CREATE TABLE sequence (value INTEGER NOT NULL);\nINSERT INTO sequence VALUES (0);\n", "")
                .replace(",\n    seq          INTEGER NOT NULL DEFAULT 0", "")
                .replace(",\n    seq         INTEGER NOT NULL DEFAULT 0", "");
            assert!(!v1.contains("seq "), "{v1}");
            let connection = Connection::open(&path).unwrap();
            connection
                .execute_batch(&format!("{v1} PRAGMA user_version = 1;"))
                .unwrap();
            connection
                .execute(
                    "INSERT INTO events (time, plugin_id, plugin_name, kind, detail)
                     VALUES (1, 'abc', 'p', 'install', '{}')",
                    [],
                )
                .unwrap();
        }
        let audit = Audit::open(&path).unwrap();
        audit
            .record_event("abc", "p", "disable", &serde_json::json!({}))
            .unwrap();
        let filter = AuditFilter {
            plugin_id: None,
            since_ms: None,
            limit: None,
        };
        let events: Vec<String> = audit
            .entries(&filter)
            .unwrap()
            .into_iter()
            .map(|e| match e {
                AuditEntry::Event { event, .. } => event,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(events, ["install", "disable"]);
    }

    #[test]
    fn a_limit_keeps_the_latest_entries_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(&dir.path().join("audit.db")).unwrap();
        let mut ids = Vec::new();
        for status in [
            Outcome::Ok,
            Outcome::Violation,
            Outcome::Ok,
            Outcome::Violation,
        ] {
            let mut result = CallResult::failed(status, "x", Usage::default());
            if status == Outcome::Violation {
                result.violations.push(Violation {
                    rule: "path".into(),
                    detail: format!("call {}", ids.len()),
                });
            }
            let entry = CallEntry {
                plugin_id: "abc",
                plugin_name: "p",
                hook: "analyze",
                result: &result,
            };
            ids.push(audit.record_call(&entry).unwrap());
        }
        let filter = |limit| AuditFilter {
            plugin_id: None,
            since_ms: None,
            limit,
        };
        let call_ids = |entries: Vec<AuditEntry>| -> Vec<(i64, usize)> {
            entries
                .into_iter()
                .map(|e| match e {
                    AuditEntry::Call { id, violations, .. } => (id, violations.len()),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        let latest = call_ids(audit.entries(&filter(Some(3))).unwrap());
        assert_eq!(latest, [(ids[1], 1), (ids[2], 0), (ids[3], 1)]);
        assert_eq!(call_ids(audit.entries(&filter(None)).unwrap()).len(), 4);
        let violations = audit.violations("abc").unwrap();
        assert_eq!(violations.len(), 2);
        assert_eq!(violations[0].call_id, ids[1]);
    }

    #[test]
    fn calls_and_violations_round_trip_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(&dir.path().join("audit.db")).unwrap();
        let mut result = CallResult::failed(
            Outcome::Violation,
            "denied system call clone",
            Usage {
                cpu_ms: 3,
                wall_ms: 5,
                peak_rss_kb: 100,
                file_ops: 1,
                net_requests: 2,
                db_queries: 3,
                bytes_in: 40,
                bytes_out: 50,
            },
        );
        result.violations.push(Violation {
            rule: "syscall".into(),
            detail: "clone".into(),
        });
        let entry = CallEntry {
            plugin_id: "abc",
            plugin_name: "p",
            hook: "analyze",
            result: &result,
        };
        let first = audit.record_call(&entry).unwrap();
        let ok = CallResult::ok(serde_json::json!(1), Usage::default());
        audit
            .record_call(&CallEntry {
                result: &ok,
                ..entry
            })
            .unwrap();
        let usage = audit.usage("abc").unwrap();
        assert_eq!(usage.calls, 2);
        assert_eq!(usage.outcomes["violation"], 1);
        assert_eq!(usage.outcomes["ok"], 1);
        assert_eq!(
            (usage.file_ops, usage.net_requests, usage.db_queries),
            (1, 2, 3)
        );
        assert_eq!((usage.bytes_in, usage.bytes_out), (40, 50));
        assert_eq!(usage.violations, 1);
        assert_eq!(audit.violations("abc").unwrap()[0].call_id, first);
        assert_eq!(audit.calls_with_violations_since("abc", 0).unwrap(), 1);
        assert_eq!(audit.integrity_check().unwrap(), "ok");
        drop(audit);
        // Reopening finds the schema and the records.
        let audit = Audit::open(&dir.path().join("audit.db")).unwrap();
        assert_eq!(audit.entries(&AuditFilter::default()).unwrap().len(), 2);
    }

    #[test]
    fn since_accepts_times_and_durations() {
        assert_eq!(parse_since("1970-01-01T00:00:01Z", 0).unwrap(), 1000);
        assert_eq!(parse_since("10s", 60_000).unwrap(), 50_000);
        assert!(
            parse_since("yesterday-ish", 0)
                .unwrap_err()
                .contains("RFC 3339")
        );
    }
}
