//! The plugin service (SPEC §10): a managed set of installed plugins, hooks dispatched across
//! them with failures isolated, recovery, and the audit trail.
//!
//! A [`Host`] is built by a [`HostBuilder`] from a data dir and a policy. It owns:
//!
//! - the [`Store`] of installed files (`<data-dir>/plugins/<sha256>/plugin.so`, each with its
//!   own data dir beside it);
//! - the [`Audit`] store (`<data-dir>/audit.db`), which also holds which plugins are installed
//!   and their status, so several processes on one data dir (`serve` and the CLI) agree;
//! - one warm [`Pool`] per installed plugin, started at its first call.
//!
//! **Ids.** A plugin's id is the SHA-256 of its file (64 hex digits). Wherever an id is
//! accepted, so is the plugin's name (names are unique among installed plugins) or a prefix of
//! at least [`MIN_ID_PREFIX`] hex digits that matches one installed plugin.
//!
//! **Isolation.** [`Host::dispatch`] calls every enabled plugin that exports the hook, each on
//! its own thread and its own workers; a plugin's crash, hang or violation ends its own call
//! and never touches another plugin's result.
//!
//! **Recovery.** A call that ends in a failure retires its worker (the pool's rule). The next
//! call of that plugin starts a fresh worker, but only after a backoff that doubles with each
//! consecutive failure ([`Recovery::backoff_base`] up to [`Recovery::backoff_max`]) and resets
//! at the first `ok`. A plugin with [`Recovery::quarantine_after`] calls with violations within
//! [`Recovery::quarantine_window`] is quarantined: disabled, with the reason, until an operator
//! releases it ([`Host::release`]); `enable` does not lift a quarantine, so lifting one is
//! always a deliberate, audited act.
//!
//! **Audit.** Every call (including calls refused because the plugin is disabled, quarantined
//! or denied) is recorded before its result is returned: a [`CallRecord`] with a `call_id`
//! has been committed.
#![forbid(unsafe_code)]

use crate::audit::{
    Audit, AuditEntry, AuditError, AuditFilter, CallEntry, PluginRow, Status, StoredFinding, now_ms,
};
use crate::elf::ElfError;
use crate::inspect::{self, Report};
use crate::outcome::{CallResult, Outcome, Usage};
use crate::plugin::{self, Plugin};
use crate::policy::engine::{Decision, evaluate};
use crate::policy::{Policy, PolicyError};
use crate::pool::{Pool, PoolConfig};
use crate::report::{self, Enforcement, PluginSummary, Reports, SecurityReport};
use crate::store::Store;
use crate::worker::WorkerOptions;
use plugin_manifest::{Manifest, SecurityLevel};
use serde::Serialize;
use std::collections::HashMap;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Shortest sha256 prefix accepted as an id.
pub const MIN_ID_PREFIX: usize = 8;
/// First backoff after a failure. See [`Recovery::backoff_base`].
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest backoff. See [`Recovery::backoff_max`].
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Calls with violations that quarantine a plugin. See [`Recovery::quarantine_after`].
pub const DEFAULT_QUARANTINE_AFTER: u64 = 3;
/// The window they are counted in. See [`Recovery::quarantine_window`].
pub const DEFAULT_QUARANTINE_WINDOW: Duration = Duration::from_secs(600);
/// The policy file read from the data dir when the builder is given none.
pub const POLICY_FILE: &str = "policy.toml";
/// The audit database's file name in the data dir.
pub const AUDIT_FILE: &str = "audit.db";

/// How many audit entries `audit` and `GET /audit` return unless asked for another number:
/// the latest ones. A trail grows without end; one answer must not.
pub const DEFAULT_AUDIT_LIMIT: usize = 1000;

/// The most entries one `GET /audit` may ask for.
pub const MAX_AUDIT_LIMIT: usize = 100_000;

/// How failed plugins are restarted and when they are quarantined.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Wait before starting a worker after one failure; doubles with each further consecutive
    /// failure. By default [`DEFAULT_BACKOFF_BASE`] (100 ms).
    pub backoff_base: Duration,
    /// The longest wait. By default [`DEFAULT_BACKOFF_MAX`] (5 s).
    pub backoff_max: Duration,
    /// Calls with violations that quarantine the plugin. By default
    /// [`DEFAULT_QUARANTINE_AFTER`] (3).
    pub quarantine_after: u64,
    /// The window those calls are counted in. By default [`DEFAULT_QUARANTINE_WINDOW`]
    /// (10 minutes).
    pub quarantine_window: Duration,
}

impl Default for Recovery {
    fn default() -> Recovery {
        Recovery {
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            quarantine_after: DEFAULT_QUARANTINE_AFTER,
            quarantine_window: DEFAULT_QUARANTINE_WINDOW,
        }
    }
}

impl Recovery {
    /// The wait after `failures` consecutive failures.
    pub fn backoff(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        self.backoff_base
            .checked_mul(factor)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }
}

