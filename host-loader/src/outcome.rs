//! How a call ended: exactly one [`Outcome`], plus usage and violations (SPEC §7, §11).

use serde::Serialize;
use std::fmt;

/// The single way a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The entry point returned a value.
    Ok,
    /// The entry point returned an error.
    PluginError,
    /// The entry point panicked; the panic was caught at the FFI boundary.
    Panic,
    /// The worker died from a signal or exited during the call.
    Crashed,
    /// The wall-clock deadline passed; the worker was killed.
    Timeout,
    /// The CPU-time limit was reached; the worker was killed.
    CpuLimit,
    /// The memory limit was reached.
    MemoryLimit,
    /// The plugin broke a sandbox rule.
    Violation,
    /// The worker sent something malformed; it was killed.
    ProtocolError,
    /// The call was refused before running (static finding or policy).
    Denied,
}

impl Outcome {
    /// The snake_case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::PluginError => "plugin_error",
            Outcome::Panic => "panic",
            Outcome::Crashed => "crashed",
            Outcome::Timeout => "timeout",
            Outcome::CpuLimit => "cpu_limit",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::Violation => "violation",
            Outcome::ProtocolError => "protocol_error",
            Outcome::Denied => "denied",
        }
    }

    /// Whether the worker that served the call can serve another one. Only a call that
    /// returned normally leaves it usable; every other outcome retires it, so a later call
    /// never sees state left behind by a failed one.
    pub fn keeps_worker(self) -> bool {
        self == Outcome::Ok
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resources one call used, measured by the parent from outside the worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// CPU time (user + system) of the worker during the call.
    pub cpu_ms: u64,
    /// Wall-clock time from sending the request to receiving the answer.
    pub wall_ms: u64,
    /// Peak resident memory of the worker during the call, in KiB.
    pub peak_rss_kb: u64,
    /// Brokered file operations.
    pub file_ops: u64,
    /// Brokered network requests.
    pub net_requests: u64,
    /// Brokered database queries.
    pub db_queries: u64,
    /// Bytes the broker delivered to the plugin (file contents, response bodies, rows).
    pub bytes_in: u64,
    /// Bytes the plugin sent out through the broker (written files, request bodies).
    pub bytes_out: u64,
}

/// A sandbox rule the plugin broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which rule, e.g. `syscall`, `path`, `file_ops`.
    pub rule: String,
    /// The evidence: syscall name, path, host, count.
    pub detail: String,
}

/// The full result of one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallResult {
    /// How it ended.
    pub status: Outcome,
    /// The output, for `ok`: JSON as is, text as a JSON string, bytes as `{"hex": "..."}`.
    pub output: Option<serde_json::Value>,
    /// What went wrong, for every other outcome.
    pub error: Option<String>,
    /// What the call used.
    pub usage: Usage,
    /// Rules broken during the call.
    pub violations: Vec<Violation>,
    /// The enforcement layers active in the worker that ran the call (empty if none ran).
    pub layers: Vec<String>,
    /// The kernel's Landlock ABI, when the worker applied Landlock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub landlock_abi: Option<u32>,
    /// Log lines the plugin wrote through the broker during the call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<crate::broker::LogLine>,
    /// Notifications the plugin sent through the broker during the call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::broker::Notification>,
    /// The host-side process id of the worker that ran the call (none if no worker ran).
    /// Inside the worker's PID namespace the plugin sees another number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_pid: Option<i32>,
}

/// Most bytes of a plugin's own error or panic message a result keeps. The message can be as
/// long as a frame (16 MiB); it is kept, stored in the audit trail and printed, so it is cut.
pub const MAX_PLUGIN_MESSAGE_BYTES: usize = 64 * 1024;

/// A plugin's message as text: invalid UTF-8 replaced, and cut after
/// [`MAX_PLUGIN_MESSAGE_BYTES`] bytes with a note of how many more there were.
pub fn plugin_message(bytes: &[u8]) -> String {
    match bytes.get(..MAX_PLUGIN_MESSAGE_BYTES) {
        Some(kept) if kept.len() < bytes.len() => format!(
            "{} ... ({} more bytes cut)",
            String::from_utf8_lossy(kept),
            bytes.len() - kept.len()
        ),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

impl CallResult {
    /// A call that ended without output.
    pub fn failed(status: Outcome, error: impl Into<String>, usage: Usage) -> CallResult {
        CallResult {
            status,
            output: None,
            error: Some(error.into()),
            usage,
            violations: Vec::new(),
            layers: Vec::new(),
            landlock_abi: None,
            logs: Vec::new(),
            notifications: Vec::new(),
            worker_pid: None,
        }
    }

    /// A call that ended `ok` with `output`.
    pub fn ok(output: serde_json::Value, usage: Usage) -> CallResult {
        CallResult {
            status: Outcome::Ok,
            output: Some(output),
            error: None,
            ..CallResult::failed(Outcome::Ok, "", usage)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_message_is_kept_whole_up_to_the_bound_and_cut_after_it() {
        assert_eq!(plugin_message(b"bad input"), "bad input");
        assert_eq!(plugin_message(b"caf\xc3"), "caf\u{fffd}");
        let exact = vec![b'x'; MAX_PLUGIN_MESSAGE_BYTES];
        assert_eq!(plugin_message(&exact).len(), MAX_PLUGIN_MESSAGE_BYTES);
        let long = vec![b'x'; MAX_PLUGIN_MESSAGE_BYTES + 1000];
        let message = plugin_message(&long);
        assert!(
            message.ends_with("x ... (1000 more bytes cut)"),
            "{}",
            &message[message.len() - 40..]
        );
        assert!(message.len() < MAX_PLUGIN_MESSAGE_BYTES + 40);
    }
}
