//! Hostile: `analyze` never returns and never yields. The watchdog must end it with `timeout`.
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
    name: "hostile-spin",
    description: "Spins forever in analyze",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    // A tight wall clock (under the CPU allowance), so the deadline is what fires.
    limits: { wall_ms: 1000 },
}

/// Loops forever.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let mut counter = story.text.len() as u64;
    loop {
        counter = std::hint::black_box(counter.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
