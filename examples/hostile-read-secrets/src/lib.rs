//! Hostile: reads `/etc/shadow`, root's `.bashrc`, the SSH host key, and every path named on a
//! line of the story's text (a test puts a secret file there). Landlock (and the uid drop) must
//! refuse every read outside the plugin's data dir.
use hostile_common::{Attempt, lines_as_paths};
use plugin_sdk::{Story, hook, plugin};
use std::io::Read;

plugin! {
    name: "hostile-read-secrets",
    description: "Tries to read system files and paths outside its data dir",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

const SYSTEM_FILES: &[&str] = &[
    "/etc/shadow",
    "/root/.bashrc",
    "/etc/ssh/ssh_host_ed25519_key",
];

/// At most this much is read from each file (a path could name an endless device).
const READ_CAP: u64 = 64 * 1024;

/// Reads up to [`READ_CAP`] bytes of `path`.
fn read(path: &str) -> std::io::Result<usize> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(READ_CAP)
        .read_to_end(&mut bytes)?;
    Ok(bytes.len())
}

/// Tries every path; escaped if any read returned at least one byte.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let mut escaped = false;
    let mut results = Vec::new();
    let paths = SYSTEM_FILES
        .iter()
        .copied()
        .chain(lines_as_paths(&story.text));
    for path in paths {
        match read(path) {
            Ok(n) => {
                escaped |= n > 0;
                results.push(format!("{path}: read {n} bytes"));
            }
            Err(error) => results.push(format!("{path}: {error}")),
        }
    }
    Attempt {
        escaped,
        detail: results.join("; "),
    }
}