/// Anything the service refuses or fails at; each message names the plugin or file and the
/// problem.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The data dir cannot be created or used.
    #[error("{}: cannot use the data dir: {error}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The policy file in the data dir is unusable.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The audit store failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A file could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// The bytes are not a plugin this host can load.
    #[error("{source_name}: {error}")]
    NotAPlugin {
        /// Where the bytes came from (a path, or `upload`).
        source_name: String,
        /// Why.
        error: ElfError,
    },
    /// A manifest given as JSON does not decode or is invalid.
    #[error("{source_name}: invalid manifest: {}", problems.join("; "))]
    InvalidManifest {
        /// Where it came from.
        source_name: String,
        /// Every problem.
        problems: Vec<String>,
    },
    /// The policy denies the plugin; nothing was installed.
    #[error("{source_name}: plugin `{name}` is denied by the policy: {}", decision.reasons.join("; "))]
    Denied {
        /// Where the plugin came from.
        source_name: String,
        /// Its name.
        name: String,
        /// The decision, with every reason.
        decision: Box<Decision>,
    },
    /// A plugin of that name is installed already.
    #[error(
        "plugin `{name}` is already installed as {id}{}; uninstall it first",
        if *same { " (the same file)" } else { " (another file)" }
    )]
    AlreadyInstalled {
        /// The name.
        name: String,
        /// The installed plugin's id.
        id: String,
        /// Whether the installed file is the same.
        same: bool,
    },
    /// No installed plugin matches the id.
    #[error(
        "no installed plugin matches `{id}` (give its name, or at least {MIN_ID_PREFIX} hex digits of its SHA-256; `plugin-host list` shows them)"
    )]
    NotFound {
        /// What was asked for.
        id: String,
    },
    /// Several installed plugins match an id prefix.
    #[error("`{id}` matches several installed plugins ({}); give more digits", matches.join(", "))]
    Ambiguous {
        /// What was asked for.
        id: String,
        /// The matching plugins (`name id`).
        matches: Vec<String>,
    },
    /// The plugin does not export the hook.
    #[error("plugin `{plugin}` has no entry point `{hook}` (it exports: {})", if hooks.is_empty() { "none".to_string() } else { hooks.join(", ") })]
    NoSuchHook {
        /// The plugin's name.
        plugin: String,
        /// The hook asked for.
        hook: String,
        /// What it exports.
        hooks: Vec<String>,
    },
    /// The plugin is not in the state the operation needs.
    #[error("plugin `{plugin}` is {status}: {message}")]
    WrongStatus {
        /// The plugin's name.
        plugin: String,
        /// Its status.
        status: &'static str,
        /// What to do instead.
        message: String,
    },
    /// The installed file changed since the install.
    #[error(
        "{}: installed file was modified (SHA-256 {found}, installed as {expected}); uninstall and install it again",
        path.display()
    )]
    Tampered {
        /// The file.
        path: PathBuf,
        /// The id it was installed as.
        expected: String,
        /// What it hashes to now.
        found: String,
    },
    /// A call ran, but its record could not be written to the audit store (locked by another
    /// process past the busy timeout, say). Its result is kept here, not lost.
    #[error(
        "plugin `{plugin}`: the call ran and ended `{}`, but it could not be recorded: {error}; \
         retry when the audit store is free (another process may hold a long transaction on it)",
        result.status
    )]
    NotRecorded {
        /// The plugin's name.
        plugin: String,
        /// The call's result.
        result: Box<CallResult>,
        /// Why it was not recorded.
        error: AuditError,
    },
    /// The installed plugin could not be opened.
    #[error("installed plugin {id}: {error}; `plugin-host uninstall {id}` and install it again")]
    Load {
        /// Its id.
        id: String,
        /// Why.
        error: crate::Error,
    },
}

impl ServiceError {
    /// Whether this is a policy denial (exit code 1 on the command line) rather than bad input.
    pub fn is_denial(&self) -> bool {
        matches!(self, ServiceError::Denied { .. })
    }

    /// A stable code for this kind of error, the same in the HTTP API's error bodies and in
    /// the CLI's `--json` errors: `not_found`, `denied`, `not_a_plugin`, ...
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::DataDir { .. } => "data_dir",
            ServiceError::Policy(_) => "bad_policy",
            ServiceError::Audit(_) => "audit_store",
            ServiceError::Io { .. } => "unreadable",
            ServiceError::NotAPlugin { .. } => "not_a_plugin",
            ServiceError::InvalidManifest { .. } => "invalid_manifest",
            ServiceError::Denied { .. } => "denied",
            ServiceError::AlreadyInstalled { .. } => "already_installed",
            ServiceError::NotFound { .. } => "not_found",
            ServiceError::Ambiguous { .. } => "ambiguous_id",
            ServiceError::NoSuchHook { .. } => "no_such_hook",
            ServiceError::WrongStatus { .. } => "wrong_status",
            ServiceError::Tampered { .. } => "store_tampered",
            ServiceError::Load { .. } => "load_failed",
            ServiceError::NotRecorded { .. } => "not_recorded",
        }
    }

    /// For bytes that are not a plugin, the inspection's own stable code (`ELF_TRUNCATED`,
    /// `NOT_A_PLUGIN`, ...): why, in a form a program can act on.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            ServiceError::NotAPlugin { error, .. } => Some(error.code()),
            ServiceError::Load {
                error: crate::Error::Inspect { error, .. },
                ..
            } => Some(error.code()),
            _ => None,
        }
    }

    /// Whether the thing asked for does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ServiceError::NotFound { .. } | ServiceError::NoSuchHook { .. }
        )
    }
}

/// One recorded call: which plugin, which hook, and its result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    /// The call's id in the audit store (committed before this value exists).
    pub call_id: i64,
    /// The plugin's id.
    pub plugin_id: String,
    /// The plugin's name.
    pub plugin: String,
    /// The hook.
    pub hook: String,
    /// The result: `status`, `output`, `error`, `usage`, `violations`, `layers`, ...
    #[serde(flatten)]
    pub result: CallResult,
}

/// The result of an install.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Installed {
    /// The installed plugin.
    pub plugin: PluginSummary,
    /// The policy's decision (`allow`), with every finding.
    pub decision: Decision,
}

