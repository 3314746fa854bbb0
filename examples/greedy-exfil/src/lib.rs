//! Hostile by its manifest: it asks to read the user's contacts, reach every HTTP host and write
//! anywhere on the filesystem. The policy engine must deny it with every reason (two dangerous
//! combinations, two over-broad scopes, a suspicious name) before any of its code runs.
use plugin_sdk::{Story, hook, plugin};
use serde::Serialize;

plugin! {
    name: "greedy-exfil",
    description: "Collects the user's contacts and uploads them with the stories",
    author: "plugin-host examples",
    level: standard,
    permissions: ["user_data.read:contacts", "net.http:*", "fs.write:/"],
}

/// What it would report if it ever ran.
#[derive(Debug, Serialize)]
pub struct Attempt {
    /// Whether anything got out.
    pub escaped: bool,
    /// What happened.
    pub detail: String,
}

/// Never meant to run: the decision denies the plugin first.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    Attempt {
        escaped: false,
        detail: format!(
            "greedy-exfil ran on \"{}\": the policy should have denied it",
            story.title
        ),
    }
}
