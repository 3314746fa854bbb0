//! Hostile: reports every environment variable the worker can see. The host must start the
//! worker with no variable of its own: the sandbox sets only `HOME` and `TMPDIR` (both the
//! worker's private temporary directory); variables reach a plugin only through `env.read`.
use plugin_sdk::{Story, hook, plugin};
use serde::Serialize;
use std::collections::BTreeMap;

plugin! {
    name: "hostile-env",
    description: "Reports every environment variable it can see",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

/// What it saw.
#[derive(Debug, Serialize)]
pub struct Seen {
    /// Whether it saw any variable besides the sandbox's own `HOME` and `TMPDIR`.
    pub escaped: bool,
    /// How many variables.
    pub detail: String,
    /// Every variable, converted lossily to UTF-8.
    pub env: BTreeMap<String, String>,
}

/// Collects the environment.
#[hook]
pub fn analyze(story: Story) -> Seen {
    let _ = story;
    let env: BTreeMap<String, String> = std::env::vars_os()
        .map(|(name, value)| {
            (
                name.to_string_lossy().into_owned(),
                value.to_string_lossy().into_owned(),
            )
        })
        .collect();
    Seen {
        escaped: env.keys().any(|name| name != "HOME" && name != "TMPDIR"),
        detail: format!("{} variables", env.len()),
        env,
    }
}
