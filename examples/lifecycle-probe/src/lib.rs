//! Makes the worker lifecycle observable from outside, for the tests and as an example of
//! `#[init]` and `#[shutdown]`.
//!
//! - `init` receives [`Config`]; `{"fail": "reason"}` makes it fail with that reason.
//! - `analyze` reports how many calls this worker process has served and whether an earlier
//!   call in it was "poisoned", so a test can tell a fresh worker from a reused one. The
//!   story's title is a command: `poison` (mark the process and return an error), `abort`
//!   (crash), `big:N` (answer with an N-byte `echo` field); any other title is just counted.
//!   The answer includes the text's length and byte sum, so large inputs can be checked.
//! - `echo` returns its bytes unchanged (the benchmarks' warm call).
//! - `shutdown` fails if the configuration says `{"fail_shutdown": true}`, and sleeps for
//!   `shutdown_sleep_ms` first, to test its deadline.
use plugin_sdk::{Story, hook, init, plugin, shutdown};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

plugin! {
    name: "lifecycle-probe",
    description: "Observable init, per-worker state, shutdown and large payloads",
    author: "plugin-host examples",
    level: minimal,
    permissions: [],
    limits: { wall_ms: 2000 },
}

/// The configuration `init` receives.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Make `init` fail with this reason.
    #[serde(default)]
    pub fail: Option<String>,
    /// Any label; echoed back by `analyze`.
    #[serde(default)]
    pub label: Option<String>,
    /// Make `shutdown` fail.
    #[serde(default)]
    pub fail_shutdown: bool,
    /// Sleep this long in `shutdown`.
    #[serde(default)]
    pub shutdown_sleep_ms: u64,
}

/// What `analyze` answers.
#[derive(Debug, Serialize)]
pub struct Probe {
    /// The worker's process id.
    pub pid: u32,
    /// Calls served by this process, this one included.
    pub calls: u64,
    /// Whether `init` ran in this process.
    pub initialised: bool,
    /// Whether an earlier call in this process was poisoned.
    pub poisoned: bool,
    /// The configured label.
    pub label: Option<String>,
    /// The story text's length in bytes.
    pub text_len: usize,
    /// The wrapping sum of the text's bytes.
    pub text_sum: u64,
    /// Filler, for `big:N`.
    pub echo: String,
}

static CONFIG: Mutex<Option<Config>> = Mutex::new(None);
static CALLS: AtomicU64 = AtomicU64::new(0);
static POISONED: AtomicBool = AtomicBool::new(false);

/// Stores the configuration, or fails as asked.
#[init]
pub fn init(config: Config) -> Result<(), String> {
    if let Some(reason) = &config.fail {
        return Err(format!("configured to fail: {reason}"));
    }
    *CONFIG.lock().map_err(|_| "config lock poisoned")? = Some(config);
    Ok(())
}

/// Counts the call and follows the title's command.
#[hook]
pub fn analyze(story: Story) -> Result<Probe, String> {
    let calls = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    let poisoned = POISONED.load(Ordering::SeqCst);
    let config = CONFIG.lock().ok().and_then(|c| c.clone());
    let mut echo = String::new();
    match story.title.as_str() {
        "poison" => {
            POISONED.store(true, Ordering::SeqCst);
            return Err(format!("poisoned after {calls} calls"));
        }
        "abort" => std::process::abort(),
        title => {
            if let Some(n) = title.strip_prefix("big:").and_then(|n| n.parse().ok()) {
                echo = "x".repeat(n);
            }
        }
    }
    Ok(Probe {
        pid: std::process::id(),
        calls,
        initialised: config.is_some(),
        poisoned,
        label: config.and_then(|c| c.label),
        text_len: story.text.len(),
        text_sum: story.text.bytes().map(u64::from).fold(0, u64::wrapping_add),
        echo,
    })
}

/// Returns its input unchanged: the cheapest possible call, for measuring the sandbox's own
/// round trip.
#[hook]
pub fn echo(input: &str) -> String {
    input.to_string()
}

/// Fails or sleeps as configured.
#[shutdown]
pub fn shutdown() -> Result<(), String> {
    let config = CONFIG
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .unwrap_or_default();
    std::thread::sleep(std::time::Duration::from_millis(config.shutdown_sleep_ms));
    if config.fail_shutdown {
        return Err("configured to fail at shutdown".into());
    }
    Ok(())
}
