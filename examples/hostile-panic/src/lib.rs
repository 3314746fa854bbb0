//! Hostile: `analyze` panics. The panic must be caught at the FFI boundary and reported as
//! `panic` with its message.
use plugin_sdk::{Story, hook, plugin};
use serde::Serialize;

/// What a hostile plugin reports if its attack ever returns: whether it escaped, and how.
#[derive(Debug, Serialize)]
pub struct Attempt {
    /// Whether the attack got through.
    pub escaped: bool,
    /// What happened.
    pub detail: String,
}

plugin! {
    name: "hostile-panic",
    description: "Panics in analyze",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
}

/// Panics with a message naming the story.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    panic!("hostile-panic refuses to analyse \"{}\"", story.title)
}
