//! Hostile: `analyze` allocates (and touches) memory until something stops it. The memory limit
//! must end it with `memory_limit`.
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
    name: "hostile-alloc",
    description: "Allocates without end in analyze",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { memory_mb: 32, wall_ms: 5000 },
}

/// Allocates 1 MiB blocks, writing to every page, forever.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let block = vec![story.title.len() as u8 | 1; 1024 * 1024];
        hoard.push(std::hint::black_box(block));
    }
}
