//! The host's services, as a plugin sees them: [`Host`], obtained with [`host()`].
//!
//! Every method is one request to the host, which checks it against the plugin's granted
//! permissions, counts it against the plugin's limits (file operations, network requests,
//! database queries, bytes) and records it. A request the grants do not cover fails with
//! [`ErrorKind::Denied`] *and* is recorded as a violation: the call then ends `violation` even
//! if the entry point returns normally. Going past a count fails with
//! [`ErrorKind::LimitExceeded`], or ends the call at once when the host's policy says so.
//!
//! ```ignore
//! use plugin_sdk::host::host;
//!
//! plugin! { name: "word-list", description: "...", permissions: ["fs.read:data/words.txt"] }
//!
//! #[hook]
//! fn analyze(story: Story) -> Result<usize, String> {
//!     let words = host().read_to_string("data/words.txt").map_err(|e| e.to_string())?;
//!     Ok(words.lines().count())
//! }
//! ```
//!
//! Paths are relative to the plugin's data directory (or absolute, under a root the host's
//! policy allows); they never contain `..` and never follow symbolic links. The SQLite store
//! and the key-value table are the plugin's own: no other plugin and no host database is
//! reachable through them.
//!
//! Outside a sandboxed worker (a plain `cargo test`, or a benchmark calling the function
//! in-process) there is no host: every request fails with [`ErrorKind::Unavailable`].

use crate::abi::{HOST_VTABLE_MAGIC, HostVtable};
use abi_stable::std_types::RSlice;
use plugin_manifest::broker::{self, BROKER_PROTOCOL_VERSION, Envelope, Reply, Request};
pub use plugin_manifest::broker::{
    DbRows, DbValue, ErrorKind, HttpRequest, HttpResponse, LogLevel,
};
use std::fmt;
use std::sync::atomic::{AtomicPtr, Ordering};

static VTABLE: AtomicPtr<HostVtable> = AtomicPtr::new(std::ptr::null_mut());

/// Called once by the worker, through the exported `PLUGIN_HOST_INIT`.
pub(crate) fn install(vtable: &'static HostVtable) {
    if vtable.magic == HOST_VTABLE_MAGIC {
        VTABLE.store(std::ptr::from_ref(vtable).cast_mut(), Ordering::Release);
    }
}

/// A failed host request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The host's explanation, naming the path, URL or statement.
    pub message: String,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for HostError {}

impl From<broker::Error> for HostError {
    fn from(error: broker::Error) -> HostError {
        HostError {
            kind: error.kind,
            message: error.message,
        }
    }
}

fn unexpected(reply: Reply) -> HostError {
    HostError {
        kind: ErrorKind::Failed,
        message: format!("the host answered with an unexpected reply: {reply:?}"),
    }
}

/// The handle to the host's services. Cheap to make; all handles are the same.
#[derive(Debug, Clone, Copy, Default)]
pub struct Host {
    _private: (),
}

/// The host of the running plugin.
pub fn host() -> Host {
    Host { _private: () }
}

impl Host {
    /// Whether a host broker is connected (false outside a worker).
    pub fn is_available(&self) -> bool {
        !VTABLE.load(Ordering::Acquire).is_null()
    }

    fn request(&self, request: Request) -> Result<Reply, HostError> {
        let vtable = VTABLE.load(Ordering::Acquire);
        // SAFETY: the pointer is null or was stored by `install` from a `&'static HostVtable`.
        let Some(vtable) = (unsafe { vtable.as_ref() }) else {
            return Err(HostError {
                kind: ErrorKind::Unavailable,
                message: "no host broker: the plugin is not running in a plugin-host worker".into(),
            });
        };
        let bytes = broker::encode(&Envelope {
            version: BROKER_PROTOCOL_VERSION,
            request,
        });
        let answer = (vtable.call)(RSlice::from_slice(&bytes));
        match broker::decode::<broker::Response>(answer.as_slice()) {
            Ok(response) => response.map_err(HostError::from),
            Err(why) => Err(HostError {
                kind: ErrorKind::Failed,
                message: why,
            }),
        }
    }

