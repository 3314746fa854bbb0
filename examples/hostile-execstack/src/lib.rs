//! Hostile: an ordinary-looking plugin linked with `-z execstack` (see `build.rs`), so the
//! loader would map its thread stacks executable, the classic precondition for running
//! injected code. Static inspection must report `HARDEN_EXEC_STACK` (an error) and `validate`
//! must deny it.
use hostile_common::Attempt;
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-execstack",
    description: "Asks the loader for an executable stack",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
}

/// Reports the story's title; the attack is in how the file was linked.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    Attempt::stopped(format!("analysed {:?}", story.title))
}
