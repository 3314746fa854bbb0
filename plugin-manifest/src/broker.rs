//! The broker protocol: what a plugin may ask its host for during a call, and the answers.
//!
//! Shared by the SDK (which encodes [`Request`]s and decodes [`Response`]s inside the plugin)
//! and the host (which does the reverse, treating every byte as hostile). The worker process in
//! between forwards the bytes unchanged. Encoding is postcard ([`encode`], [`decode`]): compact,
//! and file contents travel as bytes, not as JSON arrays.
//!
//! This module is data only. Which request is allowed, how it is counted and how it is served
//! is the host's broker (`host_loader::broker`).

use serde::{Deserialize, Serialize};

/// Version of this protocol, sent with every request so a host can refuse a newer one cleanly.
pub const BROKER_PROTOCOL_VERSION: u16 = 1;

/// Symbol of the function every plugin exports to receive the host's broker entry point
/// (`extern "C" fn(&'static HostVtable)`, see `plugin_sdk::abi`).
pub const HOST_INIT_SYMBOL: &str = "PLUGIN_HOST_INIT";

/// One request from a plugin to its host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// A log line, kept with the call's result (no permission needed; bounded per call).
    Log {
        /// Severity.
        level: LogLevel,
        /// The message.
        message: String,
    },
    /// Read a whole file (`fs.read`).
    ReadFile {
        /// Relative to the plugin's data dir, or absolute under a policy-allowed root.
        path: String,
    },
    /// Create or replace a file (`fs.write`).
    WriteFile {
        /// As for [`Request::ReadFile`].
        path: String,
        /// The new contents.
        contents: Vec<u8>,
    },
    /// List a directory's entries (`fs.read` on the directory).
    ListDir {
        /// As for [`Request::ReadFile`].
        path: String,
    },
    /// An HTTP request, made by the host (`net.http` for the URL's host).
    Http(HttpRequest),
    /// A read-only statement on the plugin's own SQLite store (`db.read`).
    DbQuery {
        /// One SQL statement.
        sql: String,
        /// Positional parameters (`?1`, `?2`, ...).
        params: Vec<DbValue>,
    },
    /// A statement that may change the plugin's store (`db.write`).
    DbExecute {
        /// One SQL statement.
        sql: String,
        /// Positional parameters.
        params: Vec<DbValue>,
    },
    /// Read a value from the plugin's key-value table (`db.read`).
    KvGet {
        /// The key.
        key: String,
    },
    /// Store a value in the plugin's key-value table (`db.write`).
    KvSet {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
    /// Read a host environment variable (`env.read` for that name).
    Env {
        /// The variable's name.
        name: String,
    },
    /// Send a notification to the host application (`notify`).
    Notify {
        /// Short title.
        title: String,
        /// Body text.
        body: String,
    },
}

/// A request with the protocol version it was written for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`BROKER_PROTOCOL_VERSION`] of the SDK that wrote it.
    pub version: u16,
    /// The request.
    pub request: Request,
}

/// Log severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Detail.
    Debug,
    /// Normal.
    Info,
    /// Suspicious.
    Warn,
    /// Failure.
    Error,
}

/// An HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`, `DELETE`, `HEAD` or `PATCH`.
    pub method: String,
    /// `http://` or `https://` URL.
    pub url: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// Status code (redirects are returned, not followed).
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

/// A SQLite value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DbValue {
    /// `NULL`.
    Null,
    /// `INTEGER`.
    Integer(i64),
    /// `REAL`.
    Real(f64),
    /// `TEXT`.
    Text(String),
    /// `BLOB`.
    Blob(Vec<u8>),
}

impl DbValue {
    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            DbValue::Integer(value) => Some(*value),
            _ => None,
        }
    }

    /// The number, if this is an integer or a real.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            DbValue::Integer(value) => Some(*value as f64),
            DbValue::Real(value) => Some(*value),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            DbValue::Text(value) => Some(value),
            _ => None,
        }
    }
}

impl From<i64> for DbValue {
    fn from(value: i64) -> DbValue {
        DbValue::Integer(value)
    }
}

impl From<f64> for DbValue {
    fn from(value: f64) -> DbValue {
        DbValue::Real(value)
    }
}

impl From<&str> for DbValue {
    fn from(value: &str) -> DbValue {
        DbValue::Text(value.to_string())
    }
}

impl From<String> for DbValue {
    fn from(value: String) -> DbValue {
        DbValue::Text(value)
    }
}

impl From<Vec<u8>> for DbValue {
    fn from(value: Vec<u8>) -> DbValue {
        DbValue::Blob(value)
    }
}

/// The rows of a query.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DbRows {
    /// Column names.
    pub columns: Vec<String>,
    /// Each row's values, in column order.
    pub rows: Vec<Vec<DbValue>>,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The request was done; nothing to return.
    Done,
    /// File contents, or a key-value value.
    Bytes(Vec<u8>),
    /// A key-value value that may be absent.
    MaybeBytes(Option<Vec<u8>>),
    /// Directory entries (names only, sorted).
    Names(Vec<String>),
    /// An HTTP response.
    Http(HttpResponse),
    /// Query rows.
    Rows(DbRows),
    /// Rows changed by a statement.
    Changed(u64),
    /// An environment variable's value, if set.
    Text(Option<String>),
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not granted, or outside the granted scope. Also recorded as a violation.
    Denied,
    /// A per-call count (file operations, network requests, db queries) is used up. Also a
    /// violation; the host may end the call instead of answering.
    LimitExceeded,
    /// The file, directory or key does not exist.
    NotFound,
    /// The request is malformed (bad path, bad URL, bad SQL).
    Invalid,
    /// Bigger than the level allows.
    TooLarge,
    /// The operation failed on the host's side (I/O error, network error, timeout).
    Failed,
    /// The broker is not available (no call in progress, or a host without a broker).
    Unavailable,
}

/// A failed request: the kind, and a message meant for the plugin's author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened, naming the path, host or statement.
    pub message: String,
}

/// The answer to one request.
pub type Response = Result<Reply, Error>;

/// Encodes a broker message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_allocvec(message).unwrap_or_default()
}

/// Decodes a broker message; any error means the peer sent something malformed. Postcard
/// never allocates more than the input can hold, so this is bounded by `bytes.len()`.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("malformed broker message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let request = Envelope {
            version: BROKER_PROTOCOL_VERSION,
            request: Request::DbQuery {
                sql: "select ?1".into(),
                params: vec![DbValue::Integer(7), DbValue::Blob(vec![0, 255])],
            },
        };
        assert_eq!(decode::<Envelope>(&encode(&request)).unwrap(), request);
        let response: Response = Err(Error {
            kind: ErrorKind::Denied,
            message: "no".into(),
        });
        assert_eq!(decode::<Response>(&encode(&response)).unwrap(), response);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &[][..],
            &[0xff; 3][..],
            &[1, 200, 200, 200, 200, 200, 200][..],
        ] {
            assert!(decode::<Envelope>(bytes).is_err());
        }
    }
}
