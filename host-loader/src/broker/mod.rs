//! The broker: the host side of the services a plugin calls during a call (SPEC §9).
//!
//! Every request a worker forwards ([`Broker::handle`]) goes through the same four steps:
//! 1. **decode**, bounded: the bytes come from the plugin;
//! 2. **check** against the grants: the permission kind, then its scope (path beneath the data
//!    dir or a policy root, host and port, variable name), then the level's file extensions and
//!    maximum size. A request outside the grants fails with `Denied` *and* is a violation;
//! 3. **count** against the call's limits (`file_ops`, `net_requests`, `db_queries`). A request
//!    past a count is a violation; by default ([`OpLimitAction::EndCall`]) it ends the call;
//! 4. **serve** it: [`fs`] (openat2 beneath the root, no symlinks), [`http`] (a real HTTP
//!    client with the call's remaining time as its timeout), [`db`] (the plugin's own SQLite
//!    store and key-value table), environment, notifications, logs.
//!
//! Counts and violations are per call: [`Broker::take_call`] hands them to the call's result
//! and starts the next call from zero. Every request of a counted kind counts, granted or not,
//! so a plugin cannot spin on denied requests for free.
//!
//! The worker cannot reach any of this directly: its Landlock rules give it no access to the
//! data dir, and its seccomp filter gives it no sockets, so the broker is the only way in.

pub mod db;
pub mod fs;
pub mod http;

use crate::outcome::Violation;
use plugin_manifest::broker::{
    self, Envelope, Error as BrokerError, ErrorKind, LogLevel, Reply, Request, Response,
};
use plugin_manifest::{Grant, Limits, SecurityLevel};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Log lines kept per call; more are dropped (and counted in the last one).
pub const MAX_LOG_LINES: usize = 100;
/// Longest log line or notification kept, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Notifications kept per call.
pub const MAX_NOTIFICATIONS: usize = 20;
/// Denied requests tolerated in one call before it is ended.
pub const MAX_VIOLATIONS: usize = 32;
/// Largest reply the broker sends (it must fit in one frame with room to spare).
pub const MAX_REPLY_BYTES: u64 = 15 * 1024 * 1024;

/// What happens when a call goes past one of its operation counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpLimitAction {
    /// The call ends at once with `violation` (the default).
    #[default]
    EndCall,
    /// The request fails with `LimitExceeded`; the call goes on, and still ends `violation`.
    Refuse,
}

/// How the host runs a plugin's broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// The plugin's granted permissions.
    pub grants: Vec<Grant>,
    /// The effective limits (counts, maximum file size).
    pub limits: Limits,
    /// The effective level (allowed file extensions).
    pub level: SecurityLevel,
    /// The plugin's data dir: relative paths are inside it, and its store lives in it.
    pub data_dir: PathBuf,
    /// Absolute roots the policy lets `fs.*` scopes name.
    pub allowed_fs_roots: Vec<PathBuf>,
    /// What a call past its counts gets.
    pub on_op_limit: OpLimitAction,
}

/// A log line a plugin wrote during a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// The message (at most [`MAX_TEXT_BYTES`]).
    pub message: String,
}

/// A notification a plugin sent during a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
}

/// What one call did through the broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallRecord {
    /// File operations (reads, writes, listings), granted or not.
    pub file_ops: u64,
    /// Network requests, granted or not.
    pub net_requests: u64,
    /// Database statements (queries, executes, key-value gets and sets), granted or not.
    pub db_queries: u64,
    /// Bytes the broker delivered to the plugin (file contents, response bodies, rows).
    pub bytes_in: u64,
    /// Bytes the plugin sent out through the broker (written files, request bodies).
    pub bytes_out: u64,
    /// Requests outside the grants or past a count.
    pub violations: Vec<Violation>,
    /// Log lines.
    pub logs: Vec<LogLine>,
    /// Notifications.
    pub notifications: Vec<Notification>,
}

/// What to do with the worker after a request.
#[derive(Debug)]
pub enum Handled {
    /// Send this encoded [`Response`] back; the call goes on.
    Reply(Vec<u8>),
    /// End the call now with `violation` (the last violation says why).
    EndCall,
}