/// A plugin's recovery state, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecoveryState {
    /// Failures since the last `ok` call.
    pub consecutive_failures: u32,
    /// How long the next worker start waits, from the last failure.
    pub backoff_ms: u64,
    /// Workers started for the plugin by this host.
    pub workers_started: u64,
}

/// Builds a [`Host`].
#[derive(Debug, Clone)]
pub struct HostBuilder {
    data_dir: PathBuf,
    policy: Option<Policy>,
    level: Option<SecurityLevel>,
    worker_exe: Option<PathBuf>,
    pool: PoolConfig,
    recovery: Recovery,
}

impl HostBuilder {
    /// A host over `data_dir` (created, mode 0711, if missing).
    pub fn new(data_dir: impl Into<PathBuf>) -> HostBuilder {
        HostBuilder {
            data_dir: data_dir.into(),
            policy: None,
            level: None,
            worker_exe: None,
            pool: PoolConfig {
                max_workers: 2,
                ..PoolConfig::default()
            },
            recovery: Recovery::default(),
        }
    }

    /// The policy installs and calls are decided under. By default `<data-dir>/policy.toml`
    /// if it exists, else [`Policy::default`].
    pub fn policy(&mut self, policy: Policy) -> &mut HostBuilder {
        self.policy = Some(policy);
        self
    }

    /// The operator's level (as `--level`). By default none: the policy's.
    pub fn level(&mut self, level: Option<SecurityLevel>) -> &mut HostBuilder {
        self.level = level;
        self
    }

    /// The worker executable. By default found next to the current executable.
    pub fn worker_exe(&mut self, exe: impl Into<PathBuf>) -> &mut HostBuilder {
        self.worker_exe = Some(exe.into());
        self
    }

    /// Pool sizing per plugin. By default [`PoolConfig::default`] with at most 2 workers per
    /// plugin.
    pub fn pool(&mut self, pool: PoolConfig) -> &mut HostBuilder {
        self.pool = pool;
        self
    }

    /// Backoff and quarantine. By default [`Recovery::default`].
    pub fn recovery(&mut self, recovery: Recovery) -> &mut HostBuilder {
        self.recovery = recovery;
        self
    }

    /// Creates the data dir if needed and opens the store and the audit database.
    pub fn build(&self) -> Result<Host, ServiceError> {
        let dir = &self.data_dir;
        let dir_error = |error| ServiceError::DataDir {
            path: dir.clone(),
            error,
        };
        if dir.exists() && !dir.is_dir() {
            return Err(dir_error(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "it is not a directory; pass --data-dir (or PLUGIN_HOST_DATA_DIR) a directory",
            )));
        }
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o711)
                .create(dir)
                .map_err(dir_error)?;
        }
        let policy = match &self.policy {
            Some(policy) => PolicyState {
                policy: Arc::new(policy.clone()),
                file: None,
            },
            None => {
                let path = dir.join(POLICY_FILE);
                let stamp = FileStamp::of(&path);
                let policy = if stamp.is_some() {
                    load_data_dir_policy(&path)?
                } else {
                    Policy::default()
                };
                PolicyState {
                    policy: Arc::new(policy),
                    file: Some((path, stamp)),
                }
            }
        };
        let store = Store::open(dir).map_err(dir_error)?;
        let audit_path = dir.join(AUDIT_FILE);
        // Audit::open creates the store (and its WAL files) 0600: the trail is the operator's.
        let audit = Audit::open(&audit_path)?;
        Ok(Host {
            data_dir: dir.clone(),
            policy: Mutex::new(policy),
            level: self.level,
            worker_exe: self.worker_exe.clone(),
            pool: self.pool.clone(),
            recovery: self.recovery.clone(),
            store,
            audit,
            loaded: Mutex::new(HashMap::new()),
        })
    }
}

/// The policy in force and, when it comes from the data dir's `policy.toml`, that file and
/// what it looked like when it was read.
#[derive(Debug)]
struct PolicyState {
    policy: Arc<Policy>,
    file: Option<(PathBuf, Option<FileStamp>)>,
}

/// Enough of a file's metadata to see that it changed (an editor's rename gives a new inode,
/// an in-place write a new mtime or size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode: metadata.ino(),
        })
    }
}

/// The plugin service. Share it between threads by reference (or in an `Arc`).
#[derive(Debug)]
pub struct Host {
    data_dir: PathBuf,
    policy: Mutex<PolicyState>,
    level: Option<SecurityLevel>,
    worker_exe: Option<PathBuf>,
    pool: PoolConfig,
    recovery: Recovery,
    store: Store,
    audit: Audit,
    loaded: Mutex<HashMap<String, Arc<Loaded>>>,
}

/// Why the opened plugin may not run `hook`, whatever its status: its decision denies it, or
/// the entry point is not callable; `None` if it may.
fn plugin_refusal(loaded: &Loaded, hook: &str) -> Option<String> {
    if !loaded.decision.allows() {
        return Some(format!(
            "denied by policy: {}",
            loaded.decision.reasons.join("; ")
        ));
    }
    let report = loaded.pool.plugin().report();
    match report.entry_point(hook) {
        Some(entry) if entry.callable => None,
        _ => {
            let reasons: Vec<&str> = report
                .blocking_findings()
                .map(|f| f.message.as_str())
                .collect();
            Some(format!(
                "entry point `{hook}` of `{}` is not callable: {}",
                loaded.name,
                reasons.join("; ")
            ))
        }
    }
}

