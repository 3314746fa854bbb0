//! Hostile: goes past its per-call counts. With text `files` it reads `data/x.txt` 1000 times
//! (Standard allows 100 file operations per call); with `db` it writes 1000 key-value entries
//! (Standard allows 200 database queries). The host ends the call at the first request past
//! the count; if the plugin ever gets back control, it reports how far it got.
use hostile_common::Attempt;
use plugin_sdk::{Story, hook, host, plugin};

plugin! {
    name: "hostile-op-flood",
    description: "Goes past its per-call file and database operation counts",
    author: "plugin-host examples",
    level: standard,
    permissions: ["fs.read:data", "db.read", "db.write"],
    limits: { wall_ms: 5000 },
}

/// Makes 1000 requests of the kind the text names.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let mut done = 0;
    let mut last_error = None;
    for i in 0..1000 {
        let result = match story.text.trim() {
            "db" => host().kv_set(&format!("key-{i}"), vec![0u8; 16]),
            _ => host().read_file("data/x.txt").map(|_| ()),
        };
        match result {
            Ok(()) => done += 1,
            Err(e) => {
                last_error = Some(e.to_string());
                break;
            }
        }
    }
    let detail = format!("{done} requests succeeded; last error: {last_error:?}");
    if done == 1000 {
        Attempt::escaped(detail)
    } else {
        Attempt::stopped(detail)
    }
}
