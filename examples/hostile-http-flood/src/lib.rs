//! Hostile: granted `net.http:127.0.0.1`, makes `count` GET requests to `url` and returns how
//! many succeeded. Standard allows 50 network requests per call: the host ends the call at the
//! 51st. Input: `{"url": "...", "count": N}` (hook `flood`).
use plugin_sdk::{hook, host, plugin};
use serde::{Deserialize, Serialize};

plugin! {
    name: "hostile-http-flood",
    description: "Floods a granted host with brokered HTTP requests",
    author: "plugin-host examples",
    level: standard,
    permissions: ["net.http:127.0.0.1"],
    limits: { wall_ms: 5000 },
}

/// What to flood.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flood {
    /// The URL to request.
    pub url: String,
    /// How many requests.
    pub count: u64,
}

/// How it went, if the plugin gets control back.
#[derive(Debug, Serialize)]
pub struct Flooded {
    /// Requests that got an answer.
    pub succeeded: u64,
    /// The first error, if any.
    pub error: Option<String>,
}

/// Makes the requests.
#[hook]
pub fn flood(request: Flood) -> Flooded {
    let mut succeeded = 0;
    let mut error = None;
    for _ in 0..request.count {
        match host().http_get(&request.url) {
            Ok(_) => succeeded += 1,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    Flooded { succeeded, error }
}