/// Which counter a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counter {
    File,
    Net,
    Db,
}

impl Counter {
    fn name(self) -> &'static str {
        match self {
            Counter::File => "file_ops",
            Counter::Net => "net_requests",
            Counter::Db => "db_queries",
        }
    }
}

/// A refused request: the error for the plugin and, when it broke a rule, the violation.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) error: BrokerError,
    pub(crate) violation: Option<Violation>,
}

impl Refusal {
    /// A request outside the grants: denied and recorded under `rule`.
    /// Both texts quote what the plugin asked for (a path, a name, a host), so both are cut to
    /// [`MAX_TEXT_BYTES`]: a violation is kept, stored and printed.
    pub(crate) fn denied(rule: &str, detail: String, message: String) -> Refusal {
        Refusal {
            error: BrokerError {
                kind: ErrorKind::Denied,
                message: truncate(message),
            },
            violation: Some(Violation {
                rule: rule.to_string(),
                detail: truncate(detail),
            }),
        }
    }

    /// A failure that breaks no rule (not found, malformed, I/O).
    pub(crate) fn fails(kind: ErrorKind, message: String) -> Refusal {
        Refusal {
            error: BrokerError { kind, message },
            violation: None,
        }
    }
}

/// One plugin's broker, owned by its worker's host-side handle.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    store: Option<db::Store>,
    call: CallRecord,
    dropped_logs: usize,
}

