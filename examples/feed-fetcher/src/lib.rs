//! Asks for a direct TCP connection to one named host and port (`net.connect`): acceptable at
//! Standard, refused at Strict, which allows no direct network access. The policy engine shows
//! the two decisions; the plugin itself only reports what it would fetch.
use plugin_sdk::{Story, hook, plugin};
use serde::Serialize;

plugin! {
    name: "feed-fetcher",
    description: "Fetches related stories from a feed server",
    author: "plugin-host examples",
    level: standard,
    permissions: ["net.connect:feeds.example.org:443"],
    limits: { wall_ms: 2000 },
}

/// What it would fetch.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// The story's title.
    pub title: String,
    /// Where related stories would come from.
    pub feed: String,
}

/// Names the feed it would query for this story (it opens no connection yet).
#[hook]
pub fn analyze(story: Story) -> Plan {
    Plan {
        feed: format!(
            "https://feeds.example.org/related?title={}",
            story.title.replace(' ', "+")
        ),
        title: story.title,
    }
}
