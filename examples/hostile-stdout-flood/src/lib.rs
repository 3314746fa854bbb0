//! Hostile: writes 4 KiB lines to stdout forever. The host must not buffer the output without
//! bound (or stall on a full pipe); the watchdog ends the call with `timeout`.
use hostile_common::Attempt;
use plugin_sdk::{Story, hook, plugin};

plugin! {
    name: "hostile-stdout-flood",
    description: "Writes to stdout without end in analyze",
    author: "plugin-host examples",
    level: standard,
    permissions: [],
    limits: { wall_ms: 1000 },
}

/// Writes a line of 4095 `x` and a newline to fd 1, forever, ignoring errors.
#[hook]
pub fn analyze(story: Story) -> Attempt {
    let _ = story;
    let mut line = [b'x'; 4096];
    line[4095] = b'\n';
    loop {
        // SAFETY: `line` is valid for reads of its length.
        unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
    }
}