impl Broker {
    /// A broker for one worker.
    pub fn new(config: BrokerConfig) -> Broker {
        Broker {
            config,
            store: None,
            call: CallRecord::default(),
            dropped_logs: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// What the call so far did; the next call starts from zero.
    pub fn take_call(&mut self) -> CallRecord {
        self.dropped_logs = 0;
        std::mem::take(&mut self.call)
    }

    fn granted(&self, kind: &str) -> impl Iterator<Item = &Grant> {
        self.config.grants.iter().filter(move |g| g.kind == kind)
    }

    fn has(&self, kind: &str) -> bool {
        self.granted(kind).next().is_some()
    }

    /// Serves one encoded request from the plugin, before `deadline` (the call's).
    pub fn handle(&mut self, bytes: &[u8], deadline: Instant) -> Handled {
        let envelope = match broker::decode::<Envelope>(bytes) {
            Ok(envelope) => envelope,
            Err(why) => {
                return self.reply(Err(BrokerError {
                    kind: ErrorKind::Invalid,
                    message: why,
                }));
            }
        };
        if envelope.version != broker::BROKER_PROTOCOL_VERSION {
            return self.reply(Err(BrokerError {
                kind: ErrorKind::Unavailable,
                message: format!(
                    "broker protocol version {} is not supported (this host speaks {})",
                    envelope.version,
                    broker::BROKER_PROTOCOL_VERSION
                ),
            }));
        }
        let request = envelope.request;
        let counter = match &request {
            Request::ReadFile { .. } | Request::WriteFile { .. } | Request::ListDir { .. } => {
                Some(Counter::File)
            }
            Request::Http(_) => Some(Counter::Net),
            Request::DbQuery { .. }
            | Request::DbExecute { .. }
            | Request::KvGet { .. }
            | Request::KvSet { .. } => Some(Counter::Db),
            Request::Log { .. } | Request::Env { .. } | Request::Notify { .. } => None,
        };
        if let Some(counter) = counter
            && let Some(handled) = self.count(counter, &request)
        {
            return handled;
        }
        let served = self.serve(request, deadline);
        match served {
            Ok(reply) => self.reply(Ok(reply)),
            Err(refusal) => {
                if let Some(violation) = refusal.violation {
                    self.call.violations.push(violation);
                    if self.call.violations.len() >= MAX_VIOLATIONS {
                        self.call.violations.push(Violation {
                            rule: "limit".into(),
                            detail: format!(
                                "{MAX_VIOLATIONS} denied requests in one call; call ended"
                            ),
                        });
                        return Handled::EndCall;
                    }
                }
                self.reply(Err(refusal.error))
            }
        }
    }

    /// Counts the request; past the limit, records the violation and refuses or ends the call.
    fn count(&mut self, counter: Counter, request: &Request) -> Option<Handled> {
        let limits = &self.config.limits;
        let (used, limit) = match counter {
            Counter::File => (&mut self.call.file_ops, limits.file_ops),
            Counter::Net => (&mut self.call.net_requests, limits.net_requests),
            Counter::Db => (&mut self.call.db_queries, limits.db_queries),
        };
        if *used < limit {
            *used += 1;
            return None;
        }
        let detail = truncate(format!(
            "{} limit of {limit} per call reached: request {} ({}) refused",
            counter.name(),
            *used + 1,
            describe(request)
        ));
        self.call.violations.push(Violation {
            rule: "limit".into(),
            detail: detail.clone(),
        });
        Some(match self.config.on_op_limit {
            OpLimitAction::EndCall => Handled::EndCall,
            OpLimitAction::Refuse => self.reply(Err(BrokerError {
                kind: ErrorKind::LimitExceeded,
                message: detail,
            })),
        })
    }

    fn reply(&mut self, response: Response) -> Handled {
        Handled::Reply(broker::encode(&response))
    }

    fn serve(&mut self, request: Request, deadline: Instant) -> Result<Reply, Refusal> {
        match request {
            Request::Log { level, message } => {
                if self.call.logs.len() < MAX_LOG_LINES {
                    self.call.logs.push(LogLine {
                        level,
                        message: truncate(message),
                    });
                } else {
                    self.dropped_logs += 1;
                    if let Some(last) = self.call.logs.last_mut() {
                        last.message = format!(
                            "({} more log lines dropped: at most {MAX_LOG_LINES} per call)",
                            self.dropped_logs
                        );
                    }
                }
                Ok(Reply::Done)
            }
            Request::ReadFile { path } => {
                let bytes = fs::read(self, &path)?;
                self.call.bytes_in += bytes.len() as u64;
                Ok(Reply::Bytes(bytes))
            }
            Request::WriteFile { path, contents } => {
                fs::write(self, &path, &contents)?;
                self.call.bytes_out += contents.len() as u64;
                Ok(Reply::Done)
            }
            Request::ListDir { path } => {
                let names = fs::list(self, &path)?;
                self.call.bytes_in += names.iter().map(|n| n.len() as u64).sum::<u64>();
                Ok(Reply::Names(names))
            }
            Request::Http(request) => {
                self.call.bytes_out += request.body.len() as u64;
                let response = http::perform(self, &request, deadline)?;
                self.call.bytes_in += response.body.len() as u64;
                Ok(Reply::Http(response))
            }
            Request::DbQuery { sql, params } => {
                self.require_any(&["db.read", "db.write"], &sql)?;
                let may_write = self.has("db.write");
                let rows = self.store()?.query(&sql, &params, deadline, may_write)?;
                self.call.bytes_in += db::rows_size(&rows);
                Ok(Reply::Rows(rows))
            }
            Request::DbExecute { sql, params } => {
                self.require_any(&["db.write"], &sql)?;
                self.call.bytes_out += db::params_size(&params);
                let changed = self.store()?.execute(&sql, &params, deadline)?;
                Ok(Reply::Changed(changed))
            }
            Request::KvGet { key } => {
                self.require_any(&["db.read", "db.write"], &key)?;
                let value = self.store()?.kv_get(&key, deadline)?;
                self.call.bytes_in += value.as_ref().map_or(0, |v| v.len() as u64);
                Ok(Reply::MaybeBytes(value))
            }
            Request::KvSet { key, value } => {
                self.require_any(&["db.write"], &key)?;
                self.call.bytes_out += value.len() as u64;
                self.store()?.kv_set(&key, &value, deadline)?;
                Ok(Reply::Done)
            }
            Request::Env { name } => {
                let granted = self
                    .granted("env.read")
                    .filter_map(|g| g.scope.as_deref())
                    .any(|scope| env_scope_matches(scope, &name));
                if !granted {
                    return Err(Refusal::denied(
                        "env",
                        name.clone(),
                        format!(
                            "environment variable `{name}` is not granted: ask for `env.read:{name}`"
                        ),
                    ));
                }
                let value = std::env::var(&name).ok();
                self.call.bytes_in += value.as_ref().map_or(0, |v| v.len() as u64);
                Ok(Reply::Text(value))
            }
            Request::Notify { title, body } => {
                if !self.has("notify") {
                    return Err(Refusal::denied(
                        "permission",
                        "notify".into(),
                        "`notify` is not granted: ask for `notify`".into(),
                    ));
                }
                if self.call.notifications.len() < MAX_NOTIFICATIONS {
                    self.call.notifications.push(Notification {
                        title: truncate(title),
                        body: truncate(body),
                    });
                }
                Ok(Reply::Done)
            }
        }
    }

    fn require_any(&self, kinds: &[&str], what: &str) -> Result<(), Refusal> {
        if kinds.iter().any(|kind| self.has(kind)) {
            return Ok(());
        }
        let wanted = kinds.join("` or `");
        Err(Refusal::denied(
            "permission",
            format!("{}: {}", kinds.join("|"), truncate(what.to_string())),
            format!("the plugin's store needs `{wanted}`, which is not granted"),
        ))
    }

    fn store(&mut self) -> Result<&mut db::Store, Refusal> {
        if self.store.is_none() {
            let cap = self.config.limits.max_file_size_bytes;
            self.store = Some(db::Store::open(&self.config.data_dir, cap)?);
        }
        Ok(self.store.as_mut().expect("opened just above"))
    }
}

/// A short description of a request, for violations.
fn describe(request: &Request) -> String {
    match request {
        Request::ReadFile { path } => format!("read {path}"),
        Request::WriteFile { path, .. } => format!("write {path}"),
        Request::ListDir { path } => format!("list {path}"),
        Request::Http(http) => format!("{} {}", http.method, http.url),
        Request::DbQuery { .. } => "query".into(),
        Request::DbExecute { .. } => "execute".into(),
        Request::KvGet { key } => format!("kv get {key}"),
        Request::KvSet { key, .. } => format!("kv set {key}"),
        Request::Log { .. } => "log".into(),
        Request::Env { name } => format!("env {name}"),
        Request::Notify { .. } => "notify".into(),
    }
    .chars()
    .take(200)
    .collect()
}

/// `NAME` matches `NAME`; `PREFIX*` matches every name starting with `PREFIX`.
fn env_scope_matches(scope: &str, name: &str) -> bool {
    match scope.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => scope == name,
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_TEXT_BYTES {
        let mut end = MAX_TEXT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_manifest::broker::{BROKER_PROTOCOL_VERSION, Envelope};

    pub(crate) fn broker_with(grants: &[&str], data_dir: &std::path::Path) -> Broker {
        Broker::new(BrokerConfig {
            grants: grants.iter().map(|g| Grant::parse(g).unwrap()).collect(),
            limits: SecurityLevel::Standard.max_limits(),
            level: SecurityLevel::Standard,
            data_dir: data_dir.to_path_buf(),
            allowed_fs_roots: Vec::new(),
            on_op_limit: OpLimitAction::EndCall,
        })
    }

    pub(crate) fn ask(broker: &mut Broker, request: Request) -> Option<Response> {
        let bytes = broker::encode(&Envelope {
            version: BROKER_PROTOCOL_VERSION,
            request,
        });
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        match broker.handle(&bytes, deadline) {
            Handled::Reply(reply) => Some(broker::decode::<Response>(&reply).unwrap()),
            Handled::EndCall => None,
        }
    }

    #[test]
    fn garbage_and_other_versions_are_errors_not_violations() {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = broker_with(&[], dir.path());
        let deadline = Instant::now() + std::time::Duration::from_secs(1);
        let Handled::Reply(reply) = broker.handle(&[0xff, 0xff, 0xff], deadline) else {
            panic!("garbage ends nothing");
        };
        let error = broker::decode::<Response>(&reply).unwrap().unwrap_err();
        assert_eq!(error.kind, ErrorKind::Invalid);
        let newer = broker::encode(&Envelope {
            version: BROKER_PROTOCOL_VERSION + 1,
            request: Request::Env { name: "X".into() },
        });
        let Handled::Reply(reply) = broker.handle(&newer, deadline) else {
            panic!()
        };
        let error = broker::decode::<Response>(&reply).unwrap().unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert!(broker.take_call().violations.is_empty());
    }

    #[test]
    fn env_needs_the_exact_name_or_a_prefix_grant() {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = broker_with(&["env.read:STORY_*"], dir.path());
        // SAFETY: the test sets a variable no other test reads.
        unsafe { std::env::set_var("STORY_LOCALE_BROKER_TEST", "en") };
        let got = ask(
            &mut broker,
            Request::Env {
                name: "STORY_LOCALE_BROKER_TEST".into(),
            },
        );
        assert_eq!(got, Some(Ok(Reply::Text(Some("en".into())))));
        let denied = ask(
            &mut broker,
            Request::Env {
                name: "HOME".into(),
            },
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(denied.kind, ErrorKind::Denied);
        // A name as long as a frame allows is recorded cut, and answered cut.
        let long = ask(
            &mut broker,
            Request::Env {
                name: "E".repeat(1 << 20),
            },
        )
        .unwrap()
        .unwrap_err();
        assert!(
            long.message.len() <= MAX_TEXT_BYTES,
            "{}",
            long.message.len()
        );
        let call = broker.take_call();
        assert_eq!(call.violations.len(), 2);
        assert_eq!(call.violations[0].rule, "env");
        assert_eq!(call.violations[0].detail, "HOME");
        assert_eq!(call.violations[1].detail.len(), MAX_TEXT_BYTES);
    }

    #[test]
    fn counts_end_the_call_or_refuse_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = broker_with(&["db.write"], dir.path());
        broker.config.limits.db_queries = 2;
        let set = || Request::KvSet {
            key: "k".into(),
            value: b"v".to_vec(),
        };
        assert_eq!(ask(&mut broker, set()), Some(Ok(Reply::Done)));
        assert_eq!(ask(&mut broker, set()), Some(Ok(Reply::Done)));
        assert_eq!(ask(&mut broker, set()), None, "the third ends the call");
        let call = broker.take_call();
        assert_eq!(call.db_queries, 2);
        assert_eq!(call.violations[0].rule, "limit");
        assert!(
            call.violations[0]
                .detail
                .starts_with("db_queries limit of 2 per call reached: request 3"),
            "{}",
            call.violations[0].detail
        );

        broker.config.on_op_limit = OpLimitAction::Refuse;
        ask(&mut broker, set());
        ask(&mut broker, set());
        let refused = ask(&mut broker, set()).unwrap().unwrap_err();
        assert_eq!(refused.kind, ErrorKind::LimitExceeded);
        assert_eq!(broker.take_call().violations.len(), 1);
    }

    #[test]
    fn logs_and_notifications_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = broker_with(&["notify"], dir.path());
        for i in 0..MAX_LOG_LINES + 5 {
            ask(
                &mut broker,
                Request::Log {
                    level: LogLevel::Info,
                    message: format!("line {i} {}", "x".repeat(MAX_TEXT_BYTES)),
                },
            );
        }
        for _ in 0..MAX_NOTIFICATIONS + 3 {
            ask(
                &mut broker,
                Request::Notify {
                    title: "t".into(),
                    body: "b".into(),
                },
            );
        }
        let call = broker.take_call();
        assert_eq!(call.logs.len(), MAX_LOG_LINES);
        assert!(call.logs.iter().all(|l| l.message.len() <= MAX_TEXT_BYTES));
        assert!(
            call.logs
                .last()
                .unwrap()
                .message
                .contains("5 more log lines dropped")
        );
        assert_eq!(call.notifications.len(), MAX_NOTIFICATIONS);
        assert!(broker.take_call().logs.is_empty(), "per call");
    }

    #[test]
    fn notify_without_the_grant_is_a_violation() {
        let dir = tempfile::tempdir().unwrap();
        let mut broker = broker_with(&[], dir.path());
        let denied = ask(
            &mut broker,
            Request::Notify {
                title: "t".into(),
                body: "b".into(),
            },
        );
        assert_eq!(denied.unwrap().unwrap_err().kind, ErrorKind::Denied);
        assert_eq!(broker.take_call().violations[0].detail, "notify");
    }
}
