//! A library crate that invokes `plugin!` and `#[hook]`; `story-hooks-plugin` turns it into a
//! cdylib. Checks that the manifest and entry points survive being defined in a dependency.
use plugin_sdk::{Story, hook, plugin};
use serde::Serialize;

plugin! {
    name: "story-hooks",
    description: "Counts the characters of a story's title (declared in a dependency crate)",
    author: "plugin-host examples",
    level: strict,
    permissions: [],
}

/// The characters of a title.
#[derive(Debug, Serialize)]
pub struct TitleLength {
    /// The title.
    pub title: String,
    /// Its length in characters.
    pub chars: usize,
}

/// The `analyze` hook.
#[hook]
pub fn analyze(story: Story) -> TitleLength {
    TitleLength {
        chars: story.title.chars().count(),
        title: story.title,
    }
}
