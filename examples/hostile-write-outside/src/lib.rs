//! Hostile: creates and writes `escaped` into `/tmp/hostile-write-outside.marker` and into every
//! path named on a line of the story's text. Landlock must refuse every write outside the
//! plugin's data dir.
use hostile_common::{Attempt, lines_as_paths};
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-write-outside",
    description: "Tries to write files outside its data dir",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

const MARKER: &str = "/tmp/hostile-write-outside.marker";

/// Tries every path; escaped if any write succeeded.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let mut escaped = false;
    let mut results = Vec::new();
    for path in std::iter::once(MARKER).chain(lines_as_paths(&story.text)) {
        match std::fs::write(path, "escaped") {
            Ok(()) => {
                escaped = true;
                results.push(format!("{path}: wrote 7 bytes"));
            }
            Err(error) => results.push(format!("{path}: {error}")),
        }
    }
    Attempt {
        escaped,
        detail: results.join("; "),
    }
}
