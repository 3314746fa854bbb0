//! Hostile: a load-time constructor (`.init_array`) creates `hostile-ctor.marker` in the current
//! directory. Static inspection must never run it; loading the plugin in a worker does.
use plugin_sdk::{Story, hook, plugin};
use serde::Serialize;

plugin! {
    name: "hostile-ctor",
    description: "Runs code at load time through a constructor",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
}

/// File the constructor creates.
pub const MARKER: &str = "hostile-ctor.marker";

extern "C" fn constructor() {
    let _ = std::fs::write(
        MARKER,
        format!("constructor ran in pid {}\n", std::process::id()),
    );
}

#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;

/// What `analyze` reports.
#[derive(Debug, Serialize)]
pub struct CtorReport {
    /// The story analysed.
    pub title: String,
    /// Whether the marker exists, i.e. the constructor ran in this process.
    pub constructor_ran: bool,
    /// The marker's contents.
    pub marker: Option<String>,
}

/// Reports whether the constructor ran.
#[hook]
pub fn analyze(story: Story) -> CtorReport {
    let marker = std::fs::read_to_string(MARKER).ok();
    CtorReport {
        title: story.title,
        constructor_ran: marker.is_some(),
        marker,
    }
}