/// `WrongStatus` if `row` is quarantined, with `message(reason)`: what `enable` and `disable`
/// answer, since only `release` lifts a quarantine.
fn refuse_if_quarantined(
    row: &PluginRow,
    message: impl FnOnce(&str) -> String,
) -> Result<(), ServiceError> {
    if row.status != Status::Quarantined {
        return Ok(());
    }
    Err(ServiceError::WrongStatus {
        plugin: row.name.clone(),
        status: "quarantined",
        message: message(row.status_reason.as_deref().unwrap_or("no reason recorded")),
    })
}

/// A plugin a dispatch goes to: opened, or the reason it cannot be.
#[derive(Debug)]
enum Target {
    Loaded(Arc<Loaded>),
    Unloadable(Box<PluginRow>, String),
}

/// An installed plugin opened for calls.
#[derive(Debug)]
struct Loaded {
    id: String,
    name: String,
    pool: Pool,
    decision: Decision,
    health: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Loaded {
    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Host {
    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The policy in force. When it comes from the data dir's `policy.toml` (no policy was
    /// given to the builder), an edited file takes effect here, at the next install or call
    /// (a long-running `serve` needs no restart): plugins opened under the old policy are
    /// retired and decided again. A file that no longer parses keeps the previous policy; the
    /// problem is reported on stderr once per version of the file.
    pub fn policy(&self) -> Arc<Policy> {
        let mut state = self.policy.lock().unwrap_or_else(|e| e.into_inner());
        let Some((path, stamp)) = &mut state.file else {
            return state.policy.clone();
        };
        let now = FileStamp::of(path);
        if now == *stamp {
            return state.policy.clone();
        }
        *stamp = now;
        let reloaded = if now.is_some() {
            load_data_dir_policy(path)
        } else {
            Ok(Policy::default())
        };
        match reloaded {
            Ok(policy) => {
                state.policy = Arc::new(policy);
                // Each plugin's decision was made under the old policy.
                self.lock_loaded().clear();
            }
            Err(error) => {
                eprintln!("plugin-host: {error}; keeping the policy in force until it is fixed")
            }
        }
        state.policy.clone()
    }

    /// The audit store.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// Installs the plugin file at `path`: see [`Host::install_bytes`].
    pub fn install(&self, path: &Path) -> Result<Installed, ServiceError> {
        let bytes = plugin::read_bounded(path).map_err(|error| ServiceError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        self.install_bytes(&bytes, &path.display().to_string())
    }

    /// Installs a plugin from its bytes (`source` names where they came from): inspects them
    /// (never loading them), decides under the policy, and if allowed copies them into the
    /// store under their SHA-256 and records the plugin, its decision and findings. A denied
    /// plugin is not installed; the refusal is recorded with its reasons.
    pub fn install_bytes(&self, bytes: &[u8], source: &str) -> Result<Installed, ServiceError> {
        let report = inspect::inspect_bytes(Path::new(source), bytes).map_err(|error| {
            ServiceError::NotAPlugin {
                source_name: source.to_string(),
                error,
            }
        })?;
        let decision = evaluate(&report.manifest, Some(&report), &self.policy(), self.level);
        let id = report.sha256.clone();
        let name = report.manifest.info.name.clone();
        if !decision.allows() {
            self.audit.record_event(
                &id,
                &name,
                "install_refused",
                &serde_json::json!({ "source": source, "decision": decision }),
            )?;
            return Err(ServiceError::Denied {
                source_name: source.to_string(),
                name,
                decision: Box::new(decision),
            });
        }
        // From the already-installed check to the record, one install at a time (threads and
        // processes): two concurrent installs of one file must not both pass the check.
        let store_error = |error| ServiceError::Io {
            path: self.data_dir.join("plugins"),
            error,
        };
        let _install = self.store.install_lock().map_err(store_error)?;
        if let Some(existing) = self.audit.plugins()?.into_iter().find(|p| p.name == name) {
            return Err(ServiceError::AlreadyInstalled {
                name,
                same: existing.id == id,
                id: existing.id,
            });
        }
        self.store.put(&id, bytes).map_err(store_error)?;
        let now = now_ms();
        let json = |value: &dyn erased::Json| value.to_json();
        let row = PluginRow {
            id: id.clone(),
            name: name.clone(),
            version: report.manifest.info.version.clone(),
            installed_at: now,
            source: source.to_string(),
            status: Status::Enabled,
            status_reason: None,
            status_since: now,
            manifest: json(&report.manifest),
            report: json(&report),
            decision: json(&decision),
        };
        let mut findings: Vec<StoredFinding> = report
            .findings
            .iter()
            .map(|f| StoredFinding {
                source: "inspect".into(),
                code: f.code.to_string(),
                severity: f.severity.as_str().into(),
                message: f.message.clone(),
            })
            .collect();
        findings.extend(decision.findings.iter().map(|f| StoredFinding {
            source: "policy".into(),
            code: f.code.to_string(),
            severity: f.severity.as_str().into(),
            message: f.message.clone(),
        }));
        if let Err(error) = self.audit.insert_plugin(&row, &findings) {
            let _ = self.store.remove(&id);
            return Err(error.into());
        }
        Ok(Installed {
            plugin: PluginSummary::from_row(&row),
            decision,
        })
    }

    /// Uninstalls a plugin: retires its workers, removes its files and data dir, records the
    /// event. Its history stays in the audit store.
    pub fn uninstall(&self, id: &str) -> Result<PluginSummary, ServiceError> {
        let row = self.resolve(id)?;
        self.lock_loaded().remove(&row.id);
        self.audit.delete_plugin(&row.id)?;
        self.store
            .remove(&row.id)
            .map_err(|error| ServiceError::Io {
                path: self.data_dir.join("plugins"),
                error,
            })?;
        Ok(PluginSummary::from_row(&row))
    }

    /// Enables a disabled plugin. A quarantined one needs [`Host::release`].
    pub fn enable(&self, id: &str) -> Result<PluginSummary, ServiceError> {
        let row = self.resolve(id)?;
        refuse_if_quarantined(&row, |reason| {
            format!(
                "{reason}; lift the quarantine with `plugin-host release {}`",
                row.name
            )
        })?;
        self.set_status(&row, Status::Enabled, None, "enable")
    }

    /// Disables a plugin: it is no longer called; its idle workers are retired.
    pub fn disable(&self, id: &str) -> Result<PluginSummary, ServiceError> {
        let row = self.resolve(id)?;
        // Disabling would overwrite the quarantine and its reason, and `enable` would then
        // lift it: only `release` does that, deliberately.
        refuse_if_quarantined(&row, |reason| {
            format!(
                "it is already not called ({reason}); `plugin-host release {}` lifts the \
                 quarantine",
                row.name
            )
        })?;
        let summary = self.set_status(
            &row,
            Status::Disabled,
            Some("disabled by the operator"),
            "disable",
        )?;
        if let Some(loaded) = self.lock_loaded().get(&row.id) {
            loaded.pool.evict_all_idle();
        }
        Ok(summary)
    }

    /// Lifts a quarantine: the plugin is enabled again, its violation count starts afresh and
    /// its backoff is reset.
    pub fn release(&self, id: &str) -> Result<PluginSummary, ServiceError> {
        let row = self.resolve(id)?;
        if row.status != Status::Quarantined {
            return Err(ServiceError::WrongStatus {
                plugin: row.name.clone(),
                status: row.status.as_str(),
                message: "only a quarantined plugin can be released".into(),
            });
        }
        if let Some(loaded) = self.lock_loaded().get(&row.id) {
            *loaded.health() = Health::default();
        }
        self.set_status(&row, Status::Enabled, None, "release")
    }

    fn set_status(
        &self,
        row: &PluginRow,
        status: Status,
        reason: Option<&str>,
        event: &str,
    ) -> Result<PluginSummary, ServiceError> {
        // Enabling an enabled plugin (disabling a disabled one) changes nothing, so it records
        // nothing either: the audit trail and `status_since` keep the real change.
        if row.status == status {
            return self.summary(&row.id);
        }
        if !self.audit.set_status(&row.id, status, reason, event)? {
            return Err(ServiceError::NotFound { id: row.id.clone() });
        }
        self.summary(&row.id)
    }

    /// Every installed plugin, by name.
    pub fn list(&self) -> Result<Vec<PluginSummary>, ServiceError> {
        Ok(self
            .audit
            .plugins()?
            .iter()
            .map(PluginSummary::from_row)
            .collect())
    }

    /// The `[plugins.<name>]` sections of the policy in force that name no installed plugin.
    /// Such a section has no effect until a plugin of that name is installed, so it is most
    /// likely a typo worth a warning.
    pub fn unmatched_policy_sections(&self) -> Result<Vec<String>, ServiceError> {
        let policy = self.policy();
        let installed: std::collections::BTreeSet<String> = self
            .audit
            .plugins()?
            .into_iter()
            .map(|row| row.name)
            .collect();
        Ok(policy
            .plugins
            .keys()
            .filter(|name| !installed.contains(*name))
            .cloned()
            .collect())
    }

    /// One installed plugin.
    pub fn summary(&self, id: &str) -> Result<PluginSummary, ServiceError> {
        Ok(PluginSummary::from_row(&self.resolve(id)?))
    }

    /// The security report of one installed plugin.
    pub fn report(&self, id: &str) -> Result<SecurityReport, ServiceError> {
        let row = self.resolve(id)?;
        self.report_of(&row)
    }

    fn report_of(&self, row: &PluginRow) -> Result<SecurityReport, ServiceError> {
        let decision = &row.decision;
        Ok(SecurityReport {
            plugin: PluginSummary::from_row(row),
            manifest: row.manifest.clone(),
            permissions: report::permissions(&row.manifest, decision),
            decision: decision.clone(),
            findings: self.audit.findings(&row.id)?,
            enforcement: Enforcement {
                level: decision["level"].clone(),
                required_layers: decision["rules"]["required_layers"].clone(),
                limits: decision["limits"].clone(),
                active_layers: self.audit.last_layers(&row.id)?,
            },
            usage: self.audit.usage(&row.id)?,
            violations: self.audit.violations(&row.id)?,
        })
    }

    /// The security report of every installed plugin.
    pub fn reports(&self) -> Result<Reports, ServiceError> {
        let reports = self
            .audit
            .plugins()?
            .iter()
            .map(|row| self.report_of(row))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Reports::new(reports))
    }

    /// The audit trail, oldest first; `plugin` may name a plugin that is no longer installed
    /// (by name or full id), `since_ms` is Unix milliseconds, `limit` keeps only the latest
    /// that many entries ([`DEFAULT_AUDIT_LIMIT`] is what the CLI and the API use unless told).
    pub fn audit_entries(
        &self,
        plugin: Option<&str>,
        since_ms: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<AuditEntry>, ServiceError> {
        let plugin_id = match plugin {
            None => None,
            Some(id) => Some(match self.resolve(id) {
                Ok(row) => row.id,
                Err(ServiceError::NotFound { .. }) => self
                    .audit
                    .known_plugins()?
                    .into_iter()
                    .find(|(known, name)| known == id || name == id)
                    .map(|(known, _)| known)
                    .ok_or_else(|| ServiceError::NotFound { id: id.to_string() })?,
                Err(other) => return Err(other),
            }),
        };
        Ok(self.audit.entries(&AuditFilter {
            plugin_id,
            since_ms,
            limit,
        })?)
    }

    /// The recovery state of an installed plugin (zero before its first call).
    pub fn recovery_state(&self, id: &str) -> Result<RecoveryState, ServiceError> {
        let row = self.resolve(id)?;
        let loaded = self.lock_loaded().get(&row.id).cloned();
        Ok(match loaded {
            None => RecoveryState {
                consecutive_failures: 0,
                backoff_ms: 0,
                workers_started: 0,
            },
            Some(loaded) => {
                let failures = loaded.health().failures;
                RecoveryState {
                    consecutive_failures: failures,
                    backoff_ms: u64::try_from(self.recovery.backoff(failures).as_millis())
                        .unwrap_or(u64::MAX),
                    workers_started: loaded.pool.stats().started,
                }
            }
        })
    }

    /// Finds the installed plugin `id` names: its full id, its name, or a unique prefix of at
    /// least [`MIN_ID_PREFIX`] hex digits of its id.
    pub fn resolve(&self, id: &str) -> Result<PluginRow, ServiceError> {
        let rows = self.audit.plugins()?;
        if let Some(row) = rows.iter().find(|r| r.id == id) {
            return Ok(row.clone());
        }
        let not_found = || ServiceError::NotFound { id: id.to_string() };
        let id_lower = id.to_ascii_lowercase();
        let is_prefix = id.len() >= MIN_ID_PREFIX && id.bytes().all(|b| b.is_ascii_hexdigit());
        // A name that is also a prefix of another plugin's id is ambiguous: a plugin named
        // `deadbeef` must not receive what the operator meant for the plugin `deadbeef…`.
        let matches: Vec<&PluginRow> = rows
            .iter()
            .filter(|r| r.name == id || is_prefix && r.id.starts_with(&id_lower))
            .collect();
        match matches.as_slice() {
            [] => Err(not_found()),
            [one] => Ok((*one).clone()),
            many => Err(ServiceError::Ambiguous {
                id: id.to_string(),
                matches: many
                    .iter()
                    .map(|r| format!("{} {}", r.name, r.id))
                    .collect(),
            }),
        }
    }

    /// Calls `hook` of one installed plugin with `input`, waiting out its backoff if it failed
    /// recently. A disabled, quarantined or now-denied plugin is not run: the result is
    /// `denied` with the reason. The call is recorded before this returns.
    pub fn invoke(&self, id: &str, hook: &str, input: &[u8]) -> Result<CallRecord, ServiceError> {
        let row = self.resolve(id)?;
        let hooks: Vec<String> = PluginSummary::from_row(&row).hooks;
        // A corrupt row (no manifest to read hooks from) is left to the gate, which says so.
        if !row.manifest.is_null()
            && !hooks.iter().any(|h| h == hook)
            && !row.manifest["entry_points"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["hook"] == hook))
        {
            return Err(ServiceError::NoSuchHook {
                plugin: row.name,
                hook: hook.to_string(),
                hooks,
            });
        }
        // A plugin that may not be called is not opened either (its file may be the problem).
        if let Some(refusal) = self.status_refusal(&row.id, &row.name)? {
            return self.finish_unloadable(&row, hook, &refusal);
        }
        let loaded = self.loaded(&row)?;
        // Its status was just checked: only what the opened plugin says is left to check.
        let result = match plugin_refusal(&loaded, hook) {
            Some(refusal) => CallResult::failed(Outcome::Denied, refusal, Usage::default()),
            None => {
                self.wait_backoff(&loaded);
                loaded.pool.call(hook, input)
            }
        };
        self.finish(&loaded, hook, result)
    }

    /// The enabled plugins that export `hook` callably, by name, each opened or with the
    /// reason it cannot be (its file missing or tampered with): that plugin's calls are then
    /// `denied` with the reason, and the others run as usual.
    fn targets(&self, hook: &str) -> Result<Vec<Target>, ServiceError> {
        Ok(self
            .audit
            .plugins()?
            .into_iter()
            .filter(|row| row.status == Status::Enabled)
            .filter(|row| PluginSummary::from_row(row).hooks.iter().any(|h| h == hook))
            .map(|row| match self.loaded(&row) {
                Ok(loaded) => Target::Loaded(loaded),
                Err(error) => Target::Unloadable(Box::new(row), error.to_string()),
            })
            .collect())
    }

    /// Records a call to a plugin that could not be opened as `denied` with the reason.
    fn finish_unloadable(
        &self,
        row: &PluginRow,
        hook: &str,
        reason: &str,
    ) -> Result<CallRecord, ServiceError> {
        let result = CallResult::failed(Outcome::Denied, reason.to_string(), Usage::default());
        let call_id = self.audit.record_call(&CallEntry {
            plugin_id: &row.id,
            plugin_name: &row.name,
            hook,
            result: &result,
        })?;
        Ok(CallRecord {
            call_id,
            plugin_id: row.id.clone(),
            plugin: row.name.clone(),
            hook: hook.to_string(),
            result,
        })
    }

    /// Calls `hook` with `input` on every enabled plugin that exports it, concurrently (one
    /// thread per plugin), and returns one record per plugin, by plugin name. One plugin's
    /// failure never changes another's result.
    pub fn dispatch(&self, hook: &str, input: &[u8]) -> Result<Vec<CallRecord>, ServiceError> {
        let targets = self.targets(hook)?;
        std::thread::scope(|scope| {
            let handles: Vec<_> = targets
                .iter()
                .map(|target| {
                    scope.spawn(move || {
                        let loaded = match target {
                            Target::Loaded(loaded) => loaded,
                            Target::Unloadable(row, reason) => {
                                return self.finish_unloadable(row, hook, reason);
                            }
                        };
                        let result = match self.gate(loaded, hook)? {
                            Some(denied) => denied,
                            None => {
                                self.wait_backoff(loaded);
                                loaded.pool.call(hook, input)
                            }
                        };
                        self.finish(loaded, hook, result)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    }

    /// Dispatches `hook` once per input to every enabled plugin that exports it: each plugin
    /// streams the inputs through its own warm worker on its own thread, so a slow or failing
    /// plugin never holds up or changes another. `sink` gets every record (or the audit
    /// store's error) as soon as it is committed, from the plugin's thread, with the input's
    /// index; each plugin gives each input exactly one result. A plugin quarantined during
    /// the stream gets `denied` for the rest. Returns the plugins dispatched to.
    pub fn dispatch_stream(
        &self,
        hook: &str,
        inputs: &[&[u8]],
        sink: &(dyn Fn(usize, Result<CallRecord, ServiceError>) + Sync),
    ) -> Result<Vec<String>, ServiceError> {
        let targets = self.targets(hook)?;
        std::thread::scope(|scope| {
            for target in &targets {
                scope.spawn(move || match target {
                    Target::Loaded(loaded) => self.stream_one(loaded, hook, inputs, sink),
                    Target::Unloadable(row, reason) => {
                        for index in 0..inputs.len() {
                            sink(index, self.finish_unloadable(row, hook, reason));
                        }
                    }
                });
            }
        });
        Ok(targets
            .iter()
            .map(|target| match target {
                Target::Loaded(loaded) => loaded.name.clone(),
                Target::Unloadable(row, _) => row.name.clone(),
            })
            .collect())
    }

    fn stream_one(
        &self,
        loaded: &Loaded,
        hook: &str,
        inputs: &[&[u8]],
        sink: &(dyn Fn(usize, Result<CallRecord, ServiceError>) + Sync),
    ) {
        let mut done = 0;
        while done < inputs.len() {
            match self.gate(loaded, hook) {
                Err(error) => {
                    sink(done, Err(error));
                    done += 1;
                    continue;
                }
                Ok(Some(denied)) => {
                    for index in done..inputs.len() {
                        sink(index, self.finish(loaded, hook, denied.clone()));
                    }
                    return;
                }
                Ok(None) => {}
            }
            self.wait_backoff(loaded);
            let offset = done;
            let rest = inputs.get(done..).unwrap_or_default();
            let ran = loaded.pool.call_many_while(hook, rest, |index, result| {
                let ok = result.status == Outcome::Ok;
                sink(offset + index, self.finish(loaded, hook, result));
                if ok {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            });
            if ran == 0 {
                return;
            }
            done += ran;
        }
    }

    /// Why the plugin `id` may not be called in its status (not installed, disabled,
    /// quarantined); `None` if it is enabled.
    fn status_refusal(&self, id: &str, name: &str) -> Result<Option<String>, ServiceError> {
        Ok(match self.audit.status(id)? {
            None => Some(format!("plugin `{name}` is not installed")),
            Some((Status::Disabled, reason)) => Some(format!(
                "plugin `{name}` is disabled ({})",
                reason.as_deref().unwrap_or("no reason recorded")
            )),
            Some((Status::Quarantined, reason)) => Some(format!(
                "plugin `{name}` is quarantined: {}; `plugin-host release {name}` lifts it",
                reason.as_deref().unwrap_or("no reason recorded"),
            )),
            Some((Status::Enabled, _)) => None,
        })
    }

    /// Why `loaded` may not be called now, as the `denied` result of the call; `None` if it may.
    fn gate(&self, loaded: &Loaded, hook: &str) -> Result<Option<CallResult>, ServiceError> {
        let refusal = match self.status_refusal(&loaded.id, &loaded.name)? {
            Some(refusal) => Some(refusal),
            None => plugin_refusal(loaded, hook),
        };
        Ok(refusal.map(|message| CallResult::failed(Outcome::Denied, message, Usage::default())))
    }

    fn wait_backoff(&self, loaded: &Loaded) {
        let retry_at = loaded.health().retry_at;
        if let Some(at) = retry_at {
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
        }
    }

    /// Records the call, then updates the plugin's recovery state and quarantines it if its
    /// violations within the window reach the threshold.
    fn finish(
        &self,
        loaded: &Loaded,
        hook: &str,
        result: CallResult,
    ) -> Result<CallRecord, ServiceError> {
        let recorded = self.audit.record_call(&CallEntry {
            plugin_id: &loaded.id,
            plugin_name: &loaded.name,
            hook,
            result: &result,
        });
        let call_id = match recorded {
            Ok(id) => id,
            Err(error) => {
                return Err(ServiceError::NotRecorded {
                    plugin: loaded.name.clone(),
                    result: Box::new(result),
                    error,
                });
            }
        };
        match result.status {
            Outcome::Ok => *loaded.health() = Health::default(),
            // A plugin that answers with an error (often the input's fault) is working: its
            // next worker starts at once. Backoff is for workers that died or were killed.
            Outcome::Denied | Outcome::PluginError => {}
            _ => {
                let mut health = loaded.health();
                health.failures = health.failures.saturating_add(1);
                health.retry_at = Some(Instant::now() + self.recovery.backoff(health.failures));
            }
        }
        if result.status == Outcome::Violation || !result.violations.is_empty() {
            let window = self.recovery.quarantine_window;
            let since =
                now_ms().saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
            let last = result
                .violations
                .last()
                .map(|v| format!("{} {}", v.rule, v.detail))
                .or_else(|| result.error.clone())
                .unwrap_or_default();
            // Plugin-chosen text: a bounded excerpt in the status line.
            let last: String = last.chars().take(200).collect();
            let quarantined = self.audit.quarantine_if_repeated(
                &loaded.id,
                since,
                self.recovery.quarantine_after,
                |count| {
                    format!(
                        "{count} calls with violations within {} (latest: {last})",
                        humantime::format_duration(window)
                    )
                },
            )?;
            if quarantined.is_some() {
                loaded.pool.evict_all_idle();
            }
        }
        Ok(CallRecord {
            call_id,
            plugin_id: loaded.id.clone(),
            plugin: loaded.name.clone(),
            hook: hook.to_string(),
            result,
        })
    }

    fn lock_loaded(&self) -> MutexGuard<'_, HashMap<String, Arc<Loaded>>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The opened plugin for `row`, opening it (from the store, checking its hash, deciding
    /// under the current policy) on first use.
    fn loaded(&self, row: &PluginRow) -> Result<Arc<Loaded>, ServiceError> {
        // First: an edited policy file retires every opened plugin.
        let policy = self.policy();
        if let Some(loaded) = self.lock_loaded().get(&row.id) {
            return Ok(loaded.clone());
        }
        let path = self
            .store
            .plugin_path(&row.id)
            .map_err(|error| ServiceError::Io {
                path: self.data_dir.join("plugins"),
                error,
            })?;
        let plugin = Plugin::open(&path).map_err(|error| ServiceError::Load {
            id: row.id.clone(),
            error,
        })?;
        if plugin.report().sha256 != row.id {
            return Err(ServiceError::Tampered {
                path,
                expected: row.id.clone(),
                found: plugin.report().sha256.clone(),
            });
        }
        let decision = evaluate(
            plugin.manifest(),
            Some(plugin.report()),
            &policy,
            self.level,
        );
        // The decision's limits and level, the policy's fs roots and op-limit action; the
        // plugin's relative paths and private SQLite store live in its own data dir.
        let mut options = WorkerOptions::for_decision(&decision, &policy);
        options.data_dir = Some(path.with_file_name("data"));
        options.worker_exe = self.worker_exe.clone();
        let loaded = Arc::new(Loaded {
            id: row.id.clone(),
            name: row.name.clone(),
            pool: Pool::new(Arc::new(plugin), options, self.pool.clone()),
            decision,
            health: Mutex::new(Health::default()),
        });
        // Two threads may open the same plugin at once; the first one in wins.
        let loaded = self
            .lock_loaded()
            .entry(row.id.clone())
            .or_insert(loaded)
            .clone();
        // An uninstall may have run while it was being opened: then it must not stay cached
        // (its pool would outlive the plugin). This call's gate then finds it not installed.
        if self.audit.status(&row.id)?.is_none() {
            self.lock_loaded().remove(&row.id);
        }
        Ok(loaded)
    }
}

/// Checks a manifest given as JSON (`POST /validate/manifest`, `validate --manifest`) and
/// decides it under `policy`, as for an installed file but without a static report.
pub fn validate_manifest(
    json: &[u8],
    source: &str,
    policy: &Policy,
    level: Option<SecurityLevel>,
) -> Result<Decision, ServiceError> {
    let invalid = |problems| ServiceError::InvalidManifest {
        source_name: source.to_string(),
        problems,
    };
    let manifest: Manifest =
        serde_json::from_slice(json).map_err(|e| invalid(vec![format!("not a manifest: {e}")]))?;
    let problems = manifest.problems();
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    Ok(evaluate(&manifest, None, policy, level))
}

/// Loads the data dir's `policy.toml`, which decides for every install and call without being
/// named on a command line: it is used only if no one but this user (or root) can change it,
/// as the API token is.
fn load_data_dir_policy(path: &Path) -> Result<Policy, PolicyError> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).map_err(|error| PolicyError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let me = nix::unistd::geteuid().as_raw();
    let problem = if metadata.uid() != me && metadata.uid() != 0 {
        Some(format!(
            "owned by uid {}, not by this user (uid {me}): anyone who owns it decides which \
             plugins run; `chown` it to this user",
            metadata.uid()
        ))
    } else if metadata.mode() & 0o022 != 0 {
        Some(format!(
            "writable by other users (mode {:o}): anyone could loosen it; `chmod go-w` it",
            metadata.mode() & 0o777
        ))
    } else {
        None
    };
    match problem {
        Some(message) => Err(PolicyError::Invalid {
            path: path.to_path_buf(),
            message,
        }),
        None => Policy::load(path),
    }
}

/// Inspects uploaded bytes statically (`POST /validate/code`): never loaded, never run.
pub fn validate_code(bytes: &[u8], source: &str) -> Result<Report, ServiceError> {
    inspect::inspect_bytes(Path::new(source), bytes).map_err(|error| ServiceError::NotAPlugin {
        source_name: source.to_string(),
        error,
    })
}

/// Serializing the stored columns: these types always serialize (plain data, string keys).
mod erased {
    pub trait Json {
        fn to_json(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}
