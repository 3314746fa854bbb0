//! Hostile: sleeps for an hour inside `analyze`, using no CPU. Only the wall-clock watchdog can
//! end it, with `timeout`.
use hostile_common::Attempt;
use plugin_sdk::{Story, hook, plugin};
use std::time::Duration;

plugin! {
    name: "hostile-sleep",
    description: "Sleeps for an hour in analyze",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

/// Sleeps an hour, then reports that it outlived the deadline.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let _ = story;
    std::thread::sleep(Duration::from_secs(3600));
    Attempt::escaped("slept past the deadline")
}