    /// Records a log line with the call's result. Never fails (a line past the per-call cap
    /// is dropped).
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        let _ = self.request(Request::Log {
            level,
            message: message.into(),
        });
    }

    /// Reads a whole file (`fs.read`).
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>, HostError> {
        match self.request(Request::ReadFile { path: path.into() })? {
            Reply::Bytes(bytes) => Ok(bytes),
            other => Err(unexpected(other)),
        }
    }

    /// Reads a whole UTF-8 file (`fs.read`).
    pub fn read_to_string(&self, path: &str) -> Result<String, HostError> {
        String::from_utf8(self.read_file(path)?).map_err(|e| HostError {
            kind: ErrorKind::Invalid,
            message: format!("{path}: not UTF-8 text: {e}"),
        })
    }

    /// Creates or replaces a file (`fs.write`). Missing parent directories are not created.
    pub fn write_file(&self, path: &str, contents: impl Into<Vec<u8>>) -> Result<(), HostError> {
        match self.request(Request::WriteFile {
            path: path.into(),
            contents: contents.into(),
        })? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Lists a directory's entry names, sorted (`fs.read` on the directory).
    pub fn list_dir(&self, path: &str) -> Result<Vec<String>, HostError> {
        match self.request(Request::ListDir { path: path.into() })? {
            Reply::Names(names) => Ok(names),
            other => Err(unexpected(other)),
        }
    }

    /// Makes an HTTP request (`net.http` for the URL's host). The host performs it, with a
    /// timeout inside the call's remaining time; redirects are returned, not followed.
    pub fn http(&self, request: HttpRequest) -> Result<HttpResponse, HostError> {
        match self.request(Request::Http(request))? {
            Reply::Http(response) => Ok(response),
            other => Err(unexpected(other)),
        }
    }

    /// `GET url`.
    pub fn http_get(&self, url: &str) -> Result<HttpResponse, HostError> {
        self.http(HttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// Runs a read-only statement on the plugin's SQLite store (`db.read`).
    pub fn db_query(&self, sql: &str, params: &[DbValue]) -> Result<DbRows, HostError> {
        match self.request(Request::DbQuery {
            sql: sql.into(),
            params: params.to_vec(),
        })? {
            Reply::Rows(rows) => Ok(rows),
            other => Err(unexpected(other)),
        }
    }

    /// Runs a statement that may change the plugin's store (`db.write`); returns the rows
    /// changed.
    pub fn db_execute(&self, sql: &str, params: &[DbValue]) -> Result<u64, HostError> {
        match self.request(Request::DbExecute {
            sql: sql.into(),
            params: params.to_vec(),
        })? {
            Reply::Changed(changed) => Ok(changed),
            other => Err(unexpected(other)),
        }
    }

    /// Reads a key from the plugin's key-value table (`db.read`).
    pub fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        match self.request(Request::KvGet { key: key.into() })? {
            Reply::MaybeBytes(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Stores a key in the plugin's key-value table (`db.write`).
    pub fn kv_set(&self, key: &str, value: impl Into<Vec<u8>>) -> Result<(), HostError> {
        match self.request(Request::KvSet {
            key: key.into(),
            value: value.into(),
        })? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Reads a host environment variable (`env.read` for that name); `None` if unset.
    pub fn env(&self, name: &str) -> Result<Option<String>, HostError> {
        match self.request(Request::Env { name: name.into() })? {
            Reply::Text(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Sends a notification to the host application (`notify`).
    pub fn notify(&self, title: &str, body: &str) -> Result<(), HostError> {
        match self.request(Request::Notify {
            title: title.into(),
            body: body.into(),
        })? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_worker_every_request_is_unavailable() {
        let error = host().read_file("data/words.txt").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert!(error.message.contains("no host broker"), "{error}");
        assert!(!host().is_available());
    }
}
